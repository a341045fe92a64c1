"""The far-cue task: a proxy where global context matters. A Fashion-MNIST item and a small cue on a blank canvas,
far apart; the label needs both.

    label = (item class + shift * cue index) mod classes     (shift 5, cues blank/square: "c or c + 5")

With two cues the cue decides between the item's class c and c + 5: a pure interaction, so a network whose units
never see item and cue together, and whose classifier is linear on globally averaged features, can do no
better than guessing within the pair. The cue keeps at least ``min_distance`` empty pixels from the item's box
along some axis; the proxy ResNet's c5 sees about 19 px, so a gap of 20 leaves no unit seeing both without a
global context block. On 28-px Fashion-MNIST itself c5 is 4x4 and GC adds nothing measurable
(experiments/results/positive-control.md): this is the proxy on which its effect can be seen at all.

Deterministic and seeded (numpy's PCG64): the same settings give the same bytes on any machine. Each source
item is placed once: the training split holds one image per Fashion-MNIST training item, the test split one
per t10k item; ``data.load`` holds the validation images out of the training split as for every dataset.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from gcsearch.nn.readers import fashion_mnist
from gcsearch.settings import FarCueConfig

SHAPES = ("square", "ring", "blank", "cross")


def cue_pattern(shape: str, size: int) -> np.ndarray:
    """A size x size uint8 pattern: square (solid), ring (1-px border), blank (nothing), cross (+)."""
    p = np.zeros((size, size), np.uint8)
    if shape == "square":
        p[:] = 255
    elif shape == "ring":
        p[:] = 255
        p[1:-1, 1:-1] = 0
    elif shape == "cross":
        p[size // 2, :] = 255
        p[:, size // 2] = 255
    return p


def area_matrix(src: int, dst: int) -> np.ndarray:
    """[dst, src] weights of area resampling: row i averages the source pixels under output pixel i."""
    m = np.zeros((dst, src))
    scale = src / dst
    for i in range(dst):
        lo, hi = i * scale, (i + 1) * scale
        for j in range(int(np.floor(lo)), min(src, int(np.ceil(hi)))):
            m[i, j] = max(0.0, min(hi, j + 1) - max(lo, j))
    return m / m.sum(1, keepdims=True)


def resize_items(items: np.ndarray, size: int, chunk: int = 4096) -> np.ndarray:
    """uint8 [N, 28, 28] items area-resized to [N, size, size], a chunk at a time: the whole split in float64 held
    376 MB of a trial worker's peak (experiments/results/search_memory.md); each item's arithmetic is the same."""
    if size == items.shape[1]:
        return items.copy()
    r = area_matrix(items.shape[1], size)
    out = np.empty((len(items), size, size), np.uint8)
    for i in range(0, len(items), chunk):
        part = np.einsum("ij,njk,lk->nil", r, items[i : i + chunk].astype(np.float64), r)
        out[i : i + chunk] = np.clip(np.rint(part), 0, 255).astype(np.uint8)
    return out


def far_cue(items: np.ndarray, classes: np.ndarray, cfg: FarCueConfig, seed: int,
            num_classes: int = 10) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """One far-cue image per source item (uint8 [N, 28, 28], labels [N]): uint8 [N, 1, canvas, canvas] and int64
    labels. Item and cue positions are uniform among the placements ``min_distance`` apart."""
    n, size = len(items), cfg.canvas
    rng = np.random.default_rng(seed)
    cue_of = rng.integers(0, len(cfg.shapes), size=n)
    pos = np.zeros((n, 4), np.int64)  # item y, item x, cue y, cue x
    todo = np.arange(n)
    while len(todo):  # rejection sampling, vectorised in rounds
        m = max(4096, 64 * len(todo))
        iy, ix = rng.integers(0, size - cfg.item_size + 1, size=(2, m))
        cy, cx = rng.integers(0, size - cfg.cue + 1, size=(2, m))
        gap_x = np.maximum(cx - (ix + cfg.item_size), ix - (cx + cfg.cue))
        gap_y = np.maximum(cy - (iy + cfg.item_size), iy - (cy + cfg.cue))
        ok = np.flatnonzero(np.maximum(gap_x, gap_y) >= cfg.min_distance)[: len(todo)]
        pos[todo[: len(ok)]] = np.stack([iy[ok], ix[ok], cy[ok], cx[ok]], 1)
        todo = todo[len(ok) :]
    scaled = resize_items(items, cfg.item_size)
    patterns = np.stack([cue_pattern(s, cfg.cue) for s in cfg.shapes])
    brightness = rng.uniform(cfg.contrast, 1.0, size=n) if cfg.contrast < 1 else np.ones(n)
    out = np.zeros((n, 1, size, size), np.uint8)
    for k in range(n):
        iy, ix, cy, cx = pos[k]
        out[k, 0, iy : iy + cfg.item_size, ix : ix + cfg.item_size] = scaled[k]
        cue = np.rint(patterns[cue_of[k]] * brightness[k]).astype(np.uint8)
        out[k, 0, cy : cy + cfg.cue, cx : cx + cfg.cue] = cue
    labels = (classes.astype(np.int64) + cfg.shift * cue_of) % num_classes
    return out, labels


@functools.lru_cache(maxsize=4)
def split(cfg: FarCueConfig, root: str | None, which: str, num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The far-cue training split (one image per Fashion-MNIST training item) or test split (per t10k item)."""
    x, y = fashion_mnist(root, False, which)
    images, labels = far_cue(x[:, 0].numpy(), y.numpy(), cfg, cfg.seed + (which != "train"), num_classes)
    return torch.from_numpy(images), torch.from_numpy(labels)
