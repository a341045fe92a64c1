"""Does a local Ray start-up ever hang? Back-to-back searches, kills and resumes, counted.

The hang seen once in experiments/results/reliability.md: a resume's local ``ray.init()`` did not return.
A cause found and reproduced: with no address, ``ray.init()`` joins the cluster named in
``<tmp>/ray/ray_current_cluster`` (the address of the last ``ray start``, e.g. the two-node scenario of
reliability.py), and when that cluster is gone it retries for minutes. gcsearch now passes
``address="local"``. Whether the hang seen once had this cause is not proven; the cycles below look for
any hang.

Part 1, the cause, in isolation: ``ray.init()`` against ``ray.init(address="local")`` with a stale
``ray_current_cluster`` (a dead address) in a fresh RAY_TMPDIR, a 60 s limit each.

Part 2, the cycles: ``--cycles`` real searches of search_spaces/smoke.yaml, one after the other, each
one of: a new search right after the previous one's Ray shut down; a search SIGKILLed (with its Ray)
at a random point and then resumed; a new search with a stale ``ray_current_cluster`` present. A search
that does not finish within 180 s counts as a hang.

    python experiments/startup.py [--cycles 30]

Writes experiments/results/startup.md.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SMOKE = ROOT / "search_spaces" / "smoke.yaml"
GCSEARCH = [sys.executable, "-m", "gcsearch"]
LIMIT = 180
DEAD = "127.0.0.1:9"  # the discard port: nothing of Ray's listens there


MADE: list[str] = []


def stale_tmpdir() -> str:
    """A short RAY_TMPDIR (Ray's socket paths must stay under ~107 characters) naming a dead cluster."""
    tmp = tempfile.mkdtemp(prefix="gcs", dir="/tmp")
    MADE.append(tmp)
    os.makedirs(f"{tmp}/ray")
    Path(f"{tmp}/ray/ray_current_cluster").write_text(DEAD)
    return tmp


def init_alone(address: str | None) -> tuple[bool, float]:
    """(hung, seconds) of one ray.init(address) + shutdown against a stale ray_current_cluster."""
    code = f"import ray; ray.init(address={address!r}, include_dashboard=False); ray.shutdown()"
    env = {**os.environ, "RAY_TMPDIR": stale_tmpdir(), "RAY_USAGE_STATS_ENABLED": "0"}
    start = time.perf_counter()
    try:
        subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, timeout=60, check=False)
        return False, time.perf_counter() - start
    except subprocess.TimeoutExpired:
        return True, time.perf_counter() - start


def search(cwd: Path, args: list[str], env: dict[str, str], kill_after: float | None = None) -> tuple[str, float]:
    """('ok' | 'failed' | 'hung' | 'killed', seconds) of one `gcsearch` command."""
    start = time.perf_counter()
    proc = subprocess.Popen([*GCSEARCH, *args], cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    try:
        proc.wait(timeout=kill_after if kill_after is not None else LIMIT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return ("killed" if kill_after is not None else "hung"), time.perf_counter() - start
    return ("ok" if proc.returncode == 0 else "failed"), time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cycles", type=int, default=30)
    parser.add_argument("--tries", type=int, default=3, help="part 1: ray.init calls per variant")
    args = parser.parse_args()
    rng = random.Random(0)
    lines = ["# Local Ray start-up: hangs in back-to-back searches, kills and resumes", "",
             f"Command: `python {' '.join(sys.argv)}`", "",
             "## Part 1: the cause, ray.init alone against a stale ray_current_cluster (60 s limit)", "",
             "| call | tries | hung | seconds each |", "|---|---|---|---|"]  # fmt: skip
    for address in (None, "local"):
        runs = [init_alone(address) for _ in range(args.tries)]
        hung = sum(h for h, _ in runs)
        lines.append(f"| `ray.init(address={address!r})` | {len(runs)} | {hung} | "
                     f"{', '.join(f'{s:.0f}' for _, s in runs)} |")  # fmt: skip
        print(lines[-1], flush=True)
    kinds = ["after previous", "killed, then resumed", "stale ray_current_cluster"]
    outcomes: dict[str, list[tuple[str, float]]] = {k: [] for k in kinds}
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        for cycle in range(args.cycles):
            kind = kinds[cycle % 3]
            env = {**os.environ}
            name = f"c{cycle}"
            if kind == "stale ray_current_cluster":
                env["RAY_TMPDIR"] = stale_tmpdir()
            if kind == "killed, then resumed":
                search(cwd, ["run", str(SMOKE), "--name", name], env, kill_after=rng.uniform(4, 12))
                result = search(cwd, ["run", "--resume", str(cwd / "runs" / name)], env)
            else:
                result = search(cwd, ["run", str(SMOKE), "--name", name], env)
            outcomes[kind].append(result)
            print(f"cycle {cycle}: {kind}: {result[0]} in {result[1]:.0f} s", flush=True)
    lines += ["", f"## Part 2: {args.cycles} searches of smoke.yaml, one after the other ({LIMIT} s = hung)", "",
              "| cycle kind | searches | finished | hung | failed | seconds, median [max] |",
              "|---|---|---|---|---|---|"]  # fmt: skip
    for kind, results in outcomes.items():
        secs = [s for _, s in results]
        count = {o: sum(r == o for r, _ in results) for o in ("ok", "hung", "failed")}
        lines.append(f"| {kind} | {len(results)} | {count['ok']} | {count['hung']} | {count['failed']} | "
                     f"{statistics.median(secs):.0f} [{max(secs):.0f}] |")  # fmt: skip
    total_hung = sum(r == "hung" for results in outcomes.values() for r, _ in results)
    lines += ["", f"Hangs: {total_hung} in {args.cycles} searches."]
    for tmp in MADE:
        shutil.rmtree(tmp, ignore_errors=True)
    out = ROOT / "experiments" / "results" / "startup.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
