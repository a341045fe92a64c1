"""The paper's one-factor-at-a-time ablation, on the user's space. Pure Python: no torch, no ray.

Around a reference configuration (the paper default: c3-c5, att + add, ratio 1/16, LayerNorm,
after_1x1, or the nearest point of the space when it lacks one of those values) each axis of the space
is varied alone; the baseline without GC is added. Every point is
trained to full fidelity with several seeds (``search.run`` with a fixed plan, no pruning); the table
gives accuracy mean and spread per point, MACs, params, and per axis the best value and whether its
lead over the runner-up exceeds the seed noise (lead > 2 standard errors of the difference).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from gcsearch.arch import ArchConfig, ratio_text
from gcsearch.errors import ConfigError
from gcsearch.pareto import TrialRecord
from gcsearch.space import SearchSpace

AXES = ("pool", "fusion", "norm", "ratio", "stages", "position")


@dataclass(frozen=True)
class Point:
    axis: str  # one of AXES, or "reference" / "baseline"
    value: str
    arch: ArchConfig


def value_text(axis: str, arch: ArchConfig) -> str:
    if axis == "stages":
        return ",".join(arch.stages) or "none"
    if axis == "ratio":
        return ratio_text(arch.ratio) if arch.ratio else "-"
    return str(getattr(arch, axis))


def reference_in(space: SearchSpace) -> ArchConfig:
    """The paper default, with each axis the space does not offer set to that axis's first choice
    (an ablation varies one axis of the space at a time, so its centre must be a point of the space)."""
    paper = space.reference()
    values = {}
    for axis in AXES:
        choices = [c for c in getattr(space.axes, axis) if not (axis == "stages" and not c)]
        if not choices:
            raise ConfigError("stages", "must offer a stage set with GC blocks to ablate around", [], space.path)
        values[axis] = getattr(paper, axis) if getattr(paper, axis) in choices else choices[0]
    return ArchConfig(**values)


def points(space: SearchSpace, reference: ArchConfig | None = None) -> list[Point]:
    ref = reference or reference_in(space)
    out = [Point("reference", "reference", ref)]
    for axis in AXES:
        choices: Sequence[Any] = getattr(space.axes, axis)
        for choice in choices:
            if axis == "stages" and not choice:
                continue  # the baseline is its own point
            arch = replace(ref, **{axis: choice})
            if arch != ref:
                out.append(Point(axis, value_text(axis, arch), arch))
    out.append(Point("baseline", "no GC", ArchConfig()))
    return out


@dataclass(frozen=True)
class Row:
    point: Point
    accuracies: tuple[float, ...]
    macs: int
    params: int

    @property
    def mean(self) -> float:
        return statistics.mean(self.accuracies) if self.accuracies else math.nan

    @property
    def std(self) -> float:
        return statistics.stdev(self.accuracies) if len(self.accuracies) > 1 else math.nan

    @property
    def stderr(self) -> float:
        return self.std / math.sqrt(len(self.accuracies)) if len(self.accuracies) > 1 else math.nan


@dataclass(frozen=True)
class AxisResult:
    axis: str
    ranking: tuple[str, ...]  # values, best first (reference value included)
    best: str
    runner_up: str | None
    lead: float
    noise: float  # standard error of the difference between best and runner-up

    @property
    def separable(self) -> bool:
        return self.runner_up is not None and self.lead > 2 * self.noise


def axis_results(rows: Sequence[Row]) -> list[AxisResult]:
    """Per axis: its variants plus the reference (the reference's value on that axis), best first."""
    ref = next(r for r in rows if r.point.axis == "reference")
    results = []
    for axis in AXES:
        candidates = [r for r in rows if r.point.axis == axis]
        if not candidates:
            continue
        ref_row = Row(
            Point(axis, value_text(axis, ref.point.arch), ref.point.arch), ref.accuracies, ref.macs, ref.params
        )
        ranked = sorted([ref_row, *candidates], key=lambda r: -r.mean)
        best, second = ranked[0], ranked[1]
        noise = math.sqrt(best.stderr**2 + second.stderr**2)
        results.append(
            AxisResult(
                axis,
                tuple(r.point.value for r in ranked),
                best.point.value,
                second.point.value,
                best.mean - second.mean,
                noise,
            )
        )
    return results


def kendall_tau(order_a: Sequence[str], order_b: Sequence[str]) -> float | None:
    """Kendall's tau-a between two rankings, over the items both contain (None for fewer than 2)."""
    common = [x for x in order_a if x in order_b]
    if len(common) < 2:
        return None
    pos_b = {x: order_b.index(x) for x in common}
    concordant = discordant = 0
    for i in range(len(common)):
        for j in range(i + 1, len(common)):
            if pos_b[common[i]] < pos_b[common[j]]:
                concordant += 1
            else:
                discordant += 1
    return (concordant - discordant) / (concordant + discordant)


def table(rows: Sequence[Row]) -> str:
    lines = [
        "| axis | value | accuracy mean | std | seeds | MACs | params |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.point.axis} | {r.point.value} | {r.mean:.4f} | {r.std:.4f} | {len(r.accuracies)} | "
            f"{r.macs:,d} | {r.params:,d} |"
        )
    lines += ["", "| axis | ranking (best first) | best | lead over runner-up | 2 x noise | separable |",
              "|---|---|---|---|---|---|"]  # fmt: skip
    for a in axis_results(rows):
        lines.append(
            f"| {a.axis} | {' > '.join(a.ranking)} | {a.best} | {a.lead:+.4f} | {2 * a.noise:.4f} | "
            f"{'yes' if a.separable else 'no'} |"
        )
    return "\n".join(lines)


def rows(points_: Sequence[Point], records: Sequence[TrialRecord]) -> list[Row]:
    """Each point's COMPLETE accuracies (one per seed) from a run's records."""
    out = []
    for p in points_:
        mine = [r for r in records if r.arch == p.arch and not r.extra]
        accs = tuple(r.accuracy for r in mine if r.state == "COMPLETE" and r.accuracy is not None)
        macs, params = (mine[0].macs, mine[0].params) if mine else (0, 0)
        out.append(Row(p, accs, macs, params))
    return out
