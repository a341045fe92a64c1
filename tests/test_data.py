import gzip
import struct

import pytest
import torch

from gcsearch import DataError
from gcsearch.nn import batches, readers
from gcsearch.nn import data as datasets
from gcsearch.settings import DataConfig


def write_idx(path, array: torch.Tensor, code: int = 0x08, gz: bool = False):
    """A valid IDX file: magic (0, 0, type, ndim), big-endian dims, big-endian data."""
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    fmt = {0x08: "B", 0x0C: "i"}[code]
    body = struct.pack(f">{array.numel()}{fmt}", *array.flatten().tolist())
    (gzip.open if gz else open)(path, "wb").write(header + body)


def fake_fashion_mnist(folder, n_train=40, n_test=10, gz=True):
    folder.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        ext = ".gz" if gz else ""
        images = torch.randint(0, 256, (n, 28, 28), generator=g, dtype=torch.uint8)
        labels = torch.arange(n, dtype=torch.uint8) % 10
        write_idx(folder / f"{prefix}-images-idx3-ubyte{ext}", images, gz=gz)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte{ext}", labels, gz=gz)
    return images, labels


@pytest.fixture(autouse=True)
def _fresh_cache():
    readers.fashion_mnist.cache_clear()
    yield
    readers.fashion_mnist.cache_clear()


@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_uint8_and_int32(tmp_path, gz):
    ext = ".gz" if gz else ""
    images = torch.randint(0, 256, (3, 4, 5), dtype=torch.uint8)
    write_idx(tmp_path / f"a{ext}", images, gz=gz)
    assert torch.equal(readers.read_idx(tmp_path / f"a{ext}"), images)
    values = torch.tensor([[1, -2], [70000, -70000]], dtype=torch.int32)
    write_idx(tmp_path / f"b{ext}", values, code=0x0C, gz=gz)
    # Multi-byte values are big-endian on disk and must come back native.
    assert torch.equal(readers.read_idx(tmp_path / f"b{ext}"), values)


def test_read_idx_rejects_bad_files(tmp_path):
    (tmp_path / "junk").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(DataError, match="bad magic"):
        readers.read_idx(tmp_path / "junk")
    write_idx(tmp_path / "ok", torch.zeros(4, 3, dtype=torch.uint8))
    data = (tmp_path / "ok").read_bytes()
    (tmp_path / "cut").write_bytes(data[:-2])
    with pytest.raises(DataError, match="truncated"):
        readers.read_idx(tmp_path / "cut")


@pytest.mark.parametrize("layout", ["root", "torchvision", "env"])
def test_fashion_mnist_found_in_each_place(tmp_path, monkeypatch, layout):
    folder = tmp_path / "FashionMNIST" / "raw" if layout == "torchvision" else tmp_path
    images, labels = fake_fashion_mnist(folder, gz=layout != "root")
    root = None if layout == "env" else str(tmp_path)
    if layout == "env":
        monkeypatch.setenv("GCSEARCH_DATA", str(tmp_path))
    cfg = DataConfig(dataset="fashion_mnist", root=root, val_size=10)
    splits = datasets.load(cfg, (1, 28, 28), 10, seed=0, test=True)
    assert len(splits.train_x) == 30 and len(splits.val_x) == 10
    # The test split is the t10k files, untouched by the train/validation permutation.
    assert torch.equal(splits.test_x[:, 0], images) and torch.equal(splits.test_y, labels.long())


def test_missing_fashion_mnist_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setattr(readers, "DEBIAN_FASHION_MNIST", str(tmp_path / "nowhere"))
    monkeypatch.delenv("GCSEARCH_DATA", raising=False)
    with pytest.raises(DataError, match="apt-get install dataset-fashion-mnist"):
        datasets.load(DataConfig(root=str(tmp_path)), (1, 28, 28), 10, seed=0)


def test_real_fashion_mnist_from_debian_package():
    # `make test` installs Debian's dataset-fashion-mnist; this reads the real files.
    cfg = DataConfig(dataset="fashion_mnist", val_size=5000, train_subset=1000)
    splits = datasets.load(cfg, (1, 28, 28), 10, seed=0, test=True)
    assert splits.train_x.shape == (1000, 1, 28, 28) and splits.train_x.dtype == torch.uint8
    assert splits.val_x.shape == (5000, 1, 28, 28) and splits.test_x.shape == (10000, 1, 28, 28)
    assert set(splits.test_y.tolist()) == set(range(10))
    assert 0.2 < splits.mean[0] < 0.4  # Fashion-MNIST's mean pixel is about 0.29


def test_splits_are_disjoint_seeded_and_identical_across_calls():
    cfg = DataConfig(dataset="synthetic", synthetic_size=200, val_size=50, train_subset=100)
    a = datasets.load(cfg, (1, 28, 28), 10, seed=3)
    b = datasets.load(cfg, (1, 28, 28), 10, seed=3)
    c = datasets.load(cfg, (1, 28, 28), 10, seed=4)
    assert torch.equal(a.train_x, b.train_x) and torch.equal(a.val_x, b.val_x)
    assert not torch.equal(a.val_x, c.val_x)
    # No validation image is also a training image.
    flat_train = {bytes(t.flatten().tolist()) for t in a.train_x}
    assert not any(bytes(v.flatten().tolist()) in flat_train for v in a.val_x)
    assert len(a.train_x) == 100 and len(a.val_x) == 50 and a.test_x is None


def test_val_size_too_large_is_a_data_error():
    cfg = DataConfig(dataset="synthetic", synthetic_size=100, val_size=100)
    with pytest.raises(DataError, match="val_size"):
        datasets.load(cfg, (1, 28, 28), 10, seed=0)


def test_augment_flips_and_crops_per_image():
    x = torch.arange(2 * 1 * 4 * 4, dtype=torch.uint8).view(2, 1, 4, 4)
    same = batches.augment(x, flip=False, crop_padding=0, generator=torch.Generator().manual_seed(0))
    assert torch.equal(same, x)
    outs = [batches.augment(x.repeat(50, 1, 1, 1), True, 1, torch.Generator().manual_seed(s)) for s in range(2)]
    assert outs[0].shape == (100, 1, 4, 4)
    # Seeded: the same generator seed gives the same batch; different images get different crops.
    again = batches.augment(x.repeat(50, 1, 1, 1), True, 1, torch.Generator().manual_seed(0))
    assert torch.equal(outs[0], again)
    assert len({bytes(o.flatten().tolist()) for o in outs[0][::2]}) > 5


def test_normalize_keeps_channels_last_and_standardises():
    cfg = DataConfig(dataset="synthetic", synthetic_size=300, val_size=50)
    s = datasets.load(cfg, (1, 28, 28), 10, seed=0)
    norm = batches.Normalize(s.mean, s.std, torch.device("cpu"), channels_last=True)
    out = norm(s.train_x)
    assert out.is_contiguous(memory_format=torch.channels_last)
    assert abs(out.mean().item()) < 1e-3 and abs(out.std().item() - 1) < 1e-2
