"""Weights files: reading a state dict (a plain one, or a trial checkpoint's), loading a trained backbone under
freshly built GC blocks, saving an export's weights. Reads only; ``pretrain.py`` makes a backbone by training.

``backbone.weights: FILE`` names a plain backbone's ``state_dict`` (torchvision's, a gcsearch export of the
baseline, or a ``gcsearch pretrain`` file). Every trial builds its model (GC blocks with their zero-initialised
last conv: the identity under add fusion) and loads the backbone's tensors under it, so two trials with one
seed start from the same weights: that is what makes a seed pair them. MACs and params do not change.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from gcsearch.arch import ArchConfig
from gcsearch.errors import ConfigError
from gcsearch.files import replace_with
from gcsearch.nn.backbone import describe
from gcsearch.nn.models import build_model

if TYPE_CHECKING:  # a loaded space's settings are read, never the YAML reader
    from gcsearch.space import SearchSpace

KEY = "backbone.weights"


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def checkpoint_weights(saved: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The weights a trial checkpoint's accuracy measured: the EMA of the weights when the recipe keeps one,
    else the raw weights."""
    return saved.get("ema") or saved["model"]


def read_state(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a weights file: a plain state_dict, or a trial checkpoint's (``checkpoint_weights``)."""
    if not path.is_file():
        raise ConfigError(KEY, "must name an existing weights file", str(path))
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a truncated or foreign file: torch raises many kinds
        raise ConfigError(KEY, f"must be a torch state_dict file ({type(err).__name__})", str(path)) from None
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = checkpoint_weights(state)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ConfigError(KEY, "must hold a state_dict (names -> tensors)", str(path))
    return state


def load_backbone(model: nn.Module, path: Path) -> None:
    """Load a plain backbone's tensors into ``model`` (which may hold GC blocks, left as built).

    Every tensor of the model outside its GC blocks must be in the file with the same shape, and the file
    may hold nothing else; the one exception is the classifier (the model's description names it: ``fc`` for a
    ResNet) of another shape (ImageNet's 1,000 classes, say), which keeps its fresh initialisation. The first
    mismatch is named in one line."""
    state = read_state(path)
    own = model.state_dict()
    classifier = describe(model).classifier + "."
    for key, tensor in state.items():
        if key not in own or ".gc." in f".{key}":
            raise ConfigError(KEY, f"must hold this backbone's tensors only; it has {key!r}", str(path))
        if tuple(tensor.shape) != tuple(own[key].shape) and not key.startswith(classifier):
            raise ConfigError(
                KEY,
                f"must match the backbone's shapes: {key!r} is {tuple(tensor.shape)} in the file and "
                f"{tuple(own[key].shape)} in the model",
                str(path),
            )
    for key in own:
        if ".gc." not in f".{key}" and key not in state:
            raise ConfigError(KEY, f"must hold every tensor of the backbone; {key!r} is missing", str(path))
    loadable = {k: v for k, v in state.items() if tuple(v.shape) == tuple(own[k].shape)}
    model.load_state_dict(loadable, strict=False)


def check(space: SearchSpace) -> None:
    """Fail before any trial starts if the space's weights do not fit its backbone."""
    if space.backbone.weights:
        load_backbone(build_model(gc=ArchConfig(), **space.backbone.build_kwargs()), Path(space.backbone.weights))


def load_weights(model: nn.Module, weights: Path, source: str) -> nn.Module:
    """Trained weights into ``model``; ``source`` is the file that named them, for the error line."""
    if not weights.is_file():
        raise ConfigError("weights", "must name a file next to the export", str(weights), source)
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return model


def save_weights(checkpoint: Path, out: Path) -> None:
    """A trial checkpoint's model weights alone, for an export (atomic: temporary file, then rename): the
    EMA of the weights when the recipe keeps one, since that is what the trial's accuracy measured."""
    state = checkpoint_weights(torch.load(checkpoint, map_location="cpu", weights_only=True))
    replace_with(out, lambda tmp: torch.save(state, tmp))
