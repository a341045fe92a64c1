"""An export's preprocessing (``gcsearch/preprocess.py``) as a transform: a callable on a PIL image or a file path,
as torchvision's transforms are, giving the normalised float tensor [C, H, W] the model takes. It runs the image
cache's decode and the trainer's normalisation themselves, so an image is seen exactly as the trials saw theirs.
"""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image

from gcsearch.nn import batches
from gcsearch.nn import data as datasets
from gcsearch.nn.decode import decode, decode_image
from gcsearch.preprocess import Preprocess


def of(splits: datasets.Splits, size: tuple[int, int, int]) -> Preprocess:
    """What inference needs of the data a model was trained on."""
    return Preprocess(splits.classes, size, splits.mean, splits.std)


class Transform:
    """``transform(image) -> tensor [C, H, W]``; ``transform.classes`` names the model's outputs."""

    def __init__(self, pre: Preprocess):
        self.pre = pre
        self.classes = pre.classes
        self.normalize = batches.Normalize(pre.mean, pre.std, torch.device("cpu"), channels_last=False)

    def pixels(self, image: Image.Image | str | Path) -> torch.Tensor:
        """uint8 [C, H, W]: the cache's decode (a path opened here decodes a JPEG at a reduced scale)."""
        pixels = (
            decode(str(image), self.pre.size) if isinstance(image, (str, Path)) else decode_image(image, self.pre.size)
        )
        return torch.from_numpy(pixels.copy())  # PIL's buffer is read-only

    def __call__(self, image: Image.Image | str | Path) -> torch.Tensor:
        return self.normalize(self.pixels(image)[None])[0]

    def __repr__(self) -> str:
        c, h, w = self.pre.size
        return (f"Transform(EXIF upright, {c} channel(s), cover {h}x{w} bilinear, centre crop, "
                f"mean={self.pre.mean}, std={self.pre.std})")  # fmt: skip
