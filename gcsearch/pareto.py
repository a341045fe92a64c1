"""Trial records, Pareto fronts and pick rules. Pure Python: no torch, no ray, no optuna.

Objectives are given as (name, direction) with direction "maximize" or "minimize"; a point dominates
another when it is at least as good in every objective and better in one. Equal points do not dominate
each other, so duplicates share a front.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from gcsearch.arch import ArchConfig
from gcsearch.objectives import OBJECTIVES

Directions = Sequence[str]


@dataclass(frozen=True)
class TrialRecord:
    """One trial as the run directory reports it (``trials.csv``)."""

    number: int
    state: str  # COMPLETE, PRUNED, FAIL, RUNNING, WAITING
    arch: ArchConfig
    accuracy: float | None  # at the last finished epoch (final for COMPLETE)
    macs: int
    params: int
    epochs: int  # epochs finished
    seconds: float
    reason: str = ""  # why a trial was pruned, failed or skipped
    seed: int | None = None  # the training seed of a planned trial (ablation, record); None = train.seed
    extra: dict[str, Any] = field(default_factory=dict)
    # It cost a training: not a duplicate answered from an earlier trial, a skip, or a proposal a kill cut
    # off before it started (rundir.was_trained decides, from the journal).
    trained: bool = True
    latency: float | None = None  # ms, measured when latency is an objective (nn/latency.py)

    def objective(self, name: str) -> float:
        """This trial's value of an objective (objectives.py): the record's field of that name."""
        return getattr(self, OBJECTIVES[name].name)  # type: ignore[no-any-return]


def trained(records: Sequence[TrialRecord]) -> list[TrialRecord]:
    """Trials that cost training (not duplicates, not skipped, not a proposal cut off before it started)."""
    return [r for r in records if r.trained]


def _signed(values: Sequence[float], directions: Directions) -> tuple[float, ...]:
    """Map every objective to 'smaller is better'."""
    return tuple(-v if d == "maximize" else v for v, d in zip(values, directions, strict=True))


def dominates(a: Sequence[float], b: Sequence[float], directions: Directions) -> bool:
    sa, sb = _signed(a, directions), _signed(b, directions)
    return all(x <= y for x, y in zip(sa, sb, strict=True)) and any(x < y for x, y in zip(sa, sb, strict=True))


def front_indices(points: Sequence[Sequence[float]], directions: Directions) -> list[int]:
    """Indices of the non-dominated points, in input order."""
    return [i for i, p in enumerate(points) if not any(dominates(q, p, directions) for q in points)]


def nondominated_ranks(points: Sequence[Sequence[float]], directions: Directions) -> list[int]:
    """Rank 0 for the front, 1 for the front of what remains, and so on."""
    ranks = [-1] * len(points)
    remaining = list(range(len(points)))
    rank = 0
    while remaining:
        sub = [points[i] for i in remaining]
        layer = {remaining[j] for j in front_indices(sub, directions)}
        for i in layer:
            ranks[i] = rank
        remaining = [i for i in remaining if i not in layer]
        rank += 1
    return ranks


def front(records: Sequence[TrialRecord], objectives: Sequence[str], directions: Directions) -> list[TrialRecord]:
    """The Pareto front of the COMPLETE trials, best accuracy first."""
    done = [r for r in records if r.state == "COMPLETE" and r.accuracy is not None]
    points = [[r.objective(o) for o in objectives] for r in done]
    best = [done[i] for i in front_indices(points, directions)]
    return sorted(best, key=lambda r: (-(r.accuracy or 0.0), r.macs, r.number))


# --------------------------------------------------------------------------- pick rules

PICK_RULES = ("knee", "max-accuracy", "min-macs")


def pick_max_accuracy(
    records: Sequence[TrialRecord], max_macs: float | None = None, max_params: float | None = None
) -> TrialRecord | None:
    """The most accurate COMPLETE trial within the budgets; ties go to fewer MACs."""
    ok = [
        r
        for r in records
        if r.state == "COMPLETE"
        and r.accuracy is not None
        and (max_macs is None or r.macs <= max_macs)
        and (max_params is None or r.params <= max_params)
    ]
    return min(ok, key=lambda r: (-(r.accuracy or 0.0), r.macs, r.number), default=None)


def pick_min_macs(records: Sequence[TrialRecord], tolerance: float = 0.005) -> TrialRecord | None:
    """The cheapest COMPLETE trial whose accuracy is within ``tolerance`` (absolute) of the best."""
    best = pick_max_accuracy(records)
    if best is None or best.accuracy is None:
        return None
    ok = [
        r
        for r in records
        if r.state == "COMPLETE" and r.accuracy is not None and r.accuracy >= best.accuracy - tolerance
    ]
    return min(ok, key=lambda r: (r.macs, -(r.accuracy or 0.0), r.number))


def pick_knee(records: Sequence[TrialRecord]) -> TrialRecord | None:
    """The knee of the (accuracy, MACs) front: normalise both objectives to [0, 1] over the front, draw
    the line between the front's two extremes (cheapest, most accurate), and take the front point
    farthest from that line on the good side. A front of one or two points gives its most accurate.
    """
    pts = front(records, ["accuracy", "macs"], ["maximize", "minimize"])
    if len(pts) <= 2:
        return pts[0] if pts else None
    accs = [r.accuracy or 0.0 for r in pts]
    macs = [float(r.macs) for r in pts]
    a_lo, a_hi, m_lo, m_hi = min(accs), max(accs), min(macs), max(macs)

    def norm(r: TrialRecord) -> tuple[float, float]:
        # x: cost (0 = cheapest), y: accuracy (1 = best)
        x = (r.macs - m_lo) / (m_hi - m_lo) if m_hi > m_lo else 0.0
        y = ((r.accuracy or 0.0) - a_lo) / (a_hi - a_lo) if a_hi > a_lo else 1.0
        return x, y

    cheap = min(pts, key=lambda r: (r.macs, -(r.accuracy or 0.0)))
    accurate = pts[0]
    (x1, y1), (x2, y2) = norm(cheap), norm(accurate)
    length = math.hypot(x2 - x1, y2 - y1) or 1.0

    def distance(r: TrialRecord) -> float:
        x, y = norm(r)
        # Signed distance; positive above the line (more accuracy for the cost).
        return ((x2 - x1) * (y - y1) - (y2 - y1) * (x - x1)) / length

    return max(pts, key=lambda r: (distance(r), r.accuracy or 0.0, -r.number))
