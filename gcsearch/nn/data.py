"""A space's data as splits of uint8 ``[N, C, H, W]`` tensors (``Splits``): the training subset, the validation
images held out of the training split, and (when asked, ``gcsearch train --test``) the test split.

Small datasets (Fashion-MNIST, CIFAR, synthetic: ``readers.py``; the far cue: ``farcue.py``) are read whole by
each process; an image folder is decoded once into a cache that every trial memory-maps (``cache.py``). The
validation images are held out with a seeded permutation (``readers.split_order``), so every trial of a search
sees the same train subset and the same validation set. Batches are cut from them by ``batches.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from gcsearch.errors import DataError
from gcsearch.nn import readers
from gcsearch.preprocess import class_names
from gcsearch.settings import DataConfig

DEBIAN_FASHION_MNIST = "/usr/share/datasets/fashion-mnist"
IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}  # big-endian


@dataclass(frozen=True)
class Splits:
    """uint8 images [N, C, H, W] and int64 labels [N] per split, plus the normalisation to apply."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    mean: tuple[float, ...]
    std: tuple[float, ...]
    test_x: torch.Tensor | None = None
    test_y: torch.Tensor | None = None
    classes: tuple[str, ...] = ()  # label i's name


def _cached(cfg: DataConfig, test: bool) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """A prepared image folder (``cache.py``), memory-mapped: nothing decoded here."""
    from gcsearch.nn import cache

    if not cfg.cache_key:
        raise DataError(f"the image folder {cfg.root} is not prepared: run `gcsearch prepare SPACE` (gcsearch run "
                        "and gcsearch train prepare it themselves)")  # fmt: skip
    base = Path(cfg.cache_dir or "") / cfg.cache_key
    manifest, arrays = cache.open_arrays(base, ("train", "val"))
    if test:
        tests = sorted(base.parent.glob(f"{cfg.cache_key}-test-*"), key=lambda p: p.stat().st_mtime)
        if not tests:
            raise DataError(f"the test split of {cfg.root} is not prepared: run `gcsearch prepare --test SPACE`")
        arrays.update(cache.open_arrays(tests[-1], ("test",))[1])
    return {k: torch.from_numpy(v) for k, v in arrays.items()}, manifest


# --------------------------------------------------------------------------- splits


def load(cfg: DataConfig, size: tuple[int, int, int], classes: int, seed: int, test: bool = False) -> Splits:
    """The train subset, the held-out validation set and (``test=True``) the test split."""
    test_x = test_y = None
    if cfg.dataset == "fashion_mnist":
        x, y = readers.fashion_mnist(cfg.root, cfg.download, "train")
        if test:
            test_x, test_y = readers.fashion_mnist(cfg.root, cfg.download, "test")
    elif cfg.dataset in ("cifar10", "cifar100"):
        x, y = readers.cifar(cfg.dataset, cfg.root, cfg.download, "train")
        if test:
            test_x, test_y = readers.cifar(cfg.dataset, cfg.root, cfg.download, "test")
    elif cfg.dataset == "imagefolder":  # decoded once, selected and split by `gcsearch prepare`
        arrays, manifest = _cached(cfg, test)
        if tuple(manifest["size"]) != tuple(size):
            raise DataError(f"the cache of {cfg.root} holds {tuple(manifest['size'])} images, but "
                            f"backbone.input_size is {size}")  # fmt: skip
        stats = tuple(manifest["mean"]), tuple(manifest["std"])
        return Splits(arrays["train_x"], arrays["train_y"], arrays["val_x"], arrays["val_y"], *stats,
                      arrays.get("test_x"), arrays.get("test_y"), tuple(manifest["classes"]))  # fmt: skip
    elif cfg.dataset == "farcue":  # generated from Fashion-MNIST, seeded (nn/farcue.py)
        from gcsearch.nn import farcue

        x, y = farcue.split(cfg.farcue, cfg.root, "train", classes)
        if test:
            test_x, test_y = farcue.split(cfg.farcue, cfg.root, "test", classes)
    else:
        x, y = readers.synthetic(cfg.synthetic_size, size, classes, seed=1234)
        if test:
            test_x, test_y = readers.synthetic(cfg.synthetic_size // 4, size, classes, seed=4321)
    if tuple(x.shape[1:]) != tuple(size):
        raise DataError(f"{cfg.dataset} images are {tuple(x.shape[1:])}, but backbone.input_size is {size}")
    if cfg.val_size >= len(x):
        raise DataError(f"data.val_size {cfg.val_size} leaves no training images of {len(x)}")
    # One seeded permutation: validation first, then the training subset; identical for every trial.
    order = torch.tensor(readers.split_order(len(x), seed))
    val_idx = order[: cfg.val_size]
    train_idx = order[cfg.val_size :]
    if cfg.train_subset is not None:
        train_idx = train_idx[: cfg.train_subset]
    train_x = x[train_idx]
    # Per-channel statistics of the training images, so normalisation never peeks at validation data.
    pixels = train_x.float().div_(255).transpose(0, 1).reshape(x.shape[1], -1)
    return Splits(
        train_x=train_x,
        train_y=y[train_idx],
        val_x=x[val_idx],
        val_y=y[val_idx],
        mean=tuple(pixels.mean(1).tolist()),
        std=tuple(pixels.std(1).clamp_min(1e-3).tolist()),
        test_x=test_x,
        test_y=test_y,
        classes=class_names(cfg.dataset, classes),
    )
