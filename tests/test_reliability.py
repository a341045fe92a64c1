"""Faults a long search meets: dead workers, diverging trials, a second process, a cut journal.
Real Ray, real processes, real signals."""

import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time

import pytest
import yaml

from gcsearch import pareto
from gcsearch.search import rundir
from gcsearch.spacefile import load_space
from gcsearch.testing import descendants
from tests.conftest import token_authentication

ROOT = pathlib.Path(__file__).resolve().parent.parent
SMOKE = ROOT / "search_spaces" / "smoke.yaml"
GCSEARCH = [sys.executable, "-m", "gcsearch"]

pytestmark = pytest.mark.slow


def cli(args, cwd, **kwargs):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run([*GCSEARCH, *args], cwd=cwd, env=env, capture_output=True, text=True, **kwargs)


def space_file(tmp_path, **changes):
    """smoke.yaml with some sections changed, e.g. train={"lr": 1e12}."""
    data = yaml.safe_load(SMOKE.read_text())
    for section, values in changes.items():
        data[section] = {**data.get(section, {}), **values}
    if data["search"].get("pruner") == "none":
        data["search"].pop("pruner_settings", None)
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def snapshot(run_dir):
    return {t.number: (t.state, t.values, t.user_attrs.get("arch")) for t in rundir.load_main_study(run_dir).trials}


def test_diverging_trials_fail_with_their_reason_and_the_search_goes_on(tmp_path):
    space = space_file(tmp_path, train={"lr": 1e12, "schedule": "constant"}, search={"trials": 3, "pruner": "none"})
    out = cli(["run", str(space), "--name", "nan"], cwd=tmp_path, timeout=300)
    # A search whose every trial failed produced nothing usable: one line naming the first reason, exit 1.
    assert out.returncode == 1, out.stderr[-2000:]
    assert "every trial failed (3)" in out.stderr and "training loss became nan" in out.stderr
    assert "Traceback" not in out.stderr
    rows = (tmp_path / "runs" / "nan" / "trials.csv").read_text().splitlines()[1:]
    trained = [r for r in rows if "same configuration" not in r]
    # Every trained trial failed, told to Optuna as FAIL (not retried: it would diverge again), with why.
    assert len(trained) == 3 and all(",FAIL," in r and "training loss became" in r for r in trained)


def test_a_second_search_on_the_same_run_directory_is_refused(tmp_path):
    run_dir = tmp_path / "runs" / "busy"
    run_dir.mkdir(parents=True)
    load = load_space(SMOKE)
    rundir.save_space(run_dir, load)
    (run_dir / "optuna.log").touch()
    with rundir.RunLock(run_dir):
        before = {p.name: p.stat().st_mtime_ns for p in run_dir.iterdir()}
        out = cli(["run", "--resume", str(run_dir)], cwd=tmp_path, timeout=60)
        after = {p.name: p.stat().st_mtime_ns for p in run_dir.iterdir()}
    assert out.returncode == 2
    assert f"is in use by gcsearch pid {os.getpid()}" in out.stderr and "Traceback" not in out.stderr
    # Nothing was written by the refused process.
    assert after == before


def test_a_journal_cut_mid_record_resumes_without_losing_finished_trials(tmp_path):
    out = cli(["run", str(SMOKE), "--name", "cut"], cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    run_dir = tmp_path / "runs" / "cut"
    full = snapshot(run_dir)
    log = run_dir / "optuna.log"
    data = log.read_bytes()
    log.write_bytes(data[:-7])  # a kill in the middle of the last write
    cut = snapshot(run_dir)  # Optuna skips the half-written record when reading
    out = cli(["run", "--resume", str(run_dir)], cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    # The whole half-written line goes (its 7 missing bytes made the rest unreadable JSON).
    assert "optuna.log ended in a half-written record (" in out.stdout
    after = snapshot(run_dir)
    for number, (state, values, arch) in cut.items():
        if state.name in ("COMPLETE", "PRUNED", "FAIL"):
            assert after[number] == (state, values, arch)
    # The trial whose final record was cut was rerun from its checkpoint to the same result.
    for number, (state, values, arch) in full.items():
        assert after[number][0] == state and after[number][1] == values and after[number][2] == arch
    assert len(after) == len(full)


def _trial_workers(root: int) -> list[int]:
    """PIDs of Ray workers running a gcsearch trial (Ray sets their process title) below process ``root``."""
    return [
        pid for pid, title in descendants(root).items()
        if title.startswith("ray::") and ("ImplicitFunc" in title or "gcsearch_trial" in title)
    ]  # fmt: skip


@pytest.mark.parametrize("retries", [1, 0])
def test_a_killed_worker_is_retried_from_its_checkpoint_then_failed(tmp_path, retries):
    # Slower trials (more epochs, more images) leave time to kill one mid-training.
    space = space_file(
        tmp_path,
        data={"synthetic_size": 2048, "val_size": 256},
        train={"epochs": 6},
        search={"trials": 3, "pruner": "none", "retries": retries},
    )
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([*GCSEARCH, "run", str(space), "--name", "kill"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    ckpts = tmp_path / "runs" / "kill" / "checkpoints"
    deadline = time.monotonic() + 300  # generous: CI machines are slow and shared
    killed = []
    while time.monotonic() < deadline and not killed and proc.poll() is None:
        time.sleep(0.1)
        workers = _trial_workers(proc.pid)
        # Every running trial has saved an epoch: whichever worker dies, its trial has a checkpoint.
        if workers and ckpts.exists() and len(list(ckpts.glob("trial-*.pt"))) >= len(workers):
            for pid in workers:
                os.kill(pid, signal.SIGKILL)
            killed = workers
    assert killed, "no trial worker with a checkpoint to kill"
    output, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, output[-3000:]
    assert "Traceback" not in output  # the campaign's "SIGKILL the trial worker": one line instead
    said = "(failure 1, retried from its last checkpoint): " if retries else "(failed): "
    assert sum(f"trial {n} {said}" in output for n in range(3)) == len(killed)
    study = rundir.load_main_study(tmp_path / "runs" / "kill")
    trained = [t for t in study.trials if "twin" in t.user_attrs]
    assert len(trained) == 3
    states = [t.state.name for t in trained]
    if retries:
        # Retried once, continuing from the checkpoint (not from epoch 0); the search completed.
        assert states == ["COMPLETE"] * 3
        assert any(t.user_attrs.get("resumed_at_epochs") for t in trained)
    else:
        # No retries: each killed trial is FAIL with a reason; the search goes on and the rest complete.
        assert states.count("FAIL") == len(killed) and states.count("COMPLETE") == 3 - len(killed)
        failed = next(t for t in trained if t.state.name == "FAIL")
        assert "raised an error" in failed.user_attrs["reason"]


def test_local_search_writes_nothing_outside_its_run_directory(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(SMOKE, work / "smoke.yaml")
    env = {**os.environ, "HOME": str(home), "PYTHONUNBUFFERED": "1"}
    out = subprocess.run([*GCSEARCH, "run", "smoke.yaml", "--name", "s", "--trials", "2"], cwd=work, env=env,
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    # Nothing in $HOME (no ~/ray_results), nothing in the working directory but the run.
    assert list(home.iterdir()) == []
    assert sorted(p.name for p in work.iterdir()) == ["runs", "smoke.yaml"]


def test_a_removed_worker_node_reschedules_its_trials(tmp_path, monkeypatch):
    import threading

    import ray
    from ray.cluster_utils import Cluster

    from gcsearch.search.tune import run

    token_authentication(monkeypatch)
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    worker = cluster.add_node(num_cpus=1)
    space = load_space(space_file(tmp_path, data={"synthetic_size": 2048}, train={"epochs": 6},
                                  search={"trials": 4, "pruner": "none", "retries": 2}))  # fmt: skip
    removed = threading.Event()

    def remove_when_busy():
        ckpts = tmp_path / "runs" / "node" / "checkpoints"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (ckpts.exists() and len(list(ckpts.glob("*.pt"))) >= 2):
            time.sleep(0.2)
        cluster.remove_node(worker)  # mid-search: both nodes are training
        removed.set()

    remover = threading.Thread(target=remove_when_busy)
    remover.start()
    try:
        records = run(space, tmp_path / "runs" / "node", address=cluster.address)
    finally:
        remover.join()
        ray.shutdown()
        cluster.shutdown()
    assert removed.is_set()
    trained = pareto.trained(records)
    # The lost node's trial was rescheduled on the head node and the search completed.
    assert len(trained) == 4 and all(r.state == "COMPLETE" for r in trained)
