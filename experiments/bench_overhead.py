"""Trial overhead of a search: the fraction of its wall time not spent inside training epochs.

Runs a whole search (the default space unless told otherwise) in a temporary run directory, then
splits the worker slots' time (wall x parallel slots) into: epochs (training + validation, as each trial
timed them), per-trial setup (imports, data load, model build: first report minus first epoch), Ray
start, and the rest (actor start, scheduling, reporting, idle slots at the end). Also reports what
`gcsearch run` users see: wall time, trials run / pruned, and the trial-epochs pruning saved.

    python experiments/bench_overhead.py [--space search_spaces/gc-fashion.yaml] [--trials N]

Writes experiments/results/bench_overhead.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import math
import platform
import sys
import tempfile
import time
from pathlib import Path

from gcsearch.search import rundir
from gcsearch.search.cluster import start_ray
from gcsearch.search.tune import run
from gcsearch.spacefile import load_space


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--space", default="search_spaces/gc-fashion.yaml")
    parser.add_argument("--trials", type=int, help="override search.trials")
    args = parser.parse_args()
    space = load_space(args.space)
    if args.trials:
        space = dataclasses.replace(space, search=dataclasses.replace(space.search, trials=args.trials))

    import ray

    t0 = time.perf_counter()
    start_ray(None, io.StringIO())
    ray_start = time.perf_counter() - t0
    slots = space.search.concurrency or max(1, math.floor(ray.cluster_resources()["CPU"] / space.search.cpu))
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "bench"
        run(space, run_dir, stream=sys.stderr)
        wall = time.perf_counter() - t0
        study = rundir.load_main_study(run_dir)
        trials = [t for t in study.get_trials() if rundir.was_trained(t)]
    ray.shutdown()

    epochs_s = sum(t.user_attrs.get("seconds", 0.0) for t in trials)
    setup_s = sum(t.user_attrs.get("setup_seconds", 0.0) for t in trials)
    capacity = wall * slots
    states = [t.state.name for t in trials]
    epochs_run = sum(t.user_attrs.get("epochs", 0) for t in trials)
    epochs_full = len(trials) * space.train.epochs
    share = {
        "inside epochs (training + validation)": epochs_s / capacity,
        "per-trial setup (imports, data load, model build)": setup_s / capacity,
        "Ray start": ray_start * slots / capacity,
    }
    share["the rest (actor start, scheduling, reporting, idle slots)"] = 1 - sum(share.values())
    overhead = 1 - share["inside epochs (training + validation)"]
    lines = [
        "# Search overhead",
        "",
        f"Command: `python {' '.join(sys.argv)}`",
        f"Machine: {platform.machine()}, {slots} parallel trial slots of {space.search.cpu:g} CPU",
        f"Space: {space.path}, {space.search.trials} trials, sampler {space.search.sampler}, "
        f"pruner {space.search.pruner}",
        "",
        f"Wall time: {wall:.0f} s ({wall / 60:.1f} min); trials: {states.count('COMPLETE')} complete, "
        f"{states.count('PRUNED')} pruned, {states.count('FAIL')} failed",
        f"Trial-epochs: {epochs_run} of {epochs_full} if every trial ran to the end: pruning saved "
        f"{1 - epochs_run / epochs_full:.0%}",
        "",
        "| share of wall time x slots | fraction |",
        "|---|---|",
        *[f"| {name} | {value:.1%} |" for name, value in share.items()],
        "",
        f"**Overhead (not inside epochs): {overhead:.1%}** (target < 15%)",
    ]
    out = Path(__file__).parent / "results" / "bench_overhead.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
