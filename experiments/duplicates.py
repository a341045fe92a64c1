"""How many of a real search's proposals go to configurations already trained? Before and after.

Runs `gcsearch run search_spaces/gc.yaml` (real Ray, real training) and counts, in its trials.csv, the
proposals answered as duplicates ("same configuration as trial N"), against the same count in the
default search published before the decider existed (experiments/results/gc-default/trials.csv: the
baseline was a sampled category there, and copies were told COMPLETE).

    python experiments/duplicates.py [--name duplicates-after] [--reuse]

Writes experiments/results/duplicates.md.
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BEFORE = ROOT / "experiments" / "results" / "gc-default" / "trials.csv"


def count(path: Path) -> tuple[int, int, int]:
    """(proposals, duplicates, duplicates of the baseline) in a trials.csv."""
    rows = list(csv.DictReader(path.open()))
    dups = [r for r in rows if "same configuration" in r["reason"]]
    skipped = [r for r in rows if "over the budget" in r["reason"]]
    return len(rows) - len(skipped), len(dups), sum(r["stages"] == "none" for r in dups)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--name", default="duplicates-after")
    parser.add_argument("--reuse", action="store_true", help="count an existing run of that name")
    args = parser.parse_args()
    run_dir = ROOT / "runs" / args.name
    wall = 0.0
    if not (args.reuse and run_dir.exists()):
        start = time.perf_counter()
        cmd = [sys.executable, "-m", "gcsearch", "run", "search_spaces/gc.yaml", "--name", args.name]
        subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - start
    before, after = count(BEFORE), count(run_dir / "trials.csv")
    share = [d / p if p else 0.0 for p, d, _ in (before, after)]
    lines = [
        "# Duplicate proposals in a real default search",
        "",
        f"Command: `python {' '.join(sys.argv)}`" + (f" ({wall:.0f} s)" if wall else ""),
        "",
        "| search | proposals | duplicates | of them the baseline | duplicate share |",
        "|---|---|---|---|---|",
        f"| before: experiments/results/gc-default (baseline sampled, copies told COMPLETE) | {before[0]} | "
        f"{before[1]} | {before[2]} | {share[0]:.0%} |",
        f"| after: runs/{args.name} (reference trials, copies FAIL + replaced) | {after[0]} | {after[1]} | "
        f"{after[2]} | {share[1]:.0%} |",
        "",
        f"Ratio after / before of the duplicate share: {share[1] / share[0]:.2f}" if share[0] else "",
    ]
    out = ROOT / "experiments" / "results" / "duplicates.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
