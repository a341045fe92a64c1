"""Paired statistics over seeds. Pure Python: no torch, no ray, no scipy.

Seeds are common random numbers: one seed gives every configuration the same initial backbone weights
and the same batch order, so two configurations trained with the same seed form a pair, and their
comparison uses the per-seed differences (a paired t-test), not two independent means.

- ``paired``: the per-seed differences over the seeds both sides have;
- ``t_interval``: mean, Student-t confidence interval and two-sided p-value of differences;
- ``sign_flip_p``: the exact permutation (sign-flip) p-value, distribution-free, for few seeds;
- ``holm``: Holm-Bonferroni adjusted p-values across the comparisons of one family;
- ``seeds_needed`` / ``detectable``: power of a paired t-test from an observed paired standard deviation.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


def paired(a: Mapping[int, float], b: Mapping[int, float]) -> list[float]:
    """a[seed] - b[seed] for every seed both hold, in seed order."""
    return [a[s] - b[s] for s in sorted(set(a) & set(b))]


# --------------------------------------------------------------------------- Student's t


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz's method)."""
    tiny, qab, qap, qam = 1e-300, a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        for aa in (m * (b - m) * x / ((qam + m2) * (a + m2)), -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1.0 + aa * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + aa / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    tail = 0.5 * betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


def t_quantile(p: float, df: float) -> float:
    """The p-quantile of Student's t with df degrees of freedom (bisection on the CDF)."""
    if not 0.0 < p < 1.0:
        raise ValueError("p must be in (0, 1)")
    lo, hi = -1e4, 1e4
    for _ in range(200):
        mid = (lo + hi) / 2.0
        if t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2.0


# --------------------------------------------------------------------------- tests and intervals


@dataclass(frozen=True)
class Interval:
    """A paired comparison: mean difference, its confidence interval, and the two-sided p-value."""

    n: int
    mean: float
    se: float
    low: float
    high: float
    p: float
    confidence: float

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0

    def text(self, digits: int = 4) -> str:
        return f"{self.mean:+.{digits}f} [{self.low:+.{digits}f}, {self.high:+.{digits}f}]"


def t_interval(diffs: Sequence[float], confidence: float = 0.95) -> Interval:
    """Student-t interval of the mean of paired differences; needs 2 or more."""
    n = len(diffs)
    if n < 2:
        raise ValueError("a t interval needs at least 2 paired differences")
    mean = statistics.fmean(diffs)
    se = statistics.stdev(diffs) / math.sqrt(n)
    if se == 0.0:
        p = 1.0 if mean == 0.0 else 0.0
        return Interval(n, mean, 0.0, mean, mean, p, confidence)
    half = t_quantile(1 - (1 - confidence) / 2, n - 1) * se
    p = 2.0 * (1.0 - t_cdf(abs(mean) / se, n - 1))
    return Interval(n, mean, se, mean - half, mean + half, min(1.0, p), confidence)


def sign_flip_p(diffs: Sequence[float]) -> float:
    """Exact two-sided permutation p-value of the mean under random sign flips (all 2^n of them):
    distribution-free, for when few seeds make the t-test's normality doubtful. Its floor is 2 / 2^n."""
    n = len(diffs)
    if n == 0 or n > 20:
        raise ValueError("sign_flip_p takes 1 to 20 differences")
    observed = abs(sum(diffs)) - 1e-12
    hits = sum(
        abs(sum(d if keep else -d for d, keep in zip(diffs, signs, strict=True))) >= observed
        for signs in itertools.product((True, False), repeat=n)
    )
    return hits / 2**n


def sign_test_p(wins: int, losses: int) -> float:
    """Exact two-sided sign test (binomial, p = 1/2) of ``wins`` against ``losses``; ties are left out."""
    n = wins + losses
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(wins, losses) + 1)) / 2**n
    return min(1.0, 2 * tail)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (same order as given): reject where adjusted p <= alpha."""
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted


def holm_confidence(rank: int, m: int, alpha: float = 0.05) -> float:
    """The confidence level of the interval that matches Holm's step ``rank`` (0 = smallest p) of m:
    the interval at 1 - alpha / (m - rank) excludes 0 exactly when that step rejects."""
    return 1 - alpha / (m - rank)


# --------------------------------------------------------------------------- power


def detectable(sd: float, seeds: int, alpha: float = 0.05, power: float = 0.8) -> float:
    """The smallest paired mean difference a two-sided paired t-test at ``alpha`` detects with
    ``power`` from ``seeds`` pairs, given the per-seed differences' standard deviation ``sd``."""
    if seeds < 2:
        return math.inf
    df = seeds - 1
    return (t_quantile(1 - alpha / 2, df) + t_quantile(power, df)) * sd / math.sqrt(seeds)


def seeds_needed(sd: float, effect: float, alpha: float = 0.05, power: float = 0.8, most: int = 1000) -> int:
    """Pairs (seeds) a paired t-test needs to detect ``effect`` (same units as ``sd``)."""
    if effect <= 0:
        raise ValueError("effect must be > 0")
    for n in range(2, most + 1):
        if detectable(sd, n, alpha, power) <= effect:
            return n
    return most
