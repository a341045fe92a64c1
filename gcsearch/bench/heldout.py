"""Strategies judged on what they recommend, against recorded seeds the replay did not read. Pure Python.

A replay reads one recorded seed; its pick (the completed trial with the best score it saw) is judged on the
mean of the other seeds (``truth``): its regret is the best held-out mean minus the pick's. Every strategy is
paired with uniform random search on the same replay seed, and the difference in regret gets a bootstrap
interval clustered by recorded seed (the unit that was sampled), then replays within it.

Two arms bound what any strategy could show on a recording: the oracle (it recommends the held-out best: regret
0) and the anti-oracle (the held-out worst). Their differences from uniform search are the largest gain and the
largest loss a strategy could have; where the oracle itself is equivalent to uniform search within the margin
(the top of the landscape is flat, or the budget already finds the top), "equivalent" says nothing about a
strategy and is refused: the verdict is "cannot tell".
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from gcsearch import stats
from gcsearch.arch import ArchConfig
from gcsearch.bench.curves import Curves
from gcsearch.bench.replay import Trace

BOOT = 4000  # bootstrap draws of each interval
CANNOT_TELL = "cannot tell (an oracle is equivalent too)"


def truth(curves: Curves, seed: int) -> dict[ArchConfig, float]:
    """Each configuration's mean final score over the recorded seeds other than ``seed``."""
    others = [s for s in curves.common_seeds() if s != seed]
    return {a: statistics.fmean(curves.final(a, s) for s in others) for a in curves.archs}


def truth_of(curves: Curves, reads: dict[ArchConfig, int], extra: int = 0) -> dict[ArchConfig, float]:
    """Each configuration's mean final score over the recorded seeds a mixed-read replay (``replay.mixed_reads``)
    did not read: all but its read seed, and but the first ``extra`` others where it has more (what a reference's
    extra seeds read: ``search.reference_seeds - 1``)."""
    out = {}
    for a in curves.archs:
        others = [s for s in curves.seeds(a) if s != reads[a]]
        held = others[min(extra, len(others) - 1) :]
        out[a] = statistics.fmean(curves.final(a, s) for s in held)
    return out


def regret(trace: Trace, held_out: dict[ArchConfig, float], epochs: float) -> float:
    """Held-out regret of the pick at ``epochs`` spent; a search that completed nothing by then regrets the
    spread of the whole recording (it has nothing to recommend)."""
    seen = [(score, arch) for spent, arch, score in trace.completed if spent <= epochs]
    best = max(held_out.values())
    if not seen:
        return best - min(held_out.values())
    return best - held_out[max(seen, key=lambda s: s[0])[1]]


def regret_after(trace: Trace, held_out: dict[ArchConfig, float], trials: int) -> float:
    """Held-out regret of the pick after the first ``trials`` completed trials (inf if fewer completed)."""
    seen = [(score, arch) for _, arch, score in trace.completed[:trials]]
    if len(seen) < trials:
        return float("inf")
    return max(held_out.values()) - held_out[max(seen, key=lambda s: s[0])[1]]


def oracle_regrets(held_out: Sequence[dict[ArchConfig, float]]) -> tuple[list[float], list[float]]:
    """(oracle, anti-oracle) regrets per replay: recommending the held-out best, or the held-out worst."""
    return [0.0] * len(held_out), [max(t.values()) - min(t.values()) for t in held_out]


def interval(diffs: dict[int, list[float]], confidence: float, rng: random.Random) -> tuple[float, float]:
    """Percentile interval of the mean difference, resampling clusters (recorded seeds), then replays in them."""
    clusters = list(diffs.values())
    means = []
    for _ in range(BOOT):
        draw = [x for cl in rng.choices(clusters, k=len(clusters)) for x in rng.choices(cl, k=len(cl))]
        means.append(statistics.fmean(draw))
    means.sort()
    return means[int((1 - confidence) / 2 * BOOT)], means[min(BOOT - 1, int((1 + confidence) / 2 * BOOT))]


@dataclass(frozen=True)
class Comparison:
    """A strategy's regret minus uniform search's, paired by replay seed."""

    mean: float
    low: float  # 95% clustered interval
    high: float
    wins: int  # replays where the strategy regrets less
    losses: int
    p: float  # exact sign test, two-sided
    verdict: str  # better, worse, equivalent, not resolved, or CANNOT_TELL
    within_margin: bool  # the 90% interval inside +-margin (TOST at 5%), significant or not


def compare(a: Sequence[float], b: Sequence[float], clusters: Sequence[int], margin: float, rng: random.Random,
            oracle_equivalent: bool = False) -> Comparison:  # fmt: skip
    """Regrets ``a`` against ``b`` (uniform search), paired; "equivalent" needs the 90% interval (TOST at 5%)
    inside +-margin, and is refused where the oracle itself gains less than the margin over ``b``."""
    diffs: dict[int, list[float]] = {}
    for x, y, k in zip(a, b, clusters, strict=True):
        diffs.setdefault(k, []).append(x - y)
    flat = [d for cl in diffs.values() for d in cl]
    lo95, hi95 = interval(diffs, 0.95, rng)
    lo90, hi90 = interval(diffs, 0.90, rng)
    wins, losses = sum(d < 0 for d in flat), sum(d > 0 for d in flat)
    within = lo90 > -margin and hi90 < margin
    if hi95 < 0:
        verdict = "better"
    elif lo95 > 0:
        verdict = "worse"
    elif within:
        verdict = CANNOT_TELL if oracle_equivalent else "equivalent"
    else:
        verdict = "not resolved"
    p = stats.sign_test_p(wins, losses)
    return Comparison(statistics.fmean(flat), lo95, hi95, wins, losses, p, verdict, within)


def bounds(uniform: Sequence[float], held_out: Sequence[dict[ArchConfig, float]], clusters: Sequence[int],
           margin: float, rng: random.Random) -> tuple[Comparison, Comparison]:  # fmt: skip
    """The oracle's and the anti-oracle's comparisons with uniform search: the largest gain and loss any
    strategy could show. The recording cannot tell strategies apart where the oracle is ``within_margin``."""
    oracle, anti = oracle_regrets(held_out)
    return compare(oracle, uniform, clusters, margin, rng), compare(anti, uniform, clusters, margin, rng)
