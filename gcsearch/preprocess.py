"""What inference needs besides the weights: the class names in label order, the input size, how an image is
brought to it, and the normalisation. Pure Python; an export carries it (``preprocess:``), and
``nn/preprocess.py`` turns it into the transform that classifies an image exactly as the trials saw theirs.

The rule is the image cache's (``nn/decode.py``): EXIF orientation applied, 16-bit scaled to 8 bits, converted to
the channels (``Image.convert``), scaled keeping the aspect ratio so it covers the input (bilinear), centre-cropped;
then ``(x / 255 - mean) / std`` per channel, with the training images' statistics.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gcsearch.errors import ConfigError

RESIZE = "cover"  # scaled keeping the aspect ratio until it covers the input, bilinear (nn/decode.py)
CROP = "centre"
NAMES = {
    "fashion_mnist": ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                      "Ankle boot"),
    "cifar10": ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
}  # fmt: skip


@dataclass(frozen=True)
class Preprocess:
    classes: tuple[str, ...]  # label i's name
    size: tuple[int, int, int]  # channels, height, width
    mean: tuple[float, ...]  # per channel, of pixels scaled to 0..1
    std: tuple[float, ...]
    resize: str = RESIZE
    crop: str = CROP

    def to_dict(self) -> dict[str, Any]:
        return {"classes": list(self.classes), "input_size": list(self.size), "resize": self.resize,
                "crop": self.crop, "mean": [round(m, 6) for m in self.mean],
                "std": [round(s, 6) for s in self.std]}  # fmt: skip

    @classmethod
    def from_dict(cls, data: object, where: str) -> Preprocess:
        if not isinstance(data, dict):
            raise ConfigError("preprocess", "must be a mapping (classes, input_size, resize, crop, mean, std)",
                              data, where)  # fmt: skip
        missing = [k for k in ("classes", "input_size", "mean", "std") if k not in data]
        if missing:
            raise ConfigError("preprocess", f"must hold {missing}", where=where)
        size = tuple(int(v) for v in data["input_size"])
        pre = cls(tuple(str(c) for c in data["classes"]), (size[0], size[1], size[2]),
                  tuple(float(v) for v in data["mean"]), tuple(float(v) for v in data["std"]),
                  str(data.get("resize", RESIZE)), str(data.get("crop", CROP)))  # fmt: skip
        if (pre.resize, pre.crop) != (RESIZE, CROP):
            raise ConfigError("preprocess.resize", f"must be {RESIZE!r} with crop {CROP!r} (the rule gcsearch trains "
                              "with)", (pre.resize, pre.crop), where)  # fmt: skip
        if len(pre.mean) != pre.size[0] or len(pre.std) != pre.size[0]:
            raise ConfigError("preprocess.mean", f"must give one value per channel ({pre.size[0]})", pre.mean, where)
        return pre


def class_names(dataset: str, count: int) -> tuple[str, ...]:
    """The names of a built-in dataset's labels (an image folder's come from its folders)."""
    names = NAMES.get(dataset, ())
    if len(names) == count:
        return names
    return tuple(f"class {i}" for i in range(count))
