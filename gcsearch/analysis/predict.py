"""`gcsearch predict best.yaml IMAGE...`: an export classifies images, each printed with its top classes by name
and probability. The images go through the export's preprocessing (``nn/preprocess.py``: the image cache's decode,
the trainer's normalisation) and the model runs as the evaluation ran it (eval mode, channels_last, batches of
256), so the accuracy over a folder is the one the evaluation measured.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TextIO

from gcsearch.errors import ConfigError, DataError

BATCH = 256  # the evaluation's batch (nn/train.evaluate)


@dataclass(frozen=True)
class Prediction:
    image: str
    top: tuple[tuple[str, float], ...]  # (class name, probability), most probable first


def predict(export: str, images: Sequence[str], top: int = 3, stream: TextIO | None = None) -> list[Prediction]:
    """Classify ``images`` with ``export`` (which must carry its weights and preprocessing); prints a line each."""
    import torch

    from gcsearch import build_model
    from gcsearch.analysis.export import load_export
    from gcsearch.nn.preprocess import Transform

    stream = stream or sys.stdout
    exp = load_export(export)
    pre = exp.required_preprocess()
    if exp.weights_path() is None:
        raise ConfigError("weights", "must name trained weights: gcsearch export RUN --weights, or gcsearch train "
                          "--out DIR", where=export)  # fmt: skip
    if top < 1:
        raise ConfigError("--top", "must be >= 1", top)
    transform = Transform(pre)
    model = build_model(export).eval().to(memory_format=torch.channels_last)
    k = min(top, len(transform.classes))
    out = []
    for start in range(0, len(images), BATCH):
        batch = images[start : start + BATCH]
        pixels = []
        for path in batch:
            try:
                pixels.append(transform.pixels(path))
            except (OSError, ValueError, SyntaxError) as err:
                raise DataError(f"cannot read image {path} ({type(err).__name__}: {err})") from None
        x = transform.normalize(torch.stack(pixels)).contiguous(memory_format=torch.channels_last)
        with torch.no_grad():
            probs = torch.softmax(model(x).float(), dim=1)
        values, labels = probs.topk(k, dim=1)
        for path, v, lab in zip(batch, values.tolist(), labels.tolist(), strict=True):
            p = Prediction(path, tuple((transform.classes[i], pv) for i, pv in zip(lab, v, strict=True)))
            out.append(p)
            stream.write(f"{path}: " + ", ".join(f"{name} {pv:.3f}" for name, pv in p.top) + "\n")
    return out
