"""gcsearch: neural architecture search over Global Context (GCNet) block configurations."""

import importlib.metadata
import warnings
from typing import Any

from gcsearch.arch import ArchConfig
from gcsearch.errors import ConfigError, DataError, GcsearchError, TrainingDiverged

__version__ = importlib.metadata.version("gcsearch")  # pyproject.toml holds it

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
    "preprocessing",
]


def build_model(path: str | None = None, **kwargs: Any) -> Any:
    """A backbone with GC blocks (``models.build_model``'s keywords), or ``build_model("best.yaml")``: the
    model of an export, with its trained weights when the export names them; an export made without
    ``--weights`` builds an untrained model, with a warning saying how to get the trained one."""
    from gcsearch.nn import models, weights

    if path is None:
        return models.build_model(**kwargs)
    from gcsearch.analysis.export import load_export

    exp = load_export(path)
    model = models.build_model(gc=exp.arch, **exp.space.backbone.build_kwargs())
    trained = exp.weights_path()
    if trained is None:
        hint = "`gcsearch export RUN --weights` saves the trial's trained weights beside it, and build_model loads them"
        warnings.warn(f"{path} holds no weights: this model is untrained. {hint}", stacklevel=2)
        return model
    return weights.load_weights(model, trained, path)


def preprocessing(path: str) -> Any:
    """An export's preprocessing as a transform (a callable on a PIL image or a path, as torchvision's are): the
    normalised tensor [C, H, W] its model takes, decoded exactly as its trials saw their images; ``.classes``
    names the model's outputs.

        model, prep = gcsearch.build_model("best.yaml").eval(), gcsearch.preprocessing("best.yaml")
        print(prep.classes[model(prep("photo.jpg")[None]).argmax()])
    """
    from gcsearch.analysis.export import load_export
    from gcsearch.nn.preprocess import Transform

    return Transform(load_export(path).required_preprocess())


def __getattr__(name: str):  # lazy: `import gcsearch` and the CLI stay fast without torch
    if name == "GlobalContext":
        from gcsearch.nn.blocks import GlobalContext

        return GlobalContext
    if name == "count_macs":
        from gcsearch.nn.flops import count_macs

        return count_macs
    if name == "load_space":
        from gcsearch.spacefile import load_space

        return load_space
    raise AttributeError(f"module 'gcsearch' has no attribute {name!r}")
