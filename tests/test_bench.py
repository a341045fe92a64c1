"""`gcsearch bench record` through real Ray: a recording killed midway ends with every pair once."""

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from gcsearch import ArchConfig
from gcsearch.bench import curves, outcomes, record
from gcsearch.search import rundir
from gcsearch.spacefile import load_space

ROOT = Path(__file__).resolve().parent.parent
SMOKE = ROOT / "search_spaces" / "smoke.yaml"
GCSEARCH = [sys.executable, "-m", "gcsearch"]


def test_plan_holds_the_references_and_every_seed_of_each_configuration():
    space = load_space(SMOKE)
    pairs = record.plan(space, seeds=2, sample=3)
    archs = list(dict.fromkeys(a for a, _ in pairs))
    assert archs[:2] == [ArchConfig(), space.reference()]
    # Configuration-major: a partial recording holds whole configurations.
    assert pairs == [(a, s) for a in archs for s in (0, 1)]
    assert len(record.plan(space, seeds=1, sample=None)) == len(space.grid())


def test_plan_gives_the_references_their_own_depth():
    space = load_space(SMOKE)
    pairs = record.plan(space, seeds=2, sample=4, reference_seeds=5)
    seeds = {a: [s for b, s in pairs if b == a] for a in dict.fromkeys(a for a, _ in pairs)}
    # The control (baseline, paper default) deep, every other configuration wide and shallow.
    assert seeds.pop(ArchConfig()) == seeds.pop(space.reference()) == [0, 1, 2, 3, 4]
    assert len(seeds) == 2 and all(s == [0, 1] for s in seeds.values())


def finished_pairs(run_dir):
    study = rundir.load_main_study(run_dir)
    return {t.number: (t.user_attrs["label"], t.user_attrs["seed"], t.values) for t in study.trials
            if t.state.name == "COMPLETE"}  # fmt: skip


@pytest.mark.slow
def test_a_recording_killed_midway_resumes_without_retraining_finished_pairs(tmp_path):
    args = ["bench", "record", str(SMOKE), "--seeds", "2", "--configs", "3", "--name", "rec"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([*GCSEARCH, *args], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    run_dir = tmp_path / "runs" / "rec"
    before: dict = {}
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline and len(before) < 2:
            time.sleep(0.5)
            try:
                before = finished_pairs(run_dir)
            except Exception:  # the journal is being created
                before = {}
        assert len(before) >= 2, "the recording never finished 2 trainings"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and the local Ray it started
        proc.wait()
    before = finished_pairs(run_dir)
    assert len(before) < 6, "the recording finished before it could be killed"
    out = subprocess.run([*GCSEARCH, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    after = finished_pairs(run_dir)
    # Pairs finished before the kill keep their trial and values: not retrained.
    for number, pair in before.items():
        assert after[number] == pair
    # Every (configuration, seed) exactly once, and no extra trainings.
    study = rundir.load_main_study(run_dir)
    trained = [t for t in study.trials if rundir.was_trained(t)]
    assert len(trained) == 6
    assert Counter((label, seed) for label, seed, _ in after.values()) == Counter(
        {(a.label(), s): 1 for a, s in record.plan(load_space(SMOKE), 2, 3)}
    )
    points = curves.read(run_dir / "curves.csv")
    c = curves.Curves.of(points)
    # Each pair's curve has every epoch, the final one equal to the trial's told accuracy.
    assert len(c.runs) == 6 and c.epochs == load_space(SMOKE).train.epochs
    told = {(label, seed): values[0] for label, seed, values in after.values()}
    assert all(c.final(a, s) == pytest.approx(told[(a.label(), s)], abs=1e-6) for a, s in c.runs)
    # Per-image outcomes: the predictions of the weights that were scored, so they give the same accuracy.
    seen = outcomes.read(outcomes.path_for(run_dir / "curves.csv"))
    assert set(seen.predicted) == set(c.runs)
    assert all(seen.correct(a, s).mean() == pytest.approx(c.final(a, s), abs=1e-6) for a, s in c.runs)
    # Where the trainings ran: one environment here, with the threads and the code it ran.
    env = json.loads((run_dir / "curves.env.json").read_text())["environments"]
    assert len(env) == 1 and env[0]["trainings"] == 6 and env[0]["threads"] >= 1 and env[0]["code"]
