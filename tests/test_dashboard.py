"""`gcsearch dashboard`: optuna-dashboard on a run, checked through the API its web page reads."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from gcsearch.epoch import Epoch, Outcome
from gcsearch.search import rundir
from gcsearch.search.decider import Decider
from gcsearch.spacefile import load_space
from tests.conftest import ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


def test_dashboard_serves_named_objectives_and_learning_curves(tmp_path):
    space = load_space(ROOT / "search_spaces" / "smoke.yaml")
    rundir.save_space(tmp_path, space)
    d = Decider(space, rundir.storage(tmp_path), new_trials=2, coster=lambda arch: (1000, 10))
    for _ in range(2):
        p = d.propose()
        for e in range(space.train.epochs):
            d.report(p.number, Epoch(e, 0.5 + 0.1 * e, loss=1.0, train_loss=1.0, seconds=e + 1.0))
        d.finish(p.number, Outcome.ENDED)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "gcsearch", "dashboard", str(tmp_path), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        studies = None
        while studies is None and time.monotonic() < deadline:
            try:
                studies = get(f"{base}/api/studies")["study_summaries"]
            except OSError:
                time.sleep(0.3)
        assert studies is not None, "the dashboard never answered"
        ids = {s["study_name"]: s["study_id"] for s in studies}
        main = get(f"{base}/api/studies/{ids[rundir.MAIN_STUDY]}")
        twin = get(f"{base}/api/studies/{ids[rundir.TWIN_STUDY]}")
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
    # The objectives carry their names (not "0" and "1"); the learning curves are in the twin study.
    assert main["objective_names"] == ["accuracy", "macs"] and len(main["trials"]) == 2
    assert twin["has_intermediate_values"]
    curve = twin["trials"][0]["intermediate_values"]
    assert [v["step"] for v in curve] == [1, 2, 3]
    assert [float(v["value"]) for v in curve] == pytest.approx([0.5, 0.6, 0.7])
    assert f"http://127.0.0.1:{port}/" in out
