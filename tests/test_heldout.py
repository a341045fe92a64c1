"""Held-out judging of replayed searches (gcsearch/bench/heldout.py): oracle and anti-oracle bounds, and no
'equivalent' verdict where the recording cannot tell strategies apart."""

import random

from gcsearch.bench import curves, heldout, replay
from gcsearch.spacefile import load_space
from tests.conftest import ROOT

SMOKE = load_space(ROOT / "search_spaces" / "smoke.yaml")
MARGIN = 0.001


def recording(spread: float, seeds=4, epochs=2):
    """Every smoke configuration, ``seeds`` seeds: configuration i scores base + spread * i, plus seed noise far
    below the margin."""
    pts = []
    rng = random.Random(0)
    for i, arch in enumerate(sorted(SMOKE.grid(), key=lambda a: a.label())):
        for seed in range(seeds):
            for e in range(1, epochs + 1):
                acc = 0.5 + 0.01 * e + spread * i + rng.gauss(0, 0.00005)
                pts.append(curves.CurvePoint(arch, seed, e, acc, 1 - acc, 1.0, float(e), 1000 + i, 10, "r"))
    return curves.Curves.of(pts)


def judge(c, budget_share=0.35, replays=12):
    full = len(c.archs) * c.epochs
    names = ["default", "uniform"]
    traces = replay.replay_many(c, SMOKE, names, replays, 2, full)
    truths = {s: heldout.truth(c, s) for s in c.common_seeds()}
    held = [truths[t.recorded_seed] for t in traces["uniform"]]
    clusters = [t.recorded_seed for t in traces["uniform"]]
    regrets = {n: [heldout.regret(t, truths[t.recorded_seed], budget_share * full) for t in traces[n]] for n in names}
    rng = random.Random(0)
    oracle, anti = heldout.bounds(regrets["uniform"], held, clusters, MARGIN, rng)
    verdict = heldout.compare(regrets["default"], regrets["uniform"], clusters, MARGIN, rng, oracle.within_margin)
    return oracle, anti, verdict


def test_a_flat_recording_gets_cannot_tell_instead_of_equivalent():
    # 9 configurations within 0.0004 of each other: even an oracle gains less than the margin over uniform search.
    oracle, anti, verdict = judge(recording(spread=0.00005))
    assert oracle.within_margin and anti.mean < MARGIN and verdict.verdict != "equivalent"
    # The rule itself: differences inside the margin read "equivalent" only where an oracle could tell.
    rng = random.Random(1)
    a, b = [rng.gauss(0.01, 0.0001) for _ in range(40)], [rng.gauss(0.01, 0.0001) for _ in range(40)]
    clusters = [i % 4 for i in range(40)]
    assert heldout.compare(a, b, clusters, MARGIN, random.Random(0)).verdict == "equivalent"
    refused = heldout.compare(a, b, clusters, MARGIN, random.Random(0), oracle_equivalent=True)
    assert refused.verdict == heldout.CANNOT_TELL


def test_a_recording_with_a_top_lets_the_oracle_win_and_bounds_every_strategy():
    oracle, anti, verdict = judge(recording(spread=0.01))
    # Configurations 0.01 apart: the oracle beats uniform search, the anti-oracle loses to it; a strategy's
    # difference lies between the two, and "cannot tell" is not said.
    assert oracle.verdict == "better" and not oracle.within_margin and anti.verdict == "worse"
    assert oracle.mean <= verdict.mean <= anti.mean and verdict.verdict != heldout.CANNOT_TELL
