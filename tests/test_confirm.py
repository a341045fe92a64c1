import pytest
import yaml

from gcsearch import ArchConfig, confirm
from gcsearch.cli import main
from gcsearch.pareto import TrialRecord

GC_A = {"stages": ["c3", "c4"], "pool": "att", "fusion": "add", "ratio": 0.25, "norm": "layernorm",
        "position": "after_1x1"}  # fmt: skip
GC_B = {**GC_A, "pool": "avg"}


def cand(number, accs):
    return confirm.Candidate(number, ArchConfig(), 100 + number, dict(enumerate(accs)))


def test_candidates_are_paired_by_seed_and_holm_corrected():
    a = cand(1, [0.90, 0.85, 0.88, 0.87])
    b = cand(2, [0.89, 0.84, 0.87, 0.86])  # 0.01 below a in every seed: distinguishable when paired
    c = cand(3, [0.86, 0.89, 0.85, 0.90])  # as good as a on average, in no consistent direction
    result = confirm.compare([a, b, c])
    assert result.distinguishable(1, 2) and result.distinguishable(2, 1)
    assert result.tied_with(1) == [3] and not result.distinguishable(1, 3)
    interval, holm_p = result.pairs[(1, 2)]
    assert interval.mean == pytest.approx(0.01) and holm_p >= interval.p


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
    [(["--seeds", "1"], "`--seeds` must be >= 2"), (["--top", "1"], "`--top` must be >= 2")],
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
    assert main(["confirm", str(run_dir), "--top", "2", "--seeds", "2"]) == 0
    result = confirm.load(run_dir)
    assert result is not None and len(result.candidates) == 2
    # Each candidate: the search's own seed (train.seed 0) plus seeds 1 and 2, the same for both.
    assert all(sorted(c.accuracies) == [0, 1, 2] for c in result.candidates)
    assert len(result.pairs) == 1
    assert main(["pareto", str(run_dir)]) == 0
    assert main(["export", str(run_dir), "--pick", "max-accuracy", "--out", str(tmp_path / "best.yaml")]) == 0
    best = max(result.candidates, key=lambda c: c.mean)
    exported = yaml.safe_load((tmp_path / "best.yaml").read_text())
    # The pick is the best mean over seeds, and the export says it was chosen among confirmed points.
    assert exported["source"]["trial"] == best.number and "confirmed" in exported["source"]["pick"]
    assert exported["metrics"]["accuracy"] == pytest.approx(best.mean)
