"""What a default local search starts: a fresh local Ray, whatever a past `ray start` left behind, with no
dashboard and no web frontend."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gcsearch.testing import descendants

ROOT = Path(__file__).resolve().parent.parent
SMOKE = ROOT / "search_spaces" / "smoke.yaml"

pytestmark = pytest.mark.slow


def listening_ports() -> set[int]:
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(table):
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A":  # LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def dashboards(root: int) -> list[str]:
    """Command lines of Ray dashboard processes below process ``root``."""
    return [c for c in descendants(root).values() if "dashboard/dashboard.py" in c]


def test_a_default_search_serves_no_dashboard(tmp_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "gcsearch", "run", str(SMOKE), "--name", "d"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)  # fmt: skip
    try:
        seen: list[str] = []
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and not (tmp_path / "runs" / "d" / "checkpoints").exists():
            time.sleep(0.5)
        time.sleep(3)  # Ray is up and trials are running
        seen = dashboards(proc.pid)
        ports = listening_ports()
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    # Nothing serves the dashboard's port; Ray's head keeps a minimal API server with no web frontend.
    assert 8265 not in ports
    assert all("--minimal" in c and "--disable-frontend" in c for c in seen)


def test_a_stale_ray_current_cluster_does_not_hang_a_local_search(tmp_path):
    # `ray start` writes <tmp>/ray/ray_current_cluster; with no address, ray.init() joins that cluster,
    # and retries for minutes once it is gone. A local search must start its own Ray regardless.
    import shutil
    import tempfile

    ray_tmp = tempfile.mkdtemp(prefix="gcs", dir="/tmp")  # short: Ray's socket paths have a length limit
    try:
        os.makedirs(f"{ray_tmp}/ray")
        Path(f"{ray_tmp}/ray/ray_current_cluster").write_text("127.0.0.1:9")  # nothing listens there
        env = {**os.environ, "RAY_TMPDIR": ray_tmp}
        env.pop("RAY_ADDRESS", None)
        cmd = [sys.executable, "-m", "gcsearch", "run", str(SMOKE), "--name", "stale", "--trials", "2"]
        out = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
        assert out.returncode == 0, out.stderr[-2000:]
        assert (tmp_path / "runs" / "stale" / "trials.csv").is_file()
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
