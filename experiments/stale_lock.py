"""What a stale journal lock costs the next writer, with and without clearing it under the run lock.

A SIGKILL while Optuna appends to a run's journal leaves its lock (``optuna.log.lock``) behind. The next
writer waits for Optuna's grace period before forcing it; `gcsearch run --resume` holds the run lock
(proof that no one else writes) and clears it at once (``rundir.clear_stale_journal_lock``). Times one
``ask()`` on a real journal after leaving such a lock, both ways, in the same run.

    python experiments/stale_lock.py [--repeats 3]

Writes experiments/results/stale_lock.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import optuna

from gcsearch import rundir

ROOT = Path(__file__).resolve().parent.parent


def first_write_seconds(clear: bool) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp)
        optuna.create_study(study_name="s", storage=rundir.storage(run_dir))
        os.symlink(str(run_dir / "optuna.log"), run_dir / "optuna.log.lock")  # what the kill leaves
        with rundir.RunLock(run_dir):
            if clear:
                rundir.clear_stale_journal_lock(run_dir)
            start = time.perf_counter()
            optuna.load_study(study_name="s", storage=rundir.storage(run_dir)).ask()
            return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    before = [first_write_seconds(clear=False) for _ in range(args.repeats)]
    after = [first_write_seconds(clear=True) for _ in range(args.repeats)]
    b, a = statistics.median(before), statistics.median(after)
    text = "\n".join([
        "# A stale journal lock after a SIGKILL: the next writer's wait",
        "",
        f"Command: `python {' '.join(sys.argv)}`; optuna {optuna.__version__}",
        "",
        "| the stale lock | first ask() on the journal, seconds (median of "
        f"{args.repeats}) | each |",
        "|---|---|---|",
        f"| before: left for Optuna to force | {b:.2f} | {', '.join(f'{x:.2f}' for x in before)} |",
        f"| now: cleared under the run lock | {a:.3f} | {', '.join(f'{x:.3f}' for x in after)} |",
        "",
        f"Ratio now / before: {a / b:.1e}",
    ])  # fmt: skip
    out = ROOT / "experiments" / "results" / "stale_lock.md"
    out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
