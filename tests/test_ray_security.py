"""A local search's Ray accepts no work from outside: token authentication stays on, with a token of its
own that is never written to $HOME. Real Ray, in a fresh interpreter per case so no earlier test's Ray
settings leak in."""

import os
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow

# The search's own driver: start Ray as `gcsearch run` does, run a task, then let a stranger (no token,
# another $HOME) try to join the GCS and run code; print what happened.
DRIVER = textwrap.dedent(
    """
    import os, subprocess, sys
    from gcsearch.search.cluster import start_ray
    import ray

    assert start_ray(None, sys.stdout)
    print("TASK", ray.get(ray.remote(lambda: os.environ.get("RAY_AUTH_MODE")).remote()))
    gcs = ray.get_runtime_context().gcs_address
    code = (f"import ray, logging; ray.init(address={gcs!r}, logging_level=logging.ERROR); "
            "print('STRANGER RAN', ray.get(ray.remote(lambda: 1).remote()))")
    for mode in sys.argv[2:]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
        env.update(HOME=sys.argv[1], RAY_AUTH_MODE=mode)
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
        print("STRANGER", mode, out.returncode, "STRANGER RAN" in out.stdout)
    ray.shutdown()
    """
)


def drive(tmp_path, stranger_modes, **env_changes):
    home, stranger = tmp_path / "home", tmp_path / "stranger"
    home.mkdir()
    stranger.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(HOME=str(home), **env_changes)
    out = subprocess.run([sys.executable, "-c", DRIVER, str(stranger), *stranger_modes], env=env, cwd=ROOT,
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout, home


def test_a_local_ray_refuses_a_stranger_and_writes_nothing_to_home(tmp_path):
    stdout, home = drive(tmp_path, ["disabled", "token"])
    assert "TASK token" in stdout  # the search's own workers run with authentication
    # Joining without the token fails, whatever mode the stranger claims.
    assert "STRANGER disabled 1 False" in stdout and "STRANGER token 1 False" in stdout
    assert list(home.iterdir()) == []  # the token lived in the environment only


def test_a_user_who_disables_authentication_is_warned_and_obeyed(tmp_path):
    stdout, _ = drive(tmp_path, ["disabled"], RAY_AUTH_MODE="disabled")
    assert "warning: RAY_AUTH_MODE=disabled" in stdout
    assert "STRANGER disabled 0 True" in stdout  # what the warning says: anyone who reaches the port runs code


# A token-authenticated Ray (the local one a search starts), and `gcsearch run --address` from a shell that does
# not hold its token: the user's mistake gets one line and exit 2, not 20 s of native warnings and a traceback.
JOINER = textwrap.dedent(
    """
    import os, subprocess, sys
    from gcsearch.search.cluster import start_ray
    import ray

    assert start_ray(None, sys.stdout)
    gcs = ray.get_runtime_context().gcs_address
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    out = subprocess.run([sys.executable, "-m", "gcsearch", "run", sys.argv[1], "--address", gcs, "--name", "t"],
                         env=env, capture_output=True, text=True, timeout=200, cwd=sys.argv[2])
    print("RC", out.returncode)
    print("ERR", repr(out.stderr.strip()))
    ray.shutdown()
    """
)


def test_joining_a_cluster_without_its_token_is_one_line_and_exit_2(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    out = subprocess.run([sys.executable, "-c", JOINER, str(ROOT / "search_spaces" / "smoke.yaml"), str(tmp_path)],
                         env=env, cwd=ROOT, capture_output=True, text=True, timeout=400)  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    err = next(line for line in out.stdout.splitlines() if line.startswith("ERR "))
    assert "RC 2" in out.stdout and "`--address`" in err and "RAY_AUTH_TOKEN" in err
    assert "\\n" not in err  # one line: Ray's native retry warnings were held back
    assert not (tmp_path / "runs" / "t").exists()  # and the refused run left no directory behind
