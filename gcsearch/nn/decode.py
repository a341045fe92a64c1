"""One image file -> a uint8 [C, H, W] array at the proxy resolution: what the cache's decode workers run.
PIL and numpy only, so a worker process starts in a fraction of a second (no torch).

The resize keeps the aspect ratio: the image is scaled so it covers H x W (its shorter side to the target, for a
square target), then centre-cropped; the object in the middle of a photo stays whole and is never squashed,
and the random-resized crop of training (on whole batches, on the device) adds scale variation back. JPEGs are
decoded straight at a reduced scale (PIL's ``draft``: the DCT does the first halvings for free), never below
the size the crop needs. As a PIL user expects: the EXIF orientation is applied (``ImageOps.exif_transpose``: a
phone's portrait photo stands upright); 16-bit images are scaled to 8 bits (65535 -> 255; PIL's ``convert`` would
clip them, a 16-bit PNG turning white); grey, LA, RGBA, CMYK and palette images are converted to the space's
channels the way torchvision's default loader does (``Image.convert``: alpha dropped, a palette expanded, CMYK by
PIL's conversion).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps

Image.MAX_IMAGE_PIXELS = 1 << 30  # a large photo is data here, not a decompression bomb aimed at a server
SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N", "I")  # PIL's modes of 16-bit (and 32-bit integer) images
TURNED = (5, 6, 7, 8)  # EXIF orientations that turn the image by 90 degrees


def decode(path: str, size: tuple[int, int, int]) -> np.ndarray:
    """The image at ``path`` as uint8 [C, H, W]; raises OSError (or ValueError) for a file PIL cannot read
    whole (a truncated JPEG included: the pixels are decoded here, not lazily later)."""
    with Image.open(path) as file:
        return decode_image(file, size)


def decode_image(file: Image.Image, size: tuple[int, int, int]) -> np.ndarray:
    """An opened image as uint8 [C, H, W] (``decode``'s rule); one opened and not yet loaded decodes a JPEG at a
    reduced scale. What a predict transform runs too, so an export sees its images as its trials did."""
    c, h, w = size
    mode = "L" if c == 1 else "RGB"
    upright = (file.height, file.width)
    if file.getexif().get(0x0112, 1) in TURNED:  # the stored image is on its side: its height becomes the width
        upright = (file.width, file.height)
    if file.format == "JPEG":  # draft acts only before the pixels are read (a loaded image ignores it)
        scale = max(h / upright[0], w / upright[1])
        file.draft(mode, (math.ceil(file.width * scale), math.ceil(file.height * scale)))
    im: Image.Image = ImageOps.exif_transpose(file)
    if im.mode in SIXTEEN_BIT:
        im = Image.fromarray(np.clip(np.rint(np.asarray(im, dtype=np.float64) / 257), 0, 255).astype(np.uint8))
    if im.mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")  # PIL warns when a transparent palette goes to RGB directly
    im = im.convert(mode)
    scale = max(h / im.height, w / im.width)  # again: draft may have scaled the image already
    rw, rh = max(w, round(im.width * scale)), max(h, round(im.height * scale))
    im = im.resize((rw, rh), Image.Resampling.BILINEAR, reducing_gap=None)
    left, top = (rw - w) // 2, (rh - h) // 2
    pixels = np.asarray(im.crop((left, top, left + w, top + h)), dtype=np.uint8)
    return pixels[None] if c == 1 else pixels.transpose(2, 0, 1)


@dataclass(frozen=True)
class Chunk:
    """What a decode worker reports of the rows it wrote: the paths it could not read (their rows left empty) with
    why, and the crc32 of its rows' bytes (a checksum of the content, cheap beside a decode)."""

    bad: tuple[tuple[str, str], ...]  # (path, why)
    crc: int


def decode_rows(task: tuple[int, Sequence[str]], array: str, size: tuple[int, int, int]) -> Chunk:
    """Decode ``task``'s paths into rows ``start``.. of the .npy file ``array`` (memory-mapped, written in place:
    no pixels cross back to the parent); an unreadable file is reported, never raised, so one pass finds them
    all."""
    start, paths = task
    rows = np.load(array, mmap_mode="r+")
    good = np.ones(len(paths), dtype=bool)
    bad = []
    for k, path in enumerate(paths):
        try:
            rows[start + k] = decode(path, size)
        except (OSError, ValueError, SyntaxError) as err:  # PIL raises each for a corrupt file
            bad.append((path, why(err)))
            good[k] = False
    rows.flush()
    return Chunk(tuple(bad), zlib.crc32(np.ascontiguousarray(rows[start : start + len(paths)][good]).tobytes()))


def why(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}"


def header_problem(path: str) -> str | None:
    """What is wrong with an image file's header (PIL opens it and reads its size; nothing is decoded), or None:
    ``gcsearch validate`` checks every file this way in a fraction of a decode's time."""
    try:
        with Image.open(path) as im:
            if im.width < 1 or im.height < 1:
                return f"it is {im.width} x {im.height} px"
    except (OSError, ValueError, SyntaxError) as err:
        return why(err)
    return None
