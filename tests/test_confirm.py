import pathlib

import pytest
import yaml

from gcsearch import ArchConfig
from gcsearch.analysis import confirm
from gcsearch.cli import main
from gcsearch.pareto import TrialRecord

GC_A = {"stages": ["c3", "c4"], "pool": "att", "fusion": "add", "ratio": 0.25, "norm": "layernorm",
        "position": "after_1x1"}  # fmt: skip
GC_B = {**GC_A, "pool": "avg"}
ROOT = pathlib.Path(__file__).resolve().parent.parent


def cand(number, accs):
    return confirm.Candidate(number, ArchConfig(), 100 + number, dict(enumerate(accs)))


def test_candidates_are_paired_by_seed_and_holm_corrected():
    a = cand(1, [0.90, 0.85, 0.88, 0.87])
    b = cand(2, [0.890, 0.839, 0.871, 0.860])  # 0.009-0.011 below a in every seed: distinguishable paired
    c = cand(3, [0.86, 0.89, 0.85, 0.90])  # as good as a on average, in no consistent direction
    result = confirm.compare([a, b, c])
    assert result.distinguishable(1, 2) and result.distinguishable(2, 1)
    # c is not told from a, but its differences (sd 0.03) are far from showing it within 0.002: not tied.
    assert not result.distinguishable(1, 3) and result.tied_with(1) == [] and result.unresolved_with(1) == [3]
    pair = result.pairs[(1, 2)]
    assert pair.interval.mean == pytest.approx(0.01) and pair.p >= pair.interval.p


def test_tied_means_shown_equivalent_within_the_margin():
    a = cand(1, [0.900, 0.850, 0.880, 0.870, 0.860, 0.890])
    b = cand(2, [0.9002, 0.8496, 0.8803, 0.8699, 0.8604, 0.8898])  # within 0.0004 of a in every seed
    far = cand(3, [0.800, 0.751, 0.779, 0.770, 0.762, 0.790])  # about 0.1 below a, varying
    result = confirm.compare([a, b, far])
    assert result.equivalent(1, 2) and result.tied_with(1) == [2] and result.unresolved_with(1) == []
    assert result.distinguishable(1, 3) and not result.equivalent(1, 3)
    assert "| 1 | 2 |" in confirm.table(result) and "| tied |" in confirm.table(result)


def test_identical_differences_do_not_make_candidates_distinguishable():
    # b exactly one validation image (1/5000) below a in each of 4 seeds: zero variance. The earlier t test
    # said p = 0 (distinguishable); the exact sign-flip test gives 2 / 16, and Holm more.
    a = cand(1, [k / 5000 for k in (4051, 3952, 4118, 4025)])
    b = cand(2, [(k - 1) / 5000 for k in (4051, 3952, 4118, 4025)])
    c = cand(3, [0.70, 0.71, 0.69, 0.72])
    result = confirm.compare([a, b, c])
    assert not result.distinguishable(1, 2) and result.pairs[(1, 2)].interval.p == pytest.approx(2 / 16)
    assert 2 in result.unresolved_with(1) and 2 not in result.tied_with(1)


def record(number, arch, acc, macs):
    return TrialRecord(number, "COMPLETE", ArchConfig.from_dict(arch), acc, macs, 0, 3, 1.0)


def test_a_front_shorter_than_top_is_filled_with_the_best_runner_ups():
    baseline = record(0, {"stages": []}, 0.99, 10)  # dominates everything: the front is one point
    a, a_again = record(1, GC_A, 0.95, 20), record(3, GC_A, 0.94, 20)
    b = record(2, GC_B, 0.90, 20)
    assert confirm.candidates([baseline], [baseline, b, a, a_again], 3) == [baseline, a, b]
    assert confirm.candidates([baseline], [baseline, b, a], 1) == [baseline]


@pytest.mark.parametrize(
    ("args", "needle"),
    [(["--seeds", "2"], "`--seeds` must be >= 3"), (["--top", "1"], "`--top` must be >= 2")],
)
def test_bad_flags_exit_2(make_run, capsys, args, needle):
    run_dir = make_run([(GC_A, "COMPLETE", 0.8), (GC_B, "COMPLETE", 0.7)])
    assert main(["confirm", str(run_dir), *args]) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1


def test_unknown_run_and_run_without_complete_trials_exit_2(make_run, tmp_path, capsys):
    assert main(["confirm", str(tmp_path / "nope")]) == 2
    assert "must be an existing run directory" in capsys.readouterr().err
    run_dir = make_run([(GC_A, "PRUNED", 0.5)], name="pruned")
    assert main(["confirm", str(run_dir)]) == 2
    assert "has no COMPLETE trial to confirm" in capsys.readouterr().err


def fake_search(monkeypatch, plans):
    """Replace the training: each planned (configuration, seed) gets an accuracy of 0.8 + seed / 1000 (and
    + 0.01 for the second configuration), as a COMPLETE record carrying its seed."""
    from gcsearch.search import tune

    def run(space, run_dir, *, address=None, stream=None, plan=None, dashboard=False, resume=None):
        plans.append(list(plan))
        archs = list(dict.fromkeys(a for a, _ in plan))
        return [TrialRecord(n, "COMPLETE", a, 0.8 + s / 1000 + 0.01 * archs.index(a), 10, 1, 3, 1.0, seed=s)
                for n, (a, s) in enumerate(plan)]  # fmt: skip

    monkeypatch.setattr(tune, "run", run)


def test_confirm_trains_fresh_seeds_only_and_never_counts_the_search_accuracy(tmp_path, monkeypatch):
    from gcsearch.spacefile import load_space

    space = load_space(ROOT / "search_spaces" / "smoke.yaml")
    own = space.train.seed
    # A from the search (trained under train.seed), B from an ablate-like plan under its own seed 3; its
    # run also trained seeds own + 1 and own + 2 for other points.
    a = record(0, GC_A, 0.99, 20)  # the search's lucky draw: must not enter A's mean
    b = TrialRecord(1, "COMPLETE", ArchConfig.from_dict(GC_B), 0.98, 20, 0, 3, 1.0, seed=own + 3)
    plans = []
    fake_search(monkeypatch, plans)
    result = confirm.confirm(space, tmp_path, [a, b], 3, searched={own + 1, own + 2})
    (plan,) = plans
    trained_seeds = {s for _, s in plan}
    # Fresh: none of the run's seeds (train.seed, the record's own seed 3, the other seeds it trained).
    assert trained_seeds == {own + 4, own + 5, own + 6}
    for c in result.candidates:
        assert set(c.accuracies) == trained_seeds  # the search's own seed is not one of them
        assert 0.99 not in c.accuracies.values() and 0.98 not in c.accuracies.values()
    assert result.by_number(0).mean == pytest.approx(0.8 + (own + 5) / 1000)
    # The earlier code filed B's search accuracy under train.seed although B was trained with seed 3.
    assert own not in result.by_number(1).accuracies


def test_confirm_command_avoids_every_seed_of_the_run(make_run, monkeypatch, capsys):
    from gcsearch.spacefile import load_space

    run_dir = make_run([(GC_A, "COMPLETE", 0.8), (GC_B, "COMPLETE", 0.7)])
    own = load_space(run_dir / "space.yaml").train.seed
    plans = []
    fake_search(monkeypatch, plans)
    assert main(["confirm", str(run_dir), "--top", "2", "--seeds", "3"]) == 0
    (plan,) = plans
    assert own not in {s for _, s in plan} and len(plan) == 6
    assert "not reused" in capsys.readouterr().out


@pytest.mark.slow
def test_confirm_on_a_smoke_run_retrains_with_paired_seeds_and_export_picks_among_them(tmp_path, monkeypatch):
    from pathlib import Path

    monkeypatch.chdir(tmp_path)
    smoke = yaml.safe_load((Path(__file__).resolve().parent.parent / "search_spaces" / "smoke.yaml").read_text())
    # No pruning: at least 2 COMPLETE trials to confirm, whatever the pruner would decide.
    smoke["search"].update(pruner="none", pruner_settings={})
    (tmp_path / "smoke.yaml").write_text(yaml.safe_dump(smoke))
    assert main(["run", "smoke.yaml", "--name", "s", "--trials", "4"]) == 0
    run_dir = tmp_path / "runs" / "s"
    assert main(["confirm", str(run_dir), "--top", "2", "--seeds", "3"]) == 0
    result = confirm.load(run_dir)
    assert result is not None and len(result.candidates) == 2
    # Each candidate: fresh seeds 1, 2 and 3, the same for both; never the search's own (train.seed 0).
    assert all(sorted(c.accuracies) == [1, 2, 3] for c in result.candidates)
    assert len(result.pairs) == 1
    assert main(["pareto", str(run_dir)]) == 0
    assert main(["export", str(run_dir), "--pick", "max-accuracy", "--out", str(tmp_path / "best.yaml")]) == 0
    best = max(result.candidates, key=lambda c: c.mean)
    exported = yaml.safe_load((tmp_path / "best.yaml").read_text())
    # The pick is the best mean over seeds, and the export says it was chosen among confirmed points.
    assert exported["source"]["trial"] == best.number and "confirmed" in exported["source"]["pick"]
    assert exported["metrics"]["accuracy"] == pytest.approx(best.mean)
