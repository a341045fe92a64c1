import dataclasses
import math

import pytest

from gcsearch import ArchConfig, stats
from gcsearch.bench import curves, fidelity
from gcsearch.cli import main

ARCHS = [ArchConfig(("c4",), "att", "add", r, "layernorm", "after_1x1") for r in (1, 1 / 2, 1 / 4, 1 / 8, 1 / 16)]


def known_curves():
    """5 configurations x 2 seeds x 2 epochs. Final accuracy ranks them 0 < 1 < 2 < 3 < 4 under both seeds
    (seed 1 adds 0.01 to every one). At epoch 1, seed 0 ranks them the same way; seed 1 swaps the two
    worst. Exact answers: Spearman 1 and 1 - 6*2/(5*24) = 0.9, mean 0.95; Kendall 1 and 8/10, mean 0.9."""
    pts = []
    for i, arch in enumerate(ARCHS):
        for seed in (0, 1):
            early = [0.30, 0.20, 0.40, 0.50, 0.60][i] if seed == 1 else 0.2 + 0.1 * i
            final = 0.5 + 0.1 * i + 0.01 * seed
            pts += [curves.CurvePoint(arch, seed, 1, early, 1 - early, 1.0, 5.0, 1, 1, "r"),
                    curves.CurvePoint(arch, seed, 2, final, 1 - final, 0.5, 10.0, 1, 1, "r")]  # fmt: skip
    return curves.Curves.of(pts)


def test_known_correlations():
    report = fidelity.fidelity(known_curves())
    first = report.at("accuracy", 1)
    assert first.spearman == pytest.approx(0.95)
    assert first.kendall == pytest.approx(0.9)
    assert first.top10 == 1.0  # k = 1: the best is the best at epoch 1 under both seeds
    assert first.held_out == pytest.approx(0.95)  # the other seed's finals rank the same way
    last = report.at("accuracy", 2)
    assert last.spearman == pytest.approx(1.0) and last.kendall == pytest.approx(1.0)
    # Validation loss here is 1 - accuracy: the same ranks.
    assert report.at("-loss", 1).spearman == pytest.approx(0.95)


def test_known_noise():
    n = fidelity.fidelity(known_curves()).noise
    assert n.seed_std == pytest.approx(0.01 / math.sqrt(2))
    # Every configuration moves by the same 0.01 between seeds: paired differences have no spread,
    # although the unpaired spread (0.007) is not zero. Two constant pairs are still no evidence of a
    # difference (stats.t_interval: p = 1, unbounded), so none of the 4 others is separated from the best.
    assert n.paired_std == pytest.approx(0.0, abs=1e-12)
    assert n.best == ARCHS[4] and n.not_separated_from_best == 4
    assert n.seconds_per_trial == 10.0


def test_bootstrap_intervals_hold_the_estimate_and_collapse_where_every_draw_agrees():
    report = fidelity.fidelity(known_curves())
    first, last = report.at("accuracy", 1), report.at("accuracy", 2)
    # The final epoch ranks exactly as the truth in every draw of configurations.
    assert (last.low, last.high) == pytest.approx((1.0, 1.0))  # to scipy's rounding
    # Epoch 1 ranks perfectly under seed 0 and swaps the two worst under seed 1: draws without both of
    # them score 1, so the upper end is 1; draws with both score below 0.95.
    assert first.low < first.spearman < first.high == pytest.approx(1.0)
    assert fidelity.ceiling(report) == pytest.approx(1.0)  # the other seed's finals rank the same way


def perfect_first_rung():
    """known_curves with seed 1's swap undone: epoch 1 ranks perfectly under both seeds."""
    pts = [p for run in known_curves().runs.values() for p in run]
    fixed = [
        dataclasses.replace(p, accuracy=0.2 + 0.1 * ARCHS.index(p.arch), loss=0.8 - 0.1 * ARCHS.index(p.arch))
        if p.epoch == 1
        else p
        for p in pts
    ]
    return curves.Curves.of(fixed)


def test_recipes_are_compared_paired_on_the_same_draws():
    base = known_curves()
    # A file against itself differs by exactly 0 in every draw: only a paired bootstrap gives that.
    same = fidelity.spearman_difference(base, base, "accuracy", 1)
    assert (same.diff, same.low, same.high) == (0.0, 0.0, 0.0)
    better = fidelity.spearman_difference(perfect_first_rung(), base, "accuracy", 1)
    assert better.diff == pytest.approx(0.05) and better.low >= 0.0 and better.high > 0.0
    assert (better.configs, better.seeds) == (5, 2)


def test_rank_helpers():
    assert stats.ranks([3.0, 1.0, 3.0, 2.0]) == [3.5, 1.0, 3.5, 2.0]
    assert stats.spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    # tau-b with one tie in x: 2 concordant, 0 discordant, one x-tie: 2 / sqrt(3 * 2).
    assert stats.kendall([1, 1, 2], [1, 2, 3]) == pytest.approx(2 / math.sqrt(6))
    assert stats.top_overlap(list(range(20)), list(range(20))[::-1]) == 0.0


def test_cli_writes_report_and_picture(tmp_path, capsys):
    path = tmp_path / "curves.csv"
    c = known_curves()
    curves.write(path, [p for run in c.runs.values() for p in run])
    out = tmp_path / "fid.md"
    assert main(["bench", "fidelity", str(path), str(path), "--out", str(out)]) == 0
    text = out.read_text()
    assert "| val accuracy | 1 | +0.950 | [" in text and "| +0.900 | 1.00 | +0.950 |" in text
    assert "Side by side" in text and "| curves | 5 x 2 | +0.00 [+0.00, +0.00] |" in text
    assert (tmp_path / "fid.png").stat().st_size > 10_000
