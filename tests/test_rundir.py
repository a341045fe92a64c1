import dataclasses
import os
import time

import optuna
import pytest
import yaml

from gcsearch import ArchConfig, pareto
from gcsearch.errors import ConfigError
from gcsearch.search import attrs, rundir
from gcsearch.spacefile import load_space
from tests.conftest import ROOT


def test_a_stale_journal_lock_is_cleared_under_the_run_lock(tmp_path):
    storage = rundir.storage(tmp_path)
    optuna.create_study(study_name="s", storage=storage)
    # What a SIGKILL during an append leaves: the journal's lock, held by no one.
    os.symlink(str(tmp_path / "optuna.log"), tmp_path / "optuna.log.lock")
    with rundir.RunLock(tmp_path):
        assert rundir.clear_stale_journal_lock(tmp_path)
        start = time.monotonic()
        optuna.load_study(study_name="s", storage=rundir.storage(tmp_path)).ask()
        # Optuna would otherwise wait out its 30 s grace period before forcing the lock.
        assert time.monotonic() - start < 5
    assert not rundir.clear_stale_journal_lock(tmp_path)


def test_repair_journal_cuts_only_a_half_written_last_record(tmp_path):
    (tmp_path / "optuna.log").write_bytes(b'{"a": 1}\n{"b": 2}\n{"c": ')
    assert rundir.repair_journal(tmp_path) == len(b'{"c": ')
    assert (tmp_path / "optuna.log").read_bytes() == b'{"a": 1}\n{"b": 2}\n'
    assert rundir.repair_journal(tmp_path) == 0


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")  # set_metric_names
def test_accuracy_index_follows_metric_names():
    study = optuna.create_study(directions=["minimize", "maximize"])
    assert rundir.accuracy_index(study) == 0  # a study from before metric names: accuracy first
    study.set_metric_names(["macs", "accuracy"])
    assert rundir.accuracy_index(study) == 1


def test_a_run_continued_under_another_recipe_is_refused_naming_the_key(tmp_path):
    space = load_space(ROOT / "search_spaces" / "smoke.yaml")
    rundir.check_same_recipe(tmp_path, space)  # a new run: nothing to match
    rundir.save_space(tmp_path, space)
    (tmp_path / "optuna.log").write_text("")
    more_epochs = dataclasses.replace(space, train=dataclasses.replace(space.train, epochs=5))
    with pytest.raises(ConfigError, match=r"`train.epochs` must match the run being continued, which trained with 3"):
        rundir.check_same_recipe(tmp_path, more_epochs)
    # Where a trial runs, and how many trials the search makes, are not the recipe.
    elsewhere = dataclasses.replace(space, train=dataclasses.replace(space.train, threads=2))
    longer = dataclasses.replace(space, search=dataclasses.replace(space.search, trials=99))
    rundir.check_same_recipe(tmp_path, elsewhere)
    rundir.check_same_recipe(tmp_path, longer)
    # A run saved before a key existed: the key compares as its default, not as a change.
    saved = yaml.safe_load((tmp_path / "space.yaml").read_text())
    del saved["train"]["ema"]
    (tmp_path / "space.yaml").write_text(yaml.safe_dump(saved))
    rundir.check_same_recipe(tmp_path, space)


def test_a_proposal_cut_off_before_it_started_is_not_counted_as_trained(tmp_path):
    study = optuna.create_study(study_name=rundir.MAIN_STUDY, storage=rundir.storage(tmp_path),
                                directions=["maximize", "minimize"])  # fmt: skip
    arch = {"stages": ["c5"], "pool": "att", "fusion": "add", "ratio": 0.25, "norm": "layernorm",
            "position": "after_1x1"}  # fmt: skip
    done = study.ask()
    for key, value in ((attrs.ARCH, arch), (attrs.MACS, 10), (attrs.TWIN, 0)):
        done.set_user_attr(key, value)
    study.tell(done, [0.9, 10])
    # What a kill between a proposal's costs and its twin leaves, once the resume has told it FAIL.
    cut = study.ask()
    cut.set_user_attr(attrs.ARCH, arch)
    cut.set_user_attr(attrs.MACS, 10)
    study.tell(cut, state=optuna.trial.TrialState.FAIL)
    records = rundir.records(rundir.load_main_study(tmp_path))
    assert [r.number for r in pareto.trained(records)] == [done.number]


def test_the_front_marks_what_is_within_the_runs_noise_of_the_baseline(make_run):
    import dataclasses

    from gcsearch.analysis.report import front_table, noise_note

    space = load_space(ROOT / "search_spaces" / "smoke.yaml")
    ref = space.reference().to_dict()
    # Baseline and paper default at 3 seeds (the reference seeds): paired differences 0.010, 0.012, 0.008, so a
    # single paired difference must exceed t(0.975, 2) * 0.002 = 0.0086 to be told from the baseline.
    c4_att = {"stages": ["c4"], "pool": "att", "fusion": "add", "ratio": "1/4"}
    c3c4_avg = {"stages": ["c3", "c4"], "pool": "avg", "fusion": "add", "ratio": "1/4"}
    run = make_run([({"stages": []}, "COMPLETE", 0.800), (ref, "COMPLETE", 0.810), (c4_att, "COMPLETE", 0.830),
                    (c3c4_avg, "COMPLETE", 0.805)])  # fmt: skip
    study = rundir.load_main_study(run)
    trials = study.get_trials(deepcopy=False)
    for seed, (base, default) in ((1, (0.790, 0.802)), (2, (0.801, 0.809))):
        for arch, acc in ((ArchConfig(), base), (space.reference(), default)):
            t = study.ask()
            for key, value in {**trials[0 if arch.is_baseline else 1].user_attrs, "seed": seed}.items():
                t.set_user_attr(key, value)
            study.tell(t, [acc, trials[0 if arch.is_baseline else 1].user_attrs["macs"]])
    records = rundir.records(study)
    spaced = dataclasses.replace(space, search=dataclasses.replace(space.search, reference_seeds=3))
    noise = rundir.reference_noise(spaced, records)
    assert noise.pairs == 3 and noise.sd == pytest.approx(0.002) and noise.threshold == pytest.approx(0.0086, abs=1e-4)
    marks = rundir.baseline_marks(spaced, records)
    front = rundir.pareto_front(spaced, records)
    # Only the search's own seed is on the front: the reference trials' extra seeds measure noise.
    assert all(r.seed in (None, 0) for r in front)
    # Against the baseline's 0.800 at seed 0: +0.005 is within the noise, +0.010 and +0.030 are above it.
    expected = {0.800: "the baseline", 0.805: "within noise", 0.810: "above", 0.830: "above"}
    assert {marks[r.number] for r in front} >= {"the baseline", "within noise", "above"}
    assert all(marks[r.number] == expected[round(r.accuracy, 3)] for r in front)
    table = front_table(front, marks)
    assert "vs baseline" in table and "above" in table
    assert "within noise = less than 0.0086" in noise_note(spaced, records)


def test_a_run_directory_another_search_created_first_is_refused_and_left_alone(tmp_path):
    space = load_space(ROOT / "search_spaces" / "smoke.yaml")
    rundir.create_run_dir(tmp_path / "run", space)
    (tmp_path / "run" / "optuna.log").write_text("the other search's")
    with pytest.raises(ConfigError, match="another search"):
        rundir.create_run_dir(tmp_path / "run", space)
    assert (tmp_path / "run" / "optuna.log").read_text() == "the other search's"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no temporary left
