import dataclasses
import os
import time

import optuna
import pytest
import yaml

from gcsearch import pareto
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
