"""A trained backbone to fine-tune GC blocks into: the paper's protocol (GCNet fine-tuned a trained
ResNet-50 with GC added), and how practitioners use GC.

``backbone.weights: FILE`` names a plain backbone's ``state_dict`` (torchvision's, a gcsearch export of the
baseline, or a ``gcsearch pretrain`` file); ``backbone.pretrain: {...}`` instead asks the search to train
the baseline once, before its trials, and cache it under ``<output.dir>/pretrained/``. Every trial then
builds its model (GC blocks with their zero-initialised last conv: the identity under add fusion) and loads
the backbone's tensors under it, so two trials with one seed start from the same weights: that is what
makes a seed pair them. MACs and params do not change.
"""

from __future__ import annotations

import dataclasses
import hashlib
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import torch
from torch import nn

from gcsearch.arch import ArchConfig
from gcsearch.errors import ConfigError
from gcsearch.files import replace_with
from gcsearch.models import build_model
from gcsearch.settings import PretrainConfig

if TYPE_CHECKING:  # a loaded space's settings are read, never the YAML reader
    from gcsearch.space import SearchSpace

KEY = "backbone.weights"


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def read_state(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a weights file: a plain state_dict, or a trial checkpoint's EMA (else raw) weights."""
    if not path.is_file():
        raise ConfigError(KEY, "must name an existing weights file", str(path))
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a truncated or foreign file: torch raises many kinds
        raise ConfigError(KEY, f"must be a torch state_dict file ({type(err).__name__})", str(path)) from None
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state.get("ema") or state["model"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ConfigError(KEY, "must hold a state_dict (names -> tensors)", str(path))
    return state


def load_backbone(model: nn.Module, path: Path) -> None:
    """Load a plain backbone's tensors into ``model`` (which may hold GC blocks, left as built).

    Every tensor of the model outside its GC blocks must be in the file with the same shape, and the file
    may hold nothing else; the one exception is a classifier (``fc.*``) of another shape (ImageNet's 1,000
    classes, say), which keeps its fresh initialisation. The first mismatch is named in one line."""
    state = read_state(path)
    own = model.state_dict()
    for key, tensor in state.items():
        if key not in own or ".gc." in f".{key}":
            raise ConfigError(KEY, f"must hold this backbone's tensors only; it has {key!r}", str(path))
        if tuple(tensor.shape) != tuple(own[key].shape) and not key.startswith("fc."):
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


def pretrain_space(space: SearchSpace) -> SearchSpace:
    """The space the baseline is pretrained under: the file's recipe with ``backbone.pretrain``'s overrides."""
    p = space.backbone.pretrain
    assert p is not None
    over: dict[str, Any] = {
        k: v for k, v in (("lr", p.lr), ("schedule", p.schedule), ("batch_size", p.batch_size)) if v
    }
    train = dataclasses.replace(space.train, epochs=p.epochs, **over)
    data = dataclasses.replace(space.data, train_subset=p.train_subset)
    backbone = dataclasses.replace(space.backbone, weights=None, weights_sha256=None, pretrain=None)
    return dataclasses.replace(space, train=train, data=data, backbone=backbone)


def pretrain(space: SearchSpace, out: Path, stream: TextIO | None = None) -> Path:
    """Train the baseline of ``space`` under its pretraining recipe and save its weights to ``out``
    (the EMA's when the recipe keeps one: what its accuracy measured). Atomic: a kill leaves no file."""
    from gcsearch.curves import recipe_of
    from gcsearch.train import train

    if space.backbone.pretrain is None:  # `gcsearch pretrain` on a file without the section: its defaults
        space = dataclasses.replace(space, backbone=dataclasses.replace(space.backbone, pretrain=PretrainConfig()))
    pre = pretrain_space(space)
    seed = space.backbone.pretrain.seed if space.backbone.pretrain else 0
    if stream:
        stream.write(f"pretraining the baseline for {pre.train.epochs} epochs (recipe {recipe_of(pre)}) -> {out}\n")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        ckpt = Path(tmp) / "pretrain.pt"
        metrics = train(ArchConfig(), pre, checkpoint=ckpt, seed=seed)
        saved = torch.load(ckpt, map_location="cpu", weights_only=True)
        state = saved.get("ema") or saved["model"]
        replace_with(out, lambda t: torch.save(state, t))
    if stream:
        stream.write(f"pretrained baseline: validation accuracy {metrics.accuracy:.4f}\n")
    return out


def resolve(space: SearchSpace, stream: TextIO | None = None) -> SearchSpace:
    """The space with its weights file made (``pretrain``, cached by recipe), checked, and its hash pinned.

    A space whose ``weights_sha256`` is already pinned (a run's space.yaml) must find the same file: a
    resume with other weights would mix two protocols in one study."""
    b = space.backbone
    if not b.weights and not b.pretrain:
        return space
    if b.weights:
        path = Path(b.weights).resolve()
    else:
        from gcsearch.curves import recipe_of

        path = (Path(space.output_dir) / "pretrained" / f"{recipe_of(pretrain_space(space))}.pt").resolve()
        if not path.is_file():
            pretrain(space, path, stream)
    digest = sha256_of(path) if path.is_file() else None
    if b.weights_sha256 and digest != b.weights_sha256:
        raise ConfigError(
            "backbone.weights_sha256",
            f"must match the weights the run started from ({b.weights_sha256}); {path} hashes to {digest}. "
            "Give another --name for other weights",
            str(path),
        )
    resolved = dataclasses.replace(space, backbone=dataclasses.replace(b, weights=str(path), weights_sha256=digest))
    check(resolved)
    return resolved
