"""Datasets as uint8 ``[N, C, H, W]`` tensors, split once and batched with tensor operations.

Small datasets (Fashion-MNIST, CIFAR, synthetic) are read whole by each process; an image folder is decoded
once into a cache that every trial memory-maps (``cache.py``). Batches are gathered on the CPU and moved to the
training device one at a time (``fetch``); normalisation, flips, crops and random-resized crops are tensor
operations on whole batches, on the device, no per-sample Python. The validation images are held out of the
training split with a seeded permutation, so every trial of a search sees the same train subset and the same
validation set; the test split is read only when asked for (``gcsearch train --test``).
"""

from __future__ import annotations

import functools
import gzip
import math
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gcsearch.errors import DataError
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


# --------------------------------------------------------------------------- readers


def read_idx(path: str | Path) -> torch.Tensor:
    """An IDX file (the MNIST format, gzipped or not) as a tensor."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except OSError as err:
        raise DataError(f"cannot read {path}: {err}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_DTYPES:
        raise DataError(f"{path} is not an IDX file (bad magic number)")
    ndim = raw[3]
    dims = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    dtype = np.dtype(IDX_DTYPES[raw[2]])
    count = int(np.prod(dims))
    body = raw[4 + 4 * ndim :]
    if len(body) != count * dtype.itemsize:
        raise DataError(f"{path} is truncated: expected {count * dtype.itemsize} bytes of data, found {len(body)}")
    data = np.frombuffer(body, dtype=dtype).astype(dtype.newbyteorder("="))
    return torch.from_numpy(data).view(*dims)


def _fashion_mnist_dirs(root: str | None) -> list[Path]:
    candidates = [root, os.environ.get("GCSEARCH_DATA"), DEBIAN_FASHION_MNIST]
    dirs: list[Path] = []
    for c in candidates:
        if c:
            # root itself, or torchvision's layout root/FashionMNIST/raw
            dirs += [Path(c), Path(c) / "fashion-mnist", Path(c) / "FashionMNIST" / "raw"]
    return dirs


def _find_idx(dirs: list[Path], stem: str) -> Path | None:
    for d in dirs:
        for name in (stem, stem + ".gz"):
            if (d / name).is_file():
                return d / name
    return None


@functools.lru_cache(maxsize=4)
def _fashion_mnist(root: str | None, download: bool, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    prefix = "train" if split == "train" else "t10k"
    dirs = _fashion_mnist_dirs(root)
    images = _find_idx(dirs, f"{prefix}-images-idx3-ubyte")
    labels = _find_idx(dirs, f"{prefix}-labels-idx1-ubyte")
    if images is None or labels is None:
        if download and root:
            import torchvision

            torchvision.datasets.FashionMNIST(root, train=split == "train", download=True)
            return _fashion_mnist(root, False, split)
        looked = ", ".join(str(d) for d in dirs)
        raise DataError(
            f"Fashion-MNIST {split} files not found (looked in {looked}); install them with "
            "`apt-get install dataset-fashion-mnist`, point data.root or $GCSEARCH_DATA at the idx files, "
            "or set data.download: true with a data.root"
        )
    x = read_idx(images)
    y = read_idx(labels).long()
    if x.ndim != 3 or len(x) != len(y):
        raise DataError(f"{images} and {labels} do not hold matching images and labels")
    return x.unsqueeze(1), y  # [N, 1, 28, 28]


@functools.lru_cache(maxsize=4)
def _cifar(name: str, root: str | None, download: bool, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    import torchvision

    if not root:
        raise DataError(f"{name} needs data.root: the folder holding torchvision's {name} files")
    cls = torchvision.datasets.CIFAR10 if name == "cifar10" else torchvision.datasets.CIFAR100
    try:
        ds = cls(root, train=split == "train", download=download)
    except RuntimeError as err:
        raise DataError(f"{name} not found under {root} ({err}); set data.download: true to fetch it") from None
    x = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()  # [N, 3, 32, 32]
    return x, torch.tensor(ds.targets, dtype=torch.long)


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


def _synthetic(n: int, size: tuple[int, int, int], classes: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Learnable but not trivial: each class is a smooth random template (the same in every split);
    images add noise drawn with the split's ``seed``."""
    c, h, w = size
    coarse = torch.rand(classes, c, 4, 4, generator=torch.Generator().manual_seed(0))
    templates = torch.nn.functional.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, classes, (n,), generator=g)
    x = templates[y] * 0.6 + torch.rand(n, c, h, w, generator=g) * 0.4
    return (x * 255).round().to(torch.uint8), y


# --------------------------------------------------------------------------- splits


def load(cfg: DataConfig, size: tuple[int, int, int], classes: int, seed: int, test: bool = False) -> Splits:
    """The train subset, the held-out validation set and (``test=True``) the test split."""
    test_x = test_y = None
    if cfg.dataset == "fashion_mnist":
        x, y = _fashion_mnist(cfg.root, cfg.download, "train")
        if test:
            test_x, test_y = _fashion_mnist(cfg.root, cfg.download, "test")
    elif cfg.dataset in ("cifar10", "cifar100"):
        x, y = _cifar(cfg.dataset, cfg.root, cfg.download, "train")
        if test:
            test_x, test_y = _cifar(cfg.dataset, cfg.root, cfg.download, "test")
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
        x, y = _synthetic(cfg.synthetic_size, size, classes, seed=1234)
        if test:
            test_x, test_y = _synthetic(cfg.synthetic_size // 4, size, classes, seed=4321)
    if tuple(x.shape[1:]) != tuple(size):
        raise DataError(f"{cfg.dataset} images are {tuple(x.shape[1:])}, but backbone.input_size is {size}")
    if cfg.val_size >= len(x):
        raise DataError(f"data.val_size {cfg.val_size} leaves no training images of {len(x)}")
    # One seeded permutation: validation first, then the training subset; identical for every trial.
    order = torch.tensor(split_order(len(x), seed))
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


def split_order(n: int, seed: int) -> list[int]:
    """The one seeded permutation of a training split: validation first, then the training subset (the image
    cache draws its split with it too)."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()


# --------------------------------------------------------------------------- batches


def fetch(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A batch (rows already gathered on the CPU, from memory or a memory-mapped cache) on ``device``: through
    pinned memory and asynchronously on CUDA, so the copy overlaps the previous step."""
    if device.type != "cuda":
        return x
    return x.pin_memory().to(device, non_blocking=True)


class Normalize:
    """uint8 [N, C, H, W] -> float, (x / 255 - mean) / std, in the memory format the model uses."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...], device: torch.device, channels_last: bool):
        self.device = device
        self.scale = (1 / (255 * torch.tensor(std, device=device))).view(1, -1, 1, 1)
        self.shift = (-torch.tensor(mean, device=device) / torch.tensor(std, device=device)).view(1, -1, 1, 1)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(memory_format=self.memory_format).float()
        return torch.addcmul(self.shift, x, self.scale)


def augment(x: torch.Tensor, flip: bool, crop_padding: int, generator: torch.Generator,
            resized_crop: float = 0.0) -> torch.Tensor:  # fmt: skip
    """Random-resized crops (``resized_crop``: the smallest area share), horizontal flips and random crops after
    zero padding, for a whole uint8 batch at once, on its device."""
    if resized_crop:
        x = random_resized_crop(x, resized_crop, generator)
    n, c, h, w = x.shape
    dev = x.device
    if flip:
        mask = torch.rand(n, generator=generator, device=generator.device).to(dev) < 0.5
        x = torch.where(mask.view(n, 1, 1, 1), x.flip(3), x)
    if crop_padding:
        p = crop_padding
        padded = torch.nn.functional.pad(x, (p, p, p, p))
        shifts = torch.randint(0, 2 * p + 1, (2, n), generator=generator, device=generator.device).to(dev)
        rows = (shifts[0].view(n, 1) + torch.arange(h, device=dev)).view(n, 1, h, 1)
        cols = (shifts[1].view(n, 1) + torch.arange(w, device=dev)).view(n, 1, 1, w)
        batch = torch.arange(n, device=dev).view(n, 1, 1, 1)
        chans = torch.arange(c, device=dev).view(1, c, 1, 1)
        x = padded[batch, chans, rows, cols]  # one gather: [N, C, H, W]
    return x


def random_resized_crop(x: torch.Tensor, min_area: float, generator: torch.Generator) -> torch.Tensor:
    """Each image's random crop of ``min_area``..1 of its area, aspect ratio 3/4..4/3 (the Inception crop),
    resized back to the batch's size: one affine grid and one bilinear sample for the whole batch."""
    n = x.shape[0]
    draw = torch.rand(4, n, generator=generator, device=generator.device).to(x.device)
    area = min_area + (1 - min_area) * draw[0]
    ratio = torch.exp(math.log(3 / 4) + (math.log(4 / 3) - math.log(3 / 4)) * draw[1])
    w, h = (area * ratio).sqrt().clamp(max=1), (area / ratio).sqrt().clamp(max=1)  # shares of width and height
    theta = torch.zeros(n, 2, 3, device=x.device)
    theta[:, 0, 0], theta[:, 1, 1] = w, h
    theta[:, 0, 2], theta[:, 1, 2] = (2 * draw[2] - 1) * (1 - w), (2 * draw[3] - 1) * (1 - h)  # centres, inside
    grid = torch.nn.functional.affine_grid(theta, list(x.shape), align_corners=False)
    out = torch.nn.functional.grid_sample(x.float(), grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out.round_().clamp_(0, 255).to(torch.uint8)
