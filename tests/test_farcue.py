"""The far-cue task (gcsearch/nn/farcue.py): deterministic, the item and the cue always far apart, the label
needing both; loaded through data.load like every dataset."""

import numpy as np
import torch

from gcsearch.nn import data as datasets
from gcsearch.nn import farcue
from gcsearch.settings import DataConfig, FarCueConfig

CFG = FarCueConfig(canvas=40, item_size=14, cue=5, min_distance=20, shapes=("blank", "square"), shift=5, seed=3)


def items(n=300):
    rng = np.random.default_rng(0)
    return rng.integers(1, 256, (n, 28, 28)).astype(np.uint8), rng.integers(0, 10, n)


def test_the_same_settings_give_the_same_bytes_and_another_seed_other_ones():
    x, y = items()
    a, la = farcue.far_cue(x, y, CFG, seed=3)
    b, lb = farcue.far_cue(x, y, CFG, seed=3)
    c, _ = farcue.far_cue(x, y, CFG, seed=4)
    assert a.shape == (300, 1, 40, 40) and a.dtype == np.uint8 and np.array_equal(a, b) and np.array_equal(la, lb)
    assert not np.array_equal(a, c)


def test_item_and_cue_are_apart_and_the_label_needs_both():
    x, y = items()
    square = FarCueConfig(**{**CFG.__dict__, "shapes": ("square", "square")})  # cue always drawn: find it
    images, labels = farcue.far_cue(x, y, square, seed=1)
    for img, item_class, label in zip(images[:, 0], y, labels, strict=True):
        rows, cols = np.nonzero(img == 255)
        assert len(rows) >= 25  # the cue's 5x5 square, at least
        cue = [(r, c) for r, c in zip(rows, cols, strict=True) if img[r : r + 5, c : c + 5].min() == 255]
        cy, cx = cue[0]
        item = img.copy()
        item[cy : cy + 5, cx : cx + 5] = 0
        iy, ix = np.nonzero(item)
        gap = max(max(cx - (ix.max() + 1), ix.min() - (cx + 5)), max(cy - (iy.max() + 1), iy.min() - (cy + 5)))
        assert gap >= 20
        assert (label - item_class) % 10 in (0, 5)
    _, plain = farcue.far_cue(x, y, CFG, seed=1)
    # With a blank and a square cue the label is c or c + 5: the item alone cannot tell which.
    assert set(((plain - y) % 10).tolist()) == {0, 5}


def test_loaded_as_a_dataset_with_disjoint_validation_images():
    cfg = DataConfig(dataset="farcue", val_size=500, train_subset=1000, farcue=CFG)
    splits = datasets.load(cfg, (1, 40, 40), 10, seed=0, test=True)
    assert splits.train_x.shape == (1000, 1, 40, 40) and splits.val_x.shape == (500, 1, 40, 40)
    assert splits.test_x.shape == (10000, 1, 40, 40) and set(splits.train_y.tolist()) == set(range(10))
    again = datasets.load(cfg, (1, 40, 40), 10, seed=0)
    assert torch.equal(splits.val_x, again.val_x)


def test_a_graded_cue_changes_only_the_cue_brightness():
    x, y = items()
    square = FarCueConfig(**{**CFG.__dict__, "shapes": ("square", "square")})
    bright, labels = farcue.far_cue(x, y, square, seed=1)
    faint, faint_labels = farcue.far_cue(x, y, FarCueConfig(**{**square.__dict__, "contrast": 0.25}), seed=1)
    # The same placements and labels; where the bright cue is drawn, the graded one is dimmer, down to 0.25 x 255.
    cue = (bright == 255) & (faint != bright)
    assert np.array_equal(labels, faint_labels) and np.array_equal(bright[~cue], faint[~cue])
    levels = faint[cue]
    assert levels.min() >= round(0.25 * 255) and levels.max() < 255 and len(np.unique(levels)) > 50


def test_with_four_shapes_only_the_shape_says_the_label():
    _, y = items()
    dark = np.zeros((len(y), 28, 28), np.uint8)  # blank items: an image's lit pixels are its cue's
    four = FarCueConfig(**{**CFG.__dict__, "shapes": ("blank", "ring", "square", "cross")})
    images, labels = farcue.far_cue(dark, y, four, seed=1)
    lit = (images > 0).reshape(len(y), -1).sum(1)
    shift = (labels - y) % 10
    # Blank (0 lit) and square (25) keep the item's class, ring (16) and cross (9) make it c + 5: neither the cue's
    # presence nor its brightness tells the label, its shape does.
    assert {int(n): set(shift[lit == n].tolist()) for n in np.unique(lit)} == {0: {0}, 9: {5}, 16: {5}, 25: {0}}


def test_items_resized_a_chunk_at_a_time_are_the_same_bytes():
    x, _ = items(1000)
    whole = farcue.resize_items(x, 14, chunk=len(x))
    # Chunks (the memory they save) change nothing: each item's arithmetic is its own.
    assert np.array_equal(farcue.resize_items(x, 14, chunk=97), whole) and whole.shape == (1000, 14, 14)
