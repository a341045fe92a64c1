"""The curves.csv format: recorded learning curves, one row per configuration x seed x epoch. Pure Python.

Written by ``gcsearch bench record``; read by ``bench fidelity`` and ``bench replay``. Columns:

    stages pool fusion ratio norm position   the configuration (stages "none" = the baseline)
    seed                                     training seed (initial weights and batch order)
    epoch                                    epochs finished, 1-based: "epoch 1" is the first rung
    accuracy loss                            validation accuracy (0..1) and cross-entropy after that epoch
    train_loss                               mean training loss of that epoch
    ema_accuracy ema_loss                    the same for the EMA of the weights (empty when train.ema = 0)
    seconds                                  training seconds so far (all epochs up to this one)
    macs params                              cost of the configuration (flops.py's convention)
    recipe                                   hash of the resolved backbone, data and train sections

A file holds one recipe: rows of two recipes cannot be compared epoch for epoch.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gcsearch.arch import AXES, ArchConfig, parse_ratio, parse_stages
from gcsearch.epoch import Epoch, score_of
from gcsearch.errors import ConfigError
from gcsearch.files import write_atomic

COLUMNS = (
    *AXES, "seed", "epoch", "accuracy", "loss", "train_loss", "ema_accuracy", "ema_loss",
    "seconds", "macs", "params", "recipe",
)  # fmt: skip
OPTIONAL = ("ema_accuracy", "ema_loss")  # may be empty
# Columns a recording made before they existed lacks; read as empty (no gate_init: every gated configuration of
# those recordings started its gate at half, the official code's start).
ADDED = ("gate_init",)


@dataclass(frozen=True)
class CurvePoint:
    arch: ArchConfig
    seed: int
    epoch: int  # 1-based
    accuracy: float
    loss: float
    train_loss: float
    seconds: float
    macs: int
    params: int
    recipe: str
    ema_accuracy: float | None = None
    ema_loss: float | None = None

    @property
    def score(self) -> float:
        """What the search ranks a training by (epoch.score_of)."""
        return score_of(self.accuracy, self.ema_accuracy)

    def as_epoch(self) -> Epoch:
        """This point as the epoch a training would have reported (``epoch`` 0-based there)."""
        return Epoch(self.epoch - 1, self.accuracy, self.loss, self.train_loss, self.seconds,
                     ema_accuracy=self.ema_accuracy, ema_loss=self.ema_loss)  # fmt: skip

    def metric(self, name: str) -> float:
        """A pruning metric as a score to maximise: accuracy, ema_accuracy, or -loss / -ema_loss."""
        value = getattr(self, name.removeprefix("-"))
        if value is None:
            raise ConfigError("metric", "is not recorded in this curves file", name)
        return -value if name.startswith("-") else value


def arch_cells(arch: ArchConfig) -> list[str]:
    return [arch.value_text(axis) for axis in AXES]


def arch_from_cells(cell: dict[str, str], where: str) -> ArchConfig:
    """The configuration a row's axis columns (``arch_cells``) name; a file without gate_init holds half gates."""
    if cell["stages"] in ("none", ""):
        return ArchConfig()
    return ArchConfig.from_dict(
        {
            "stages": list(parse_stages(cell["stages"], "stages", where)),
            "pool": cell["pool"],
            "fusion": cell["fusion"],
            "ratio": parse_ratio(cell["ratio"], "ratio", where),
            "norm": cell["norm"],
            "position": cell["position"],
            "gate_init": (cell.get("gate_init") or "").strip() or None,
        },
        where=where,
    )


def _num(x: float | None) -> str:
    return "" if x is None else f"{x:.6g}"


def to_csv(points: Iterable[CurvePoint], header: bool = True) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    if header:
        w.writerow(COLUMNS)
    for p in points:
        w.writerow([
            *arch_cells(p.arch), p.seed, p.epoch, f"{p.accuracy:.6f}", _num(p.loss), _num(p.train_loss),
            _num(p.ema_accuracy), _num(p.ema_loss), f"{p.seconds:.3f}", p.macs, p.params, p.recipe,
        ])  # fmt: skip
    return out.getvalue()


def write(path: Path, points: Sequence[CurvePoint]) -> None:
    write_atomic(path, to_csv(sorted(points, key=sort_key)))


def sort_key(p: CurvePoint) -> tuple[Any, ...]:
    return (p.arch.label(), p.seed, p.epoch)


def read(path: str | Path) -> list[CurvePoint]:
    """Read and check a curves file; every problem is a ConfigError naming the file, row and column."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError("curves", f"must be a readable curves.csv ({type(err).__name__})", str(path)) from None
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        raise ConfigError("curves", "must hold a header and at least one row, but the file is empty", where=str(path))
    header = rows[0]
    missing = [c for c in COLUMNS if c not in header and c not in ADDED]
    if missing:
        raise ConfigError("columns", f"must include {list(COLUMNS)}; missing {missing}", where=str(path))
    if len(rows) < 2:
        raise ConfigError("curves", "must hold at least one row after the header", where=str(path))
    index = {c: header.index(c) for c in COLUMNS if c in header}
    points = []
    for n, row in enumerate(rows[1:], start=2):
        where = f"{path}: line {n}"
        if len(row) != len(header):
            raise ConfigError("row", f"must have {len(header)} cells like the header", len(row), where)
        cell = {**dict.fromkeys(ADDED, ""), **{c: row[i] for c, i in index.items()}}
        points.append(_point(cell, where))
    recipes = sorted({p.recipe for p in points})
    if len(recipes) > 1:
        raise ConfigError("recipe", "must be the same on every row (one training recipe per file)", recipes, str(path))
    return points


def _point(cell: dict[str, str], where: str) -> CurvePoint:
    def number(col: str, kind: type = float, optional: bool = False) -> Any:
        text = cell[col].strip()
        if text == "" and optional:
            return None
        try:
            value = kind(text)
        except ValueError:
            raise ConfigError(col, f"must be {'an integer' if kind is int else 'a number'}", text,
                              f"{where}, column {col}") from None  # fmt: skip
        if kind is float and not math.isfinite(value):
            raise ConfigError(col, "must be finite", text, f"{where}, column {col}")
        return value

    arch = arch_from_cells(cell, where)
    epoch = number("epoch", int)
    if epoch < 1:
        raise ConfigError("epoch", "must be >= 1 (epochs finished)", epoch, f"{where}, column epoch")
    return CurvePoint(
        arch=arch, seed=number("seed", int), epoch=epoch, accuracy=number("accuracy"), loss=number("loss"),
        train_loss=number("train_loss"), seconds=number("seconds"), macs=number("macs", int),
        params=number("params", int), recipe=cell["recipe"].strip(),
        ema_accuracy=number("ema_accuracy", optional=True), ema_loss=number("ema_loss", optional=True),
    )  # fmt: skip


@dataclass(frozen=True)
class Curves:
    """Recorded curves indexed by (configuration, seed): each a list of points, epoch 1 first."""

    runs: dict[tuple[ArchConfig, int], list[CurvePoint]]
    epochs: int  # the full fidelity: the largest epoch every complete curve reaches

    @classmethod
    def of(cls, points: Sequence[CurvePoint], where: str = "curves") -> Curves:
        runs: dict[tuple[ArchConfig, int], list[CurvePoint]] = {}
        for p in points:
            runs.setdefault((p.arch, p.seed), []).append(p)
        for key, curve in runs.items():
            curve.sort(key=lambda p: p.epoch)
            if [p.epoch for p in curve] != list(range(1, len(curve) + 1)):
                raise ConfigError("epoch", "must run 1, 2, ... without gaps or repeats for each (configuration, "
                                  f"seed); {key[0].label()} seed {key[1]} has {[p.epoch for p in curve]}",
                                  where=where)  # fmt: skip
        epochs = max(len(c) for c in runs.values())
        return cls({k: c for k, c in runs.items() if len(c) == epochs}, epochs)

    @property
    def archs(self) -> list[ArchConfig]:
        return list(dict.fromkeys(a for a, _ in self.runs))

    def seeds(self, arch: ArchConfig) -> list[int]:
        return sorted(s for a, s in self.runs if a == arch)

    def common_seeds(self) -> list[int]:
        """Seeds every configuration was recorded with (the pairing unit)."""
        sets = [set(self.seeds(a)) for a in self.archs]
        return sorted(set.intersection(*sets)) if sets else []

    def final(self, arch: ArchConfig, seed: int) -> float:
        """The final score: the accuracy a search reports for this training (of the EMA weights if kept)."""
        return self.runs[(arch, seed)][-1].score

    def final_mean(self, arch: ArchConfig) -> float:
        seeds = self.seeds(arch)
        return sum(self.final(arch, s) for s in seeds) / len(seeds)
