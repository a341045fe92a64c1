"""Per-image outcomes of a recording: which class every training's final weights predicted for every validation
image, beside the labels. Pure numpy. Written by ``bench record`` next to its curves.csv as
``<curves>.outcomes.npz``; read by the analyses that look inside an accuracy (on the far-cue task: did a training
get the item right, did it read the cue).

Arrays: ``val_labels`` [images] int16; ``val`` [trainings, images] int16 predicted classes; ``arch`` [trainings]
the configuration as ``curves.arch_cells`` joined by "|"; ``seed`` [trainings] int.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gcsearch.arch import AXES, ArchConfig
from gcsearch.bench.curves import arch_cells, arch_from_cells
from gcsearch.errors import ConfigError
from gcsearch.files import replace_with


@dataclass(frozen=True)
class Outcomes:
    labels: np.ndarray  # [images]
    predicted: dict[tuple[ArchConfig, int], np.ndarray]  # (configuration, seed) -> [images] predicted classes

    def correct(self, arch: ArchConfig, seed: int) -> np.ndarray:
        return self.predicted[(arch, seed)] == self.labels


def path_for(curves_csv: Path) -> Path:
    return curves_csv.with_suffix(".outcomes.npz")


def write(path: Path, labels: np.ndarray, predicted: Sequence[tuple[ArchConfig, int, np.ndarray]]) -> None:
    arrays: dict[str, Any] = {  # Any: numpy's stubs read a ** mapping as its keyword arguments
        "val_labels": labels.astype(np.int16),
        "val": np.stack([p for _, _, p in predicted]).astype(np.int16) if predicted else np.zeros((0, len(labels))),
        "arch": np.array(["|".join(arch_cells(a)) for a, _, _ in predicted]),
        "seed": np.array([s for _, s, _ in predicted], dtype=np.int64),
    }

    def save(tmp: Path) -> None:
        with tmp.open("wb") as f:  # a file object: given a name, numpy would append ".npz"
            np.savez_compressed(f, **arrays)

    replace_with(path, save)


def read(path: str | Path) -> Outcomes:
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            labels, val, archs, seeds = z["val_labels"], z["val"], z["arch"], z["seed"]
    except (OSError, KeyError, ValueError) as err:
        raise ConfigError("outcomes", f"must be an outcomes file of `bench record` ({type(err).__name__})",
                          str(path)) from None  # fmt: skip
    predicted = {}
    for i, (cells, seed) in enumerate(zip(archs, seeds, strict=True)):
        arch = arch_from_cells(dict(zip(AXES, str(cells).split("|"), strict=True)), f"{path}: training {i}")
        predicted[(arch, int(seed))] = val[i]
    return Outcomes(labels, predicted)
