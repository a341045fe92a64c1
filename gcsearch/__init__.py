"""gcsearch: neural architecture search over Global Context (GCNet) block configurations."""

from gcsearch.arch import ArchConfig
from gcsearch.errors import ConfigError, DataError, GcsearchError, TrainingDiverged

__version__ = "0.1.0"

__all__ = [
    "ArchConfig",
    "ConfigError",
    "DataError",
    "GcsearchError",
    "GlobalContext",
    "TrainingDiverged",
    "build_model",
    "count_macs",
    "load_space",
]


def __getattr__(name: str):  # lazy: `import gcsearch` and the CLI stay fast without torch
    if name == "GlobalContext":
        from gcsearch.blocks import GlobalContext

        return GlobalContext
    if name == "build_model":
        from gcsearch.models import build_model

        return build_model
    if name == "count_macs":
        from gcsearch.flops import count_macs

        return count_macs
    if name == "load_space":
        from gcsearch.space import load_space

        return load_space
    raise AttributeError(f"module 'gcsearch' has no attribute {name!r}")
