"""One image file -> a uint8 [C, H, W] array at the proxy resolution: what the cache's decode workers run.
PIL and numpy only, so a worker process starts in a fraction of a second (no torch).

The resize keeps the aspect ratio: the image is scaled so it covers H x W (its shorter side to the target, for a
square target), then centre-cropped; the object in the middle of a photo stays whole and is never squashed,
and the random-resized crop of training (on whole batches, on the device) adds scale variation back. JPEGs are
decoded straight at a reduced scale (PIL's ``draft``: the DCT does the first halvings for free), never below
the size the crop needs. Grey, RGBA and palette images are converted to the space's channels the way
torchvision's default loader does (``Image.convert``: alpha is dropped, a palette is expanded).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

Image.MAX_IMAGE_PIXELS = 1 << 30  # a large photo is data here, not a decompression bomb aimed at a server


def decode(path: str, size: tuple[int, int, int]) -> np.ndarray:
    """The image at ``path`` as uint8 [C, H, W]; raises OSError (or ValueError) for a file PIL cannot read
    whole (a truncated JPEG included: the pixels are decoded here, not lazily later)."""
    c, h, w = size
    mode = "L" if c == 1 else "RGB"
    with Image.open(path) as file:
        scale = max(h / file.height, w / file.width)
        if file.format == "JPEG":
            file.draft(mode, (math.ceil(file.width * scale), math.ceil(file.height * scale)))
        im: Image.Image = file
        if im.mode == "P" and "transparency" in im.info:
            im = im.convert("RGBA")  # PIL warns when a transparent palette goes to RGB directly
        im = im.convert(mode)
        scale = max(h / im.height, w / im.width)  # again: draft may have scaled the image already
        rw, rh = max(w, round(im.width * scale)), max(h, round(im.height * scale))
        im = im.resize((rw, rh), Image.Resampling.BILINEAR, reducing_gap=None)
        left, top = (rw - w) // 2, (rh - h) // 2
        im = im.crop((left, top, left + w, top + h))
        pixels = np.asarray(im, dtype=np.uint8)
    return pixels[None] if c == 1 else pixels.transpose(2, 0, 1)


@dataclass(frozen=True)
class Chunk:
    """What a decode worker reports of the rows it wrote: the paths it could not read (their rows left empty)
    and the crc32 of its rows' bytes (a checksum of the content, cheap beside a decode)."""

    bad: tuple[str, ...]
    crc: int


def decode_rows(task: tuple[int, Sequence[str]], array: str, size: tuple[int, int, int], skip_bad: bool) -> Chunk:
    """Decode ``task``'s paths into rows ``start``.. of the .npy file ``array`` (memory-mapped, written in place:
    no pixels cross back to the parent). Without ``skip_bad`` the first unreadable file raises ``BadImage``."""
    start, paths = task
    rows = np.load(array, mmap_mode="r+")
    good = np.ones(len(paths), dtype=bool)
    bad = []
    for k, path in enumerate(paths):
        try:
            rows[start + k] = decode(path, size)
        except (OSError, ValueError, SyntaxError) as err:  # PIL raises each for a corrupt file
            if not skip_bad:
                raise BadImage(path, f"{type(err).__name__}: {err}") from None
            bad.append(path)
            good[k] = False
    rows.flush()
    return Chunk(tuple(bad), zlib.crc32(np.ascontiguousarray(rows[start : start + len(paths)][good]).tobytes()))


class BadImage(Exception):
    """An image file that cannot be decoded (picklable: it crosses the decode pool)."""

    def __init__(self, path: str, why: str):
        super().__init__(path, why)
        self.path, self.why = path, why
