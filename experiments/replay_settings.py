"""Which pruner settings and sampler should gc.yaml ship? Replayed on the recorded curves, no training.

Replays the default strategy (tpe + pareto) under each (min_epochs, reduction_factor), and random
search without pruning as the baseline, all on the same replay seeds (each replay seed reads the same
recorded seed in every variant, so variants are paired). Reports per variant the medians of
`gcsearch bench replay` and sign tests against the shipped settings and against random + none.

    python experiments/replay_settings.py [--seeds 20] [--jobs 2]

Writes experiments/results/replay-settings.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from pathlib import Path

from gcsearch import curves, replay
from gcsearch.spacefile import load_space

ROOT = Path(__file__).resolve().parent.parent
CURVES = ROOT / "experiments" / "data" / "curves-gc.csv"
VARIANTS = [(1, 2), (1, 3), (2, 2), (2, 3), (2, 4), (3, 2)]  # (min_epochs, reduction_factor)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    space = load_space(ROOT / "search_spaces" / "gc.yaml")
    c = curves.Curves.of(curves.read(CURVES))
    full = len(c.archs) * c.epochs
    shipped = (int(space.search.pruner_settings["min_epochs"]), int(space.search.pruner_settings["reduction_factor"]))
    start = time.perf_counter()
    traces: dict[str, list[replay.Trace]] = {}
    base = replay.replay_many(c, space, ["random+none"], args.seeds, 2, full, args.jobs)
    for min_epochs, rf in VARIANTS:
        search = dataclasses.replace(space.search, pruner_settings={"min_epochs": min_epochs, "reduction_factor": rf})
        variant = dataclasses.replace(space, search=search)
        name = f"tpe+pareto min_epochs {min_epochs} rf {rf}" + (" (shipped)" if (min_epochs, rf) == shipped else "")
        traces[name] = replay.replay_many(c, variant, ["tpe+pareto"], args.seeds, 2, full, args.jobs)["tpe+pareto"]
    traces["random+none"] = base["random+none"]
    wall = time.perf_counter() - start
    ref = next(ts for n, ts in traces.items() if n.endswith("(shipped)"))
    lines = [
        "# Pruner settings of the default strategy, replayed",
        "",
        f"Command: `python {' '.join(sys.argv)}` ({wall:.0f} s). Curves: {CURVES.relative_to(ROOT)} "
        f"({len(c.archs)} configurations x seeds {c.common_seeds()} x {c.epochs} epochs; grid total {full} epochs). "
        f"{args.seeds} replay seeds, 2 workers, budget = the grid's epochs. Median [quartiles] over replay seeds.",
        "",
        replay.table(traces, full),
        "",
        "Against the shipped settings, paired by replay seed (seeds won-lost, exact sign test):",
        "",
        "| variant | top-3 sooner | higher HV at 25% | mean epochs per trial |",
        "|---|---|---|---|",
    ]
    for name, ts in traces.items():
        per_trial = statistics.fmean(t.epochs / max(1, t.trials) for t in ts)
        sooner, hv = replay.top3_sooner(ts, ref), replay.hv_higher(ts, ref, full // 4)
        lines.append(f"| {name} | {sooner} | {hv} | {per_trial:.2f} |")
    text = "\n".join(lines) + "\n"
    out = ROOT / "experiments" / "results" / "replay-settings.md"
    out.write_text(text)
    print(text)
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
