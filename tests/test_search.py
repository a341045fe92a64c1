"""Searches with real Ray (local, and a two-node cluster on this machine) on smoke.yaml."""

import csv
import dataclasses
import os
import pathlib
import re
import signal
import subprocess
import sys
import time

import optuna
import pytest
from optuna.trial import TrialState

from gcsearch import pareto
from gcsearch.search import rundir
from gcsearch.spacefile import load_space
from tests.conftest import token_authentication

ROOT = pathlib.Path(__file__).resolve().parent.parent
SMOKE = ROOT / "search_spaces" / "smoke.yaml"
GCSEARCH = [sys.executable, "-m", "gcsearch"]

pytestmark = pytest.mark.slow


def read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def finished(study):
    done = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    return {t.number: t for t in study.get_trials() if t.state in done}


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    from gcsearch.search.tune import run

    run_dir = tmp_path_factory.mktemp("runs") / "smoke"
    space = load_space(SMOKE)
    records = run(space, run_dir)
    return space, run_dir, records


def test_search_completes_with_complete_and_pruned_trials(smoke_run):
    space, _, records = smoke_run
    trained = pareto.trained(records)
    states = {r.state for r in trained}
    assert {"COMPLETE", "PRUNED"} <= states and "RUNNING" not in states
    # The budget counts trained trials; duplicates are answered from their original.
    assert len(trained) == space.search.trials
    # COMPLETE means the last epoch was reached; a pruned trial stopped before it.
    assert all(r.epochs == space.train.epochs for r in trained if r.state == "COMPLETE")
    assert all(r.epochs < space.train.epochs for r in trained if r.state == "PRUNED")


def test_study_loads_with_plain_optuna_and_matches_trials_csv(smoke_run):
    _, run_dir, _ = smoke_run
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(run_dir / "optuna.log")))
    study = optuna.load_study(study_name="gcsearch", storage=storage)
    rows = read_csv(run_dir / "trials.csv")
    assert [int(r["number"]) for r in rows] == [t.number for t in study.trials]
    for row, trial in zip(rows, study.trials, strict=True):
        assert row["state"] == trial.state.name
        if trial.state == TrialState.COMPLETE:
            # Values are (accuracy, MACs): never a partial, mid-training accuracy.
            assert float(row["accuracy"]) == pytest.approx(trial.values[0], abs=1e-6)
            assert int(row["macs"]) == trial.values[1] == trial.user_attrs["macs"]


def test_pruned_trials_are_pruned_in_optuna_with_their_epochs(smoke_run):
    _, run_dir, records = smoke_run
    pruned = [r for r in pareto.trained(records) if r.state == "PRUNED"]
    assert pruned and all("pruned after epoch" in r.reason for r in pruned)
    twin = optuna.load_study(study_name="gcsearch-accuracy", storage=rundir.storage(run_dir))
    # The twin study holds the per-epoch accuracies the pruner acted on, one state per trained trial.
    by_main = {t.user_attrs["main"]: t for t in twin.trials}
    for r in pruned:
        assert by_main[r.number].state == TrialState.PRUNED
        assert len(by_main[r.number].intermediate_values) == r.epochs


def test_pareto_front_holds_only_complete_trials(smoke_run):
    _, run_dir, records = smoke_run
    states = {r.number: r.state for r in records}
    rows = read_csv(run_dir / "pareto.csv")
    assert rows and all(states[int(r["number"])] == "COMPLETE" for r in rows)


def _run_cli(args, cwd, **kwargs):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run([*GCSEARCH, *args], cwd=cwd, env=env, capture_output=True, text=True, **kwargs)


def test_resume_after_driver_sigkill_keeps_every_finished_trial(tmp_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [*GCSEARCH, "run", str(SMOKE), "--name", "killed"], cwd=tmp_path, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    run_dir = tmp_path / "runs" / "killed"
    deadline = time.monotonic() + 180
    before = {}
    try:
        while time.monotonic() < deadline and len(before) < 3:
            time.sleep(0.5)
            if (run_dir / "optuna.log").exists():
                try:
                    before = finished(rundir.load_main_study(run_dir))
                except Exception:  # the journal is being created
                    before = {}
        assert len(before) >= 3, "the search never finished 3 trials"
    finally:
        # The crash: the driver and the local Ray it started, all at once.
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    before = finished(rundir.load_main_study(run_dir))
    # A checkpoint a worker was writing when the power went (experiments/faults.py found them left for ever).
    litter = run_dir / "checkpoints" / ".trial-0001.pt.tmp-deadhost-1"
    litter.write_bytes(b"half a checkpoint")
    out = _run_cli(["run", "--resume", str(run_dir)], cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert not litter.exists()
    after = rundir.load_main_study(run_dir).trials
    by_number = {t.number: t for t in after}
    for number, trial in before.items():
        # Present once, same state, same values, same configuration.
        assert by_number[number].state == trial.state
        assert by_number[number].values == trial.values
        assert by_number[number].user_attrs["arch"] == trial.user_attrs["arch"]
    assert len(by_number) == len(after)
    trained = pareto.trained(rundir.records(rundir.load_main_study(run_dir)))
    assert len(trained) == load_space(SMOKE).search.trials
    assert all(r.state in ("COMPLETE", "PRUNED", "FAIL") for r in trained)


def test_trials_run_on_both_nodes_of_a_two_node_cluster(tmp_path, monkeypatch):
    import ray
    from ray.cluster_utils import Cluster

    from gcsearch.search.tune import run

    token_authentication(monkeypatch)
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    cluster.add_node(num_cpus=1)
    try:
        space = load_space(SMOKE)
        search = dataclasses.replace(space.search, pruner="none", pruner_settings={}, trials=6)
        space = dataclasses.replace(space, search=search)
        records = run(space, tmp_path / "cluster", address=cluster.address)
        study = rundir.load_main_study(tmp_path / "cluster")
        nodes = {t.user_attrs.get("node") for t in study.trials if "twin" in t.user_attrs}
        # Two single-CPU nodes and concurrent trials: both nodes trained some.
        assert len(nodes - {None, ""}) == 2
        assert all(r.state == "COMPLETE" for r in pareto.trained(records))
    finally:
        ray.shutdown()
        cluster.shutdown()


def test_existing_run_name_is_refused_and_resume_needs_a_run(tmp_path):
    (tmp_path / "runs" / "taken").mkdir(parents=True)
    out = _run_cli(["run", str(SMOKE), "--name", "taken"], cwd=tmp_path)
    assert out.returncode == 2 and "continue it with --resume" in out.stderr
    out = _run_cli(["run", "--resume", str(tmp_path / "nope")], cwd=tmp_path)
    assert out.returncode == 2 and "must be an existing run directory" in out.stderr
    assert "Traceback" not in out.stderr


def session_processes(sid: int) -> list[str]:
    """Command lines of the processes still in session ``sid`` (a search started in a session of its own)."""
    out = []
    for entry in pathlib.Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and os.getsid(int(entry.name)) == sid:
                out.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:
            continue
    return out


def outcome(run_dir):
    """Each trained trial's configuration, seed, state and values: what an uninterrupted run must match."""
    return {t.number: (t.user_attrs["label"], t.user_attrs.get("seed"), t.state, t.values)
            for t in rundir.load_main_study(run_dir).trials if rundir.was_trained(t)}  # fmt: skip


@pytest.fixture(scope="module")
def one_at_a_time(tmp_path_factory):
    """smoke.yaml one trial at a time (so each proposal sees the same history with or without a pause), with
    longer trainings (6 epochs, so a Ctrl-C falls inside one), and its uninterrupted run's outcome."""
    folder = tmp_path_factory.mktemp("ctrl-c")
    text = SMOKE.read_text().replace("  seed: 0\n  reference_seeds", "  seed: 0\n  concurrency: 1\n  reference_seeds")
    space = folder / "smoke1.yaml"
    space.write_text(text.replace("trials: 8", "trials: 6").replace("epochs: 3", "epochs: 6"))
    began = time.monotonic()
    full = _run_cli(["run", str(space), "--name", "full"], cwd=folder, timeout=300)
    assert full.returncode == 0, full.stderr[-2000:]
    # The summary's wall time is this command's, and the trials' CPU-seconds are counted.
    h, m, s = map(int, re.search(r"^wall (\d+):(\d\d):(\d\d); CPU ([\d,]+) s", full.stdout, re.M).groups()[:3])
    assert 0 < 3600 * h + 60 * m + s <= time.monotonic() - began + 1
    return space, outcome(folder / "runs" / "full")


@pytest.mark.parametrize("presses", [1, 2])
def test_ctrl_c_pauses_a_search_and_resume_gives_the_uninterrupted_result(tmp_path, one_at_a_time, presses):
    space, uninterrupted = one_at_a_time
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([*GCSEARCH, "run", str(space), "--name", "paused"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # fmt: skip
    run_dir = tmp_path / "runs" / "paused"
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline:  # mid-training: 2 trials finished, a third has a finished epoch
            time.sleep(0.2)
            try:
                study = rundir.load_main_study(run_dir)
            except Exception:  # the journal is being created
                continue
            running = [t for t in study.trials if t.state == TrialState.RUNNING and t.user_attrs.get("epochs")]
            if len(finished(study)) >= 2 and running:
                break
        # What a terminal's Ctrl-C does: SIGINT to the whole foreground process group, Ray's processes included;
        # a second press stops at once.
        for _ in range(presses):
            os.killpg(proc.pid, signal.SIGINT)
            time.sleep(0.3)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, err[-2000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith("gcsearch: interrupted:") and f"gcsearch run --resume {run_dir.resolve()}" in last
    # Ray's processes leave with the driver (within seconds: they notice the raylet is gone).
    deadline = time.monotonic() + 15
    while session_processes(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not session_processes(proc.pid), f"outlived the search: {session_processes(proc.pid)}"
    paused = outcome(run_dir)
    # Nothing was told for the pause: the trial cut short stays RUNNING, none is PRUNED or FAILED for it.
    assert any(state == TrialState.RUNNING for _, _, state, _ in paused.values()), paused
    assert len(paused) < 6
    for number, (label, seed, state, values) in paused.items():
        if state != TrialState.RUNNING:
            assert uninterrupted[number] == (label, seed, state, values)
    if presses == 2:
        return  # what a resume then does is the one-press case's
    resumed = _run_cli(["run", "--resume", str(run_dir)], cwd=tmp_path, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    # The same trials, configurations, states and accuracies as the run nobody interrupted.
    assert outcome(run_dir) == uninterrupted
