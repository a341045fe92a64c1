"""One image file -> the cache's pixels (gcsearch/nn/decode.py), against a PIL reference per image mode: what a PIL
user expects (EXIF orientation applied, 16-bit scaled to 8 bits, the other modes through Image.convert)."""

import numpy as np
import pytest
from PIL import Image, ImageOps

from gcsearch.nn.decode import decode

SIZE = 24  # the files are SIZE x SIZE: decoded at their own size, nothing is resized, so pixels compare exactly


def pattern(rng, channels):
    return rng.integers(0, 256, (SIZE, SIZE, channels), dtype=np.uint8).squeeze()


def reference(im: Image.Image, mode: str) -> np.ndarray:
    """PIL's own answer: upright, then Image.convert (a transparent palette through RGBA, as PIL advises)."""
    im = ImageOps.exif_transpose(im)
    if im.mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
    return np.asarray(im.convert(mode))


@pytest.mark.parametrize(
    ("source_mode", "suffix"),
    [("RGB", ".png"), ("L", ".png"), ("LA", ".png"), ("RGBA", ".png"), ("P", ".png"), ("P", ".gif"),
     ("CMYK", ".tif"), ("RGB", ".bmp"), ("L", ".tif")],
)  # fmt: skip
@pytest.mark.parametrize("channels", [1, 3])
def test_each_mode_decodes_as_pil_converts_it(tmp_path, source_mode, suffix, channels):
    rng = np.random.default_rng(0)
    if source_mode == "P":
        im = Image.fromarray(pattern(rng, 3)).convert("P", palette=Image.Palette.ADAPTIVE, colors=32)
        if suffix == ".png":
            im.info["transparency"] = 3  # a palette entry drawn transparent
    elif source_mode in ("LA", "RGBA", "CMYK"):
        im = Image.fromarray(pattern(rng, len(source_mode)), source_mode)
    else:
        im = Image.fromarray(pattern(rng, len(source_mode)))
    path = tmp_path / f"image{suffix}"
    im.save(path, **({"transparency": 3} if source_mode == "P" and suffix == ".png" else {}))
    mode = "L" if channels == 1 else "RGB"
    with Image.open(path) as opened:
        want = reference(opened, mode)
    got = decode(str(path), (channels, SIZE, SIZE))
    got = got[0] if channels == 1 else got.transpose(1, 2, 0)
    assert np.array_equal(got, want)


@pytest.mark.parametrize("bits", ["I;16", "I"])
def test_a_16_bit_image_is_scaled_to_8_bits_not_clipped(tmp_path, bits):
    values = np.linspace(0, 65535, SIZE * SIZE).reshape(SIZE, SIZE)
    # A 16-bit greyscale PNG (what a scanner or a microscope writes), which PIL opens as I;16, or a 32-bit integer
    # TIFF holding 16-bit values (I).
    path = tmp_path / ("deep.png" if bits == "I;16" else "deep.tif")
    Image.fromarray(values.astype(np.uint16 if bits == "I;16" else np.int32)).save(path)
    with Image.open(path) as im:
        assert im.mode == bits
    got = decode(str(path), (1, SIZE, SIZE))[0]
    # 0..65535 -> 0..255 (x / 257): a gradient, where PIL's convert("L") clipped everything above 255 to white.
    assert np.array_equal(got, np.rint(values / 257).astype(np.uint8))
    assert got.min() == 0 and got.max() == 255 and (got < 128).mean() == pytest.approx(0.5, abs=0.01)


@pytest.mark.parametrize("orientation", [3, 6, 8])
@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_exif_orientation_is_applied(tmp_path, orientation, suffix):
    # An upright scene (bright top-left quadrant, wider than tall), stored turned the way a camera stores it, with
    # the EXIF tag that says how to turn it back.
    upright = np.zeros((40, 60), np.uint8)
    upright[:20, :30] = 255
    stored = {3: Image.Transpose.ROTATE_180, 6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}
    im = Image.fromarray(upright).transpose(stored[orientation])
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / f"photo{suffix}"
    im.save(path, exif=exif, **({"quality": 95} if suffix == ".jpg" else {}))
    got = decode(str(path), (1, 40, 60))[0].astype(int)
    # Upright again: bright where the scene was bright (JPEG blurs the edges a little).
    assert got[:16, :26].mean() > 240 and got[24:, :].mean() < 15 and got[:, 34:].mean() < 15


def test_a_jpeg_decoded_at_a_reduced_scale_keeps_its_pixels_close(tmp_path):
    # draft decodes a large JPEG at 1/2, 1/4 or 1/8 scale: on a smooth 640 x 480 photo-like image, within 1 level
    # on average of the full decode resized (measured 0.76, at most 4).
    rng = np.random.default_rng(1)
    coarse = Image.fromarray(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8))
    path = tmp_path / "big.jpg"
    coarse.resize((640, 480), Image.Resampling.BICUBIC).save(path, quality=95)
    fast = decode(str(path), (3, 60, 80)).astype(int)
    with Image.open(path) as im:
        full = np.asarray(im.convert("RGB").resize((80, 60), Image.Resampling.BILINEAR, reducing_gap=None))
    diff = np.abs(fast - full.transpose(2, 0, 1).astype(int))
    assert diff.mean() < 1.0 and diff.max() <= 8
