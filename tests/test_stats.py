"""The statistics module against values worked out by hand or read from printed tables."""

import math

import pytest

from gcsearch import stats


@pytest.mark.parametrize(
    ("p", "df", "table"),
    # Student's t table: two-sided 95% (0.975 quantile) at df 1, 2, 4, 9, 30; 90% at df 4.
    [(0.975, 1, 12.706), (0.975, 2, 4.303), (0.975, 4, 2.776), (0.975, 9, 2.262), (0.975, 30, 2.042),
     (0.95, 4, 2.132)],
)  # fmt: skip
def test_t_quantiles_match_the_printed_table(p, df, table):
    assert stats.t_quantile(p, df) == pytest.approx(table, abs=5e-4)


def test_t_interval_by_hand():
    # Differences 1, 2, 3, 4, 5: mean 3, sd sqrt(2.5) = 1.5811, se 0.7071, t(0.975, 4) = 2.7764:
    # interval 3 -+ 1.9632 = [1.0368, 4.9632]; t = 4.2426, two-sided p = 0.01324.
    i = stats.t_interval([1, 2, 3, 4, 5])
    assert (i.mean, i.se) == pytest.approx((3.0, math.sqrt(0.5)))
    assert (i.low, i.high) == pytest.approx((1.0368, 4.9632), abs=1e-4)
    assert i.p == pytest.approx(0.01324, abs=5e-5) and i.excludes_zero


def test_the_issues_pool_comparison_is_not_separable_at_95_percent_with_4_seeds():
    # paper default - avg pooling over seeds 0-3 (issue "Statistics a reviewer accepts"): t = 3.0 < 3.18.
    i = stats.t_interval([0.0006, 0.0014, 0.0012, 0.0030])
    assert i.mean / i.se == pytest.approx(3.025, abs=1e-3) and not i.excludes_zero and 0.05 < i.p < 0.06


def test_sign_flip_p_by_hand():
    # 4 positive differences: only all-plus and all-minus reach |sum| >= the observed: 2 / 16.
    assert stats.sign_flip_p([0.1, 0.2, 0.3, 0.4]) == 2 / 16
    # Signs +, +, -: of the 8 flips, |sum| >= |1 + 2 - 0.5| = 2.5 for (+,+,+), (+,+,-) and their mirrors.
    assert stats.sign_flip_p([1, 2, -0.5]) == 4 / 8


def test_holm_worked_example():
    # p = 0.01, 0.04, 0.03, 0.005 -> sorted 0.005 x4 = 0.02, 0.01 x3 = 0.03, 0.03 x2 = 0.06, 0.04 x1 = 0.04
    # -> made monotone: 0.02, 0.03, 0.06, 0.06; returned in the given order.
    assert stats.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert stats.holm_confidence(0, 4) == pytest.approx(1 - 0.05 / 4)


def test_power():
    # sd 1, effect 1: the classic answer for a paired t-test at alpha 0.05, power 0.8 is 10 pairs.
    assert stats.seeds_needed(1.0, 1.0) == 10
    assert stats.detectable(1.0, 10) <= 1.0 < stats.detectable(1.0, 9)
    assert stats.detectable(1.0, 1) == math.inf


def test_paired_uses_common_seeds_only():
    assert stats.paired({0: 1.0, 1: 2.0, 2: 5.0}, {1: 1.5, 2: 4.0, 3: 0.0}) == [0.5, 1.0]


def test_sign_test_matches_the_binomial_tails():
    assert stats.sign_test_p(10, 0) == pytest.approx(2 / 2**10)
    assert stats.sign_test_p(3, 3) == 1.0 and stats.sign_test_p(0, 0) == 1.0
    assert stats.sign_test_p(15, 5) == pytest.approx(0.0414, abs=1e-4)  # a textbook value: 20 trials, 15 heads


def test_identical_differences_are_not_resolved_by_a_t_test_of_zero_variance():
    # Accuracies are multiples of 1/5000: five seeds can all put b exactly one image below a. The t test's
    # standard error is then 0 (or float rounding): the earlier code said p = 0 and a zero-width interval.
    correct = [4051, 3952, 4118, 4025, 4089]  # of 5000 validation images
    a = [k / 5000 for k in correct]
    b = [(k - 1) / 5000 for k in correct]
    diffs = stats.paired(dict(enumerate(a)), dict(enumerate(b)))
    assert max(diffs) != min(diffs)  # float rounding: not exactly equal, yet they do not vary
    i = stats.t_interval(diffs)
    # The exact sign-flip test decides: 2 / 2^5 = 0.0625, not resolved at 95%, and the interval says nothing.
    assert i.p == pytest.approx(2 / 32) and i.p == pytest.approx(stats.sign_flip_p(diffs))
    assert (i.low, i.high) == (-math.inf, math.inf) and not i.excludes_zero
    assert i.mean == pytest.approx(0.0002)
    # Six equal differences: 2 / 64 = 0.031 resolves at 95% (not at 99%); all-zero differences never.
    six = stats.t_interval([0.0002] * 6)
    assert six.p == pytest.approx(2 / 64) and six.excludes_zero
    assert not stats.t_interval([0.0002] * 6, confidence=0.99).excludes_zero
    zero = stats.t_interval([0.0] * 8)
    assert zero.p == 1.0 and not zero.excludes_zero


def test_fewer_than_three_pairs_resolve_nothing():
    # Two nearly equal differences give t = 21 on 1 df (p 0.03) by the t test alone; two seeds are not
    # enough to say it: p = 1, unbounded interval.
    i = stats.t_interval([0.0010, 0.0011])
    assert i.p == 1.0 and (i.low, i.high) == (-math.inf, math.inf) and not i.excludes_zero
    assert stats.MIN_PAIRS == 3
    with pytest.raises(ValueError):
        stats.t_interval([0.1])


def test_the_t_test_matches_scipy():
    from scipy import stats as sps

    diffs = [0.003, -0.001, 0.004, 0.002, 0.0005, 0.0035]
    i = stats.t_interval(diffs, confidence=0.9)
    ref = sps.ttest_1samp(diffs, 0.0)
    low, high = ref.confidence_interval(0.9)
    assert i.p == pytest.approx(ref.pvalue) and (i.low, i.high) == pytest.approx((low, high))
    assert stats.t_cdf(2.0, 5) == pytest.approx(sps.t.cdf(2.0, 5))
    assert stats.betainc(2.0, 3.0, 0.4) == pytest.approx(0.5248)  # I_0.4(2, 3), by hand: 0.5248


def test_tost_shows_equivalence_only_when_the_interval_sits_inside_the_margin():
    close = stats.t_interval([0.0003, -0.0002, 0.0001, -0.0001, 0.0002, 0.0000])
    wide = stats.t_interval([0.004, -0.003, 0.002, -0.004, 0.003, -0.002])  # mean ~0 but noisy
    shifted = stats.t_interval([0.0031, 0.0029, 0.0030, 0.0032, 0.0028, 0.0030])  # precise, outside 0.002
    assert stats.tost_p(close) < 0.001
    assert stats.tost_p(wide) > 0.05 and not wide.excludes_zero  # not separated, yet not shown tied
    assert stats.tost_p(shifted) > 0.5
    assert stats.tost_p(stats.t_interval([0.0, 0.001])) == 1.0  # 2 pairs: unresolved
