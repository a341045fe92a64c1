"""A trained backbone to fine-tune GC blocks into: the paper's protocol (GCNet fine-tuned a trained ResNet-50
with GC added), and how practitioners use GC.

``backbone.pretrain: {...}`` asks the search to train the baseline once, before its trials, and cache it under
``<output.dir>/pretrained/``; ``resolve`` makes or checks the weights a space names and pins their hash.
"""

from __future__ import annotations

import dataclasses
import fcntl
import io
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import torch

from gcsearch.arch import ArchConfig
from gcsearch.errors import ConfigError
from gcsearch.files import replace_with, sweep_temporaries
from gcsearch.nn import cache
from gcsearch.nn.train import train
from gcsearch.nn.weights import check, checkpoint_weights, sha256_of
from gcsearch.settings import PretrainConfig

if TYPE_CHECKING:  # a loaded space's settings are read, never the YAML reader
    from gcsearch.space import SearchSpace


def pretrain_space(space: SearchSpace) -> SearchSpace:
    """The space the baseline is pretrained under: the file's recipe with ``backbone.pretrain``'s overrides."""
    p = space.backbone.pretrain
    assert p is not None
    over: dict[str, Any] = {
        k: v for k, v in (("lr", p.lr), ("schedule", p.schedule), ("batch_size", p.batch_size)) if v
    }
    train = dataclasses.replace(space.train, epochs=p.epochs, **over)
    data = dataclasses.replace(space.data, train_subset=p.train_subset, cache_key=None)  # other images: its own cache
    backbone = dataclasses.replace(space.backbone, weights=None, weights_sha256=None, pretrain=None)
    return dataclasses.replace(space, train=train, data=data, backbone=backbone)


def pretrain(space: SearchSpace, out: Path, stream: TextIO | None = None) -> Path:
    """Train the baseline of ``space`` under its pretraining recipe and save its weights to ``out``
    (the EMA's when the recipe keeps one: what its accuracy measured). Atomic: a kill leaves no weights file, and
    keeps the finished epochs in a checkpoint beside it, which the next call continues from; two processes that
    pretrain one recipe take turns (a lock), and the second finds the weights made."""
    if space.backbone.pretrain is None:  # `gcsearch pretrain` on a file without the section: its defaults
        space = dataclasses.replace(space, backbone=dataclasses.replace(space.backbone, pretrain=PretrainConfig()))
    pre = cache.prepare(pretrain_space(space), stream or io.StringIO())
    seed = space.backbone.pretrain.seed if space.backbone.pretrain else 0
    if stream:
        stream.write(f"pretraining the baseline for {pre.train.epochs} epochs (recipe {pre.recipe()}) -> {out}\n")
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.with_name(f".{out.name}.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released by the kernel if this process dies
        if out.is_file():  # made by another process while this one waited
            return out
        sweep_temporaries(out.parent)  # checkpoint writes of pretrainings killed mid-write
        ckpt = out.with_name(f".{out.stem}.pretraining.pt")
        if ckpt.is_file() and stream:
            done = torch.load(ckpt, map_location="cpu", weights_only=True)["epoch"] + 1
            stream.write(f"continuing the pretraining from its checkpoint: {done} of {pre.train.epochs} epochs done\n")
        metrics = train(ArchConfig(), pre, checkpoint=ckpt, seed=seed)
        state = checkpoint_weights(torch.load(ckpt, map_location="cpu", weights_only=True))
        replace_with(out, lambda t: torch.save(state, t))
        ckpt.unlink()
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
        # Named by its recipe, the data it trains on included (an image folder by its cache key).
        path = (Path(space.output_dir) / "pretrained" / f"{cache.pin(pretrain_space(space)).recipe()}.pt").resolve()
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
