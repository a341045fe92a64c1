"""Reading a dataset whole, as uint8 ``[N, C, H, W]`` and int64 label tensors: Fashion-MNIST's IDX files, CIFAR in
torchvision's format, the synthetic set of the tests; and the one seeded order a training split is cut by (the
in-memory datasets and the image cache both use it).
"""

from __future__ import annotations

import functools
import gzip
import os
import struct
from pathlib import Path

import numpy as np
import torch

from gcsearch.errors import DataError

DEBIAN_FASHION_MNIST = "/usr/share/datasets/fashion-mnist"
IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}  # big-endian


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
def fashion_mnist(root: str | None, download: bool, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    prefix = "train" if split == "train" else "t10k"
    dirs = _fashion_mnist_dirs(root)
    images = _find_idx(dirs, f"{prefix}-images-idx3-ubyte")
    labels = _find_idx(dirs, f"{prefix}-labels-idx1-ubyte")
    if images is None or labels is None:
        if download and root:
            import torchvision

            torchvision.datasets.FashionMNIST(root, train=split == "train", download=True)
            return fashion_mnist(root, False, split)
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
def cifar(name: str, root: str | None, download: bool, split: str) -> tuple[torch.Tensor, torch.Tensor]:
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


def synthetic(n: int, size: tuple[int, int, int], classes: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Learnable but not trivial: each class is a smooth random template (the same in every split);
    images add noise drawn with the split's ``seed``."""
    c, h, w = size
    coarse = torch.rand(classes, c, 4, 4, generator=torch.Generator().manual_seed(0))
    templates = torch.nn.functional.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, classes, (n,), generator=g)
    x = templates[y] * 0.6 + torch.rand(n, c, h, w, generator=g) * 0.4
    return (x * 255).round().to(torch.uint8), y


def split_order(n: int, seed: int) -> list[int]:
    """The one seeded permutation of a training split: validation first, then the training subset (the image
    cache draws its split with it too)."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
