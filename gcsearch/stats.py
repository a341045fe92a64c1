"""Paired statistics over seeds, over scipy.stats (imported when first used): no torch, no ray.

Seeds are common random numbers: one seed gives every configuration the same initial backbone weights
and the same batch order, so two configurations trained with the same seed form a pair, and their
comparison uses the per-seed differences (a paired t-test), not two independent means.

- ``paired``: the per-seed differences over the seeds both sides have;
- ``t_interval``: mean, Student-t confidence interval and two-sided p-value of differences (scipy's
  ``ttest_1samp``); not resolved (p = 1, an unbounded interval) with fewer than ``MIN_PAIRS`` differences
  or when they do not vary, unless the exact sign-flip test resolves constant differences;
- ``tost_p``: the two one-sided tests (TOST) that a paired difference lies within +-margin: the only
  ground for calling two configurations tied;
- ``sign_flip_p``: the exact permutation (sign-flip) p-value, distribution-free, for few seeds;
- ``holm``: Holm-Bonferroni adjusted p-values across the comparisons of one family;
- ``seeds_needed`` / ``detectable``: power of a paired t-test from an observed paired standard deviation;
- ``ranks``, ``spearman``, ``kendall`` (tau-b), ``top_overlap``: how well one ranking agrees with another;
- ``judge``: a family of contrasts (estimate, standard error, df) judged two-sided with Holm, equivalent only by
  TOST, each with the effect it could detect with 80% power (``Contrast``).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

# Fewer paired differences than this resolve nothing: p = 1 and an unbounded interval. With 2 the t test
# has one degree of freedom and rests on the normality of two numbers; accuracies on a finite validation
# set are multiples of 1 / size, so two differences often agree by the grid alone.
MIN_PAIRS = 3
# Differences whose spread is at most this fraction of their size do not vary: the t statistic is then
# 0 / 0 or x / (float rounding), not evidence (e.g. 0.8102 - 0.8100 and 0.7904 - 0.7902 differ in the 17th
# digit only).
CONSTANT = 1e-9
# Equivalence margin (accuracy) of every "tied" verdict: 0.2 points, under the smallest effect the paper
# reports (its ablations separate variants by 0.3 points and more), and 2x the paired noise of the
# fine-tuned recipe (experiments/results/recipes-noise.md), so a few seeds can show it.
MARGIN = 0.002
ALPHA = 0.05  # every family's level
POWER = 0.8  # the power a detectable effect is stated at


def paired(a: Mapping[int, float], b: Mapping[int, float]) -> list[float]:
    """a[seed] - b[seed] for every seed both hold, in seed order."""
    return [a[s] - b[s] for s in sorted(set(a) & set(b))]


# --------------------------------------------------------------------------- Student's t


def betainc(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b) (scipy.special.betainc)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    from scipy import special  # imported on use: scipy.stats alone takes a second to import

    return float(special.betainc(a, b, x))


def t_cdf(t: float, df: float) -> float:
    """Student's t distribution function with df degrees of freedom."""
    from scipy import stats as sps

    return float(sps.t.cdf(t, df))


def t_quantile(p: float, df: float) -> float:
    """The p-quantile of Student's t with df degrees of freedom."""
    if not 0.0 < p < 1.0:
        raise ValueError("p must be in (0, 1)")
    from scipy import stats as sps

    return float(sps.t.ppf(p, df))


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


def constant(diffs: Sequence[float]) -> bool:
    """Whether the differences do not vary (to float rounding): a t test on them is undefined."""
    scale = max(abs(d) for d in diffs)
    return max(diffs) - min(diffs) <= CONSTANT * scale


def t_interval(diffs: Sequence[float], confidence: float = 0.95) -> Interval:
    """Student-t interval of the mean of paired differences, with the two-sided p-value of a one-sample t
    test against 0 (scipy.stats.ttest_1samp); needs 2 or more differences.

    Not resolved (p = 1, interval (-inf, +inf)) with fewer than ``MIN_PAIRS`` differences. Differences that
    do not vary (``constant``) leave the t test undefined (its standard error is 0): the exact sign-flip
    test decides instead, p = 2 / 2^n for n equal non-zero differences (1 when they are 0); when that p
    reaches 1 - confidence the interval is the point itself (what the inverted sign-flip test leaves), else
    it is unbounded. So 5 equal differences (p 0.0625) are not resolved at 95%, 6 (p 0.031) are."""
    n = len(diffs)
    if n < 2:
        raise ValueError("a t interval needs at least 2 paired differences")
    mean = statistics.fmean(diffs)
    unresolved = Interval(n, mean, math.nan, -math.inf, math.inf, 1.0, confidence)
    if n < MIN_PAIRS:
        return unresolved
    if constant(diffs):
        p = 1.0 if max(abs(d) for d in diffs) == 0.0 else min(1.0, 2.0 / 2**n)
        if p > 1 - confidence:
            return dataclasses.replace(unresolved, p=p)
        return Interval(n, mean, 0.0, mean, mean, p, confidence)
    from scipy import stats as sps

    se = statistics.stdev(diffs) / math.sqrt(n)
    half = t_quantile(1 - (1 - confidence) / 2, n - 1) * se
    p = float(sps.ttest_1samp(diffs, 0.0).pvalue)
    return Interval(n, mean, se, mean - half, mean + half, min(1.0, p), confidence)


def tost_p(interval: Interval, margin: float = MARGIN) -> float:
    """p-value of the two one-sided t tests (TOST) that the true mean difference lies within +-margin:
    the larger of the two one-sided p-values (scipy.stats.t), on the interval's mean and standard error.
    An unresolved interval (too few pairs, or constant differences the sign-flip test does not resolve)
    gives 1; constant differences it resolves give 0 inside the margin and 1 outside."""
    if math.isnan(interval.se):
        return 1.0
    if interval.se == 0.0:
        return 0.0 if abs(interval.mean) < margin else 1.0
    from scipy import stats as sps

    df = interval.n - 1
    above = sps.t.sf((interval.mean + margin) / interval.se, df)  # H0: difference <= -margin
    below = sps.t.cdf((interval.mean - margin) / interval.se, df)  # H0: difference >= +margin
    return float(max(above, below))


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
    if wins + losses == 0:
        return 1.0
    from scipy import stats as sps

    return float(sps.binomtest(wins, wins + losses, 0.5).pvalue)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (same order as given): reject where adjusted p <= alpha (statsmodels)."""
    if not pvalues:
        return []
    from statsmodels.stats.multitest import multipletests

    return [float(p) for p in multipletests(list(pvalues), method="holm")[1]]


def holm_confidence(rank: int, m: int, alpha: float = 0.05) -> float:
    """The confidence level of the interval that matches Holm's step ``rank`` (0 = smallest p) of m:
    the interval at 1 - alpha / (m - rank) excludes 0 exactly when that step rejects."""
    return 1 - alpha / (m - rank)


# --------------------------------------------------------------------------- rank statistics


def ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks, ties given their average rank (scipy's rankdata)."""
    from scipy import stats as sps

    return [float(r) for r in sps.rankdata(list(values))]


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rank correlation (scipy); nan where either side does not vary."""
    from scipy import stats as sps

    if len(set(x)) < 2 or len(set(y)) < 2:
        return math.nan
    return float(sps.spearmanr(list(x), list(y)).statistic)


def kendall(x: Sequence[float], y: Sequence[float]) -> float:
    """Kendall's tau-b, ties in either variable accounted for (scipy); nan where either side does not vary."""
    from scipy import stats as sps

    if len(set(x)) < 2 or len(set(y)) < 2:
        return math.nan
    return float(sps.kendalltau(list(x), list(y)).statistic)


def top_overlap(x: Sequence[float], y: Sequence[float], share: float = 0.1) -> float:
    """|top k by x  intersect  top k by y| / k, with k = ceil(share * n)."""
    k = max(1, math.ceil(share * len(x)))
    top_x = set(sorted(range(len(x)), key=lambda i: -x[i])[:k])
    top_y = set(sorted(range(len(y)), key=lambda i: -y[i])[:k])
    return len(top_x & top_y) / k


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


# --------------------------------------------------------------------------- verdicts


@dataclass(frozen=True)
class Contrast:
    name: str
    paper: str  # the paper's direction and evidence, or "unresolved"
    estimate: float  # better - worse
    low: float  # 95% two-sided interval
    high: float
    se: float
    df: float
    p: float  # two-sided, unadjusted
    p_adjusted: float  # Holm over the family (or over position's pairs)
    p_tost: float  # equivalence at +-margin, Holm-adjusted the same way
    detectable: float  # the smallest effect found with 80% power at the strictest Holm step
    verdict: str


def judge(tests: Sequence[tuple[str, str, float, float, float, tuple[str, str]]], margin: float) -> list[Contrast]:
    """Two-sided t tests and TOST at +-margin, both Holm-adjusted over ``tests``; each test's verdict is
    its first word when the estimate is resolved above zero, its second below, "equivalent", or "not
    resolved"."""
    from scipy import stats as st  # imported on use

    p, p_tost = [], []
    for _, _, est, se, df, _ in tests:
        if se <= 1e-9:  # no spread (to rounding): a t test says nothing; identical scores are not evidence
            p.append(1.0)
            p_tost.append(1.0)
            continue
        p.append(float(2 * st.t.sf(abs(est) / se, df)))
        p_tost.append(float(max(st.t.sf((est + margin) / se, df), st.t.cdf((est - margin) / se, df))))
    adjusted, adjusted_tost = holm(p), holm(p_tost)
    m = len(tests)
    out = []
    for (name, paper, est, se, df, words), pv, pa, pt in zip(tests, p, adjusted, adjusted_tost, strict=True):
        half = float(st.t.ppf(1 - ALPHA / 2, df)) * se
        # 80% power for a two-sided test at the strictest Holm step, alpha / m.
        mde = (float(st.t.ppf(1 - ALPHA / (2 * m), df)) + float(st.t.ppf(POWER, df))) * se
        if pa <= ALPHA:
            verdict = words[0] if est > 0 else words[1]
        elif pt <= ALPHA:
            verdict = "equivalent"
        else:
            verdict = "not resolved"
        out.append(Contrast(name, paper, est, est - half, est + half, se, df, pv, pa, pt, mde, verdict))
    return out
