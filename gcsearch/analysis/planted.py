"""Known effects planted into recorded curves: what the pipeline can see, at what size. No training.

Background: a recording with its GC configurations' curve sets shuffled among their labels (all seeds of one
configuration move together, so seed pairing and the real noise stay; the real effects become a random
background); each label keeps its own MACs. Planted: +delta for each of the paper's levels a configuration
holds (att, add, layernorm, ratio 1/4, c3-c5), added to every epoch in proportion to its progress
(epoch / epochs), to the accuracy and the EMA accuracy. ``experiments/planted.py`` runs the check.
"""

from __future__ import annotations

import dataclasses
import math
import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from gcsearch.analysis import factorial
from gcsearch.analysis.claims import BEST, PAPER
from gcsearch.arch import ArchConfig
from gcsearch.bench import curves, replay

PAPER_LEVELS = BEST  # the level of each axis the paper found best: what a plant rewards
PLANTED = [h for h in PAPER if h.axis in PAPER_LEVELS]  # the hypotheses a plant makes true
SHARE = 0.25  # of the grid's epochs: the budget the replayed searches spend


def planted_levels(arch: ArchConfig) -> int:
    if arch.is_baseline:
        return 0
    return sum(factorial.level(ax, arch) == want for ax, want in PAPER_LEVELS.items())


def background(points: list[curves.CurvePoint], seed: int) -> list[curves.CurvePoint]:
    """The GC configurations' curve sets given to each other's labels (each label keeps its costs)."""
    gc = sorted({p.arch for p in points if not p.arch.is_baseline}, key=lambda a: a.label())
    shuffled = gc[:]
    random.Random(seed).shuffle(shuffled)
    source_of = dict(zip(gc, shuffled, strict=True))  # label -> whose curves it gets
    cost = {p.arch: (p.macs, p.params) for p in points}
    by_source: dict[ArchConfig, list[curves.CurvePoint]] = {}
    for p in points:
        by_source.setdefault(p.arch, []).append(p)
    out = [p for p in points if p.arch.is_baseline]
    for label, source in source_of.items():
        macs, params = cost[label]
        out += [dataclasses.replace(p, arch=label, macs=macs, params=params) for p in by_source[source]]
    return out


SHAPES = ("additive", "cell", "needle")
CELL = ("mul", "after_add")  # the fusion x position cell the "cell" shape raises, where the recording holds it
TOP = 3  # a cell's or a needle's plant: this many deltas, about what the additive plant gives its best point


def plant(points: list[curves.CurvePoint], delta: float, epochs: int, shape: str = "additive",
          seed: int = 0) -> list[curves.CurvePoint]:  # fmt: skip
    """``delta`` planted, in proportion to epoch progress, into accuracy and EMA accuracy: "additive", delta per
    paper level a configuration holds (TPE's best case: main effects only); "cell", TOP * delta for the
    configurations of one fusion x position cell (an interaction: no main effect explains it); "needle", TOP *
    delta for one GC configuration drawn by ``seed`` (nothing to model: found only by trying it)."""
    gc = sorted({p.arch for p in points if not p.arch.is_baseline}, key=lambda a: a.label())
    if shape == "needle":
        target = {random.Random(seed).choice(gc)}
    elif shape == "cell":
        cells = [(a.fusion, a.position) for a in gc]
        cell = CELL if CELL in cells else max(set(cells), key=cells.count)
        target = {a for a in gc if (a.fusion, a.position) == cell}
    out = []
    for p in points:
        units = planted_levels(p.arch) if shape == "additive" else TOP * (p.arch in target)
        gain = delta * units * p.epoch / epochs
        ema = p.ema_accuracy + gain if p.ema_accuracy is not None else None
        out.append(dataclasses.replace(p, accuracy=p.accuracy + gain, ema_accuracy=ema))
    return out


@dataclass(frozen=True)
class Paired:
    """Two strategies' hits on the same permutations: hit rates, their difference with a 95% Wald interval for
    paired proportions, and McNemar's exact test on the discordant pairs (statsmodels)."""

    n: int
    a: float
    b: float
    difference: float
    low: float
    high: float
    p: float


def paired_hits(a: Sequence[bool], b: Sequence[bool]) -> Paired:
    from statsmodels.stats.contingency_tables import mcnemar

    n = len(a)
    only_a = sum(x and not y for x, y in zip(a, b, strict=True))
    only_b = sum(y and not x for x, y in zip(a, b, strict=True))
    both = sum(x and y for x, y in zip(a, b, strict=True))
    table = [[both, only_a], [only_b, n - both - only_a - only_b]]
    p = float(mcnemar(table, exact=True).pvalue) if only_a + only_b else 1.0
    diff = (only_a - only_b) / n
    half = 1.96 * math.sqrt(max(only_a + only_b - (only_a - only_b) ** 2 / n, 0.0)) / n
    return Paired(n, sum(a) / n, sum(b) / n, diff, diff - half, diff + half, p)


def held_out_hit(c: curves.Curves, trace: replay.Trace, noise: float) -> bool:
    """Is the recommendation within ``noise`` of the best, by the mean of the seeds the replay did not read?"""
    if not trace.completed:
        return False
    pick = max(trace.completed, key=lambda t: t[2])[1]
    others = [s for s in c.common_seeds() if s != trace.recorded_seed]
    truth = {a: statistics.mean(c.final(a, s) for s in others) for a in c.archs}
    return truth[pick] >= max(truth.values()) - noise
