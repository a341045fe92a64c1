"""The replay drives the real decider (sampler, pruner, duplicates) over recorded curves, no training."""

import dataclasses
import math
import statistics

import pytest

from gcsearch.bench import curves, replay
from gcsearch.cli import main
from gcsearch.search import pruning, strategy
from gcsearch.spacefile import load_space
from tests.conftest import ROOT

SMOKE = load_space(ROOT / "search_spaces" / "smoke.yaml")
GC = load_space(ROOT / "search_spaces" / "gc.yaml")


def perfect_curves(space=SMOKE, epochs=3):
    """Every configuration of a space, 2 seeds; each epoch ranks them exactly as the last does."""
    pts = []
    for i, arch in enumerate(sorted(space.grid(), key=lambda a: a.label())):
        for seed in (0, 1):
            for e in range(1, epochs + 1):
                acc = 0.1 * e + 0.0005 * i
                pts.append(curves.CurvePoint(arch, seed, e, acc, 1 - acc, 1.0, float(e), 1000 + i, 10, "r"))
    return curves.Curves.of(pts)


def test_a_replay_is_deterministic_and_reads_only_recorded_curves():
    c = perfect_curves()
    a = replay.replay(c, SMOKE, "tpe+pareto", seed=3)
    b = replay.replay(c, SMOKE, "tpe+pareto", seed=3)
    assert a == b
    assert a.outside == 0  # the whole grid is recorded: no configuration answered by a neighbour
    assert a.hv[-1][1] <= 1.0 + 1e-9 and a.regret >= 0


def test_changing_the_pruners_decision_changes_the_outcome(monkeypatch):
    c = perfect_curves(GC)
    pruned = [replay.replay(c, GC, "random+pareto", seed=s, budget_epochs=60) for s in range(3)]
    monkeypatch.setattr(pruning.ParetoPruner, "prune", lambda self, study, trial: False)
    kept = [replay.replay(c, GC, "random+pareto", seed=s, budget_epochs=60) for s in range(3)]
    # The replay consults the real pruner: when it never prunes, the same budget buys fewer trials.
    assert [t.hv for t in pruned] != [t.hv for t in kept]
    assert sum(t.trials for t in pruned) > sum(t.trials for t in kept)


def test_with_a_perfect_first_rung_successive_halving_finds_a_top3_sooner_than_no_pruning():
    half = dataclasses.replace(GC, axes=dataclasses.replace(GC.axes, gate_init=("half",)))
    c = perfect_curves(half)  # 433 configurations: a top-3 is rare, so finding one costs many trials
    runs = {
        name: [replay.replay(c, half, name, seed=s, workers=1, budget_epochs=400) for s in range(3)]
        for name in ("random+successive_halving", "random+none")
    }
    sh = [t.epochs_to_top3 for t in runs["random+successive_halving"]]
    none = [t.epochs_to_top3 for t in runs["random+none"]]
    # Same proposals in the same order (the random sampler ignores results); pruning only cuts losers.
    assert all(a <= b for a, b in zip(sh, none, strict=True))
    assert statistics.median(sh) < statistics.median(none)


def test_strategy_names():
    names = strategy.names()
    assert "tpe+pareto" in names and "asha" in names and "grid" in names and len(names) == 23
    with pytest.raises(Exception, match="--strategy"):
        strategy.Strategy.parse("annealing+none", SMOKE.search)
    # The file's strategy by name, a fair baseline, and the pareto pruner's earlier rule as a field.
    assert strategy.Strategy.parse("default", SMOKE.search) == strategy.Strategy.of(SMOKE.search)
    assert not strategy.Strategy.parse(strategy.UNIFORM, SMOKE.search).references
    old = strategy.Strategy.parse("tpe+pareto-front-first", SMOKE.search)
    assert old.pruner == "pareto" and old.front_first
    assert old.settings == {"min_epochs": 1, "reduction_factor": 2, "min_fidelity": -1}  # smoke.yaml's own


def test_cli_refuses_curves_of_another_space(tmp_path, capsys):
    c = perfect_curves()
    path = tmp_path / "curves.csv"
    curves.write(path, [p for run in c.runs.values() for p in run])
    assert main(["bench", "replay", str(path), "--space", str(ROOT / "search_spaces" / "gc.yaml")]) == 2
    err = capsys.readouterr().err
    assert "must hold configurations of" in err and err.count("\n") == 1


def test_cli_writes_table_and_picture(tmp_path):
    c = perfect_curves()
    path = tmp_path / "curves.csv"
    curves.write(path, [p for run in c.runs.values() for p in run])
    out = tmp_path / "replay.md"
    args = ["bench", "replay", str(path), "--space", str(ROOT / "search_spaces" / "smoke.yaml"), "--seeds", "3",
            "--strategy", "default", "random+none", "--out", str(out)]  # fmt: skip
    assert main(args) == 0
    text = out.read_text()
    assert "| default |" in text and "| random+none |" in text and (tmp_path / "replay.png").exists()


def test_parallel_replays_equal_serial_ones():
    c = perfect_curves()
    serial = replay.replay_many(c, SMOKE, ["random+none", "tpe+pareto"], 2, 2, 27, jobs=1)
    parallel = replay.replay_many(c, SMOKE, ["random+none", "tpe+pareto"], 2, 2, 27, jobs=2)
    assert serial == parallel


def test_quartiles_interpolate_like_the_inclusive_method_with_or_without_never():
    values = [3, 1, 4, 1, 5, 9, 2, 6]
    assert replay.quartiles(values) == pytest.approx(statistics.quantiles(values, n=4, method="inclusive"))
    # A search that never found a top-3 is worse than any that did: the median reaching it is "never".
    assert replay.quartiles([1, 2, math.inf, math.inf]) == (1.75, math.inf, math.inf)
