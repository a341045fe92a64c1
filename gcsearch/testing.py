"""Helpers the tests and the experiments share (as Optuna ships ``optuna.testing``), so neither imports the
other. Pure Python."""

from __future__ import annotations

from pathlib import Path


def shown(path: str | Path) -> str:
    """A path as a result file shows it: relative to the repository when inside it (no machine's path in a report)."""
    root = Path(__file__).resolve().parent.parent
    try:
        return str(Path(path).resolve().relative_to(root))
    except ValueError:
        return str(path)


def descendants(root: int) -> dict[int, str]:
    """pid -> command line of every process below ``root`` (Linux /proc): other searches on the machine are
    left out."""
    parent, cmd = {}, {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                cmd[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            parent[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])

    def descends(pid: int) -> bool:
        while pid > 1:
            if pid == root:
                return True
            pid = parent.get(pid, 0)
        return False

    return {pid: c for pid, c in cmd.items() if descends(pid)}


def trial_workers(root: int) -> list[int]:
    """PIDs of Ray workers running a gcsearch trial (Ray sets their process title) below process ``root``."""
    return [pid for pid, title in descendants(root).items()
            if title.startswith("ray::") and ("ImplicitFunc" in title or "gcsearch_trial" in title)]  # fmt: skip


def image_folder(root: Path, classes: int = 3, per_class: int = 40, test_per_class: int = 5, size: int = 48,
                 seed: int = 0, odd_modes: bool = True) -> Path:  # fmt: skip
    """A small image folder, root/train/<class>/*.jpg|png and root/val/<class>/..., learnable (each class a
    colour pattern of its own, with noise): JPEGs and PNGs of a few sizes around ``size``, and with ``odd_modes``
    one grayscale, one RGBA and one palette image, as users' folders hold."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (classes, 3, 4, 4))
    for split, n in (("train", per_class), ("val", test_per_class)):
        for k in range(classes):
            folder = root / split / f"class{k}"
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                h, w = size + int(rng.integers(0, size // 2)), size + int(rng.integers(0, size // 2))
                pattern = np.kron(base[k], np.ones((1, h // 4 + 1, w // 4 + 1)))[:, :h, :w]
                pixels = np.clip(pattern + rng.normal(0, 40, pattern.shape), 0, 255).astype(np.uint8)
                image = Image.fromarray(pixels.transpose(1, 2, 0))
                image.save(folder / (f"{i}.png" if i % 5 == 0 else f"{i}.jpg"))
    if odd_modes:
        first = root / "train" / "class0"
        Image.open(first / "1.jpg").convert("L").save(first / "gray.jpg")
        Image.open(first / "2.jpg").convert("RGBA").save(first / "rgba.png")
        Image.open(first / "3.jpg").convert("P").save(first / "palette.png")
    return root
