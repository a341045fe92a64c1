"""What should replace a proposal the search will not train (a duplicate, or one outside a recording)?

Replays the default strategy on the recorded curves twice, paired by replay seed: the replacement drawn
among the untried configurations nearest to what the sampler proposed (``Options(replacement=
"nearest"``, the shipped rule) and drawn among all untried ones ("random", the earlier rule). Reports
both tables of `gcsearch bench replay` and exact sign tests, nearest against random.

    python experiments/replacement.py [--seeds 60]

Writes experiments/results/replacement.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

from gcsearch import curves, replay
from gcsearch.options import Options
from gcsearch.spacefile import load_space

ROOT = Path(__file__).resolve().parent.parent
CURVES = ROOT / "experiments" / "data" / "curves-gc.csv"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=60)
    args = parser.parse_args()
    space = load_space(ROOT / "search_spaces" / "gc.yaml")
    c = curves.Curves.of(curves.read(CURVES))
    full = len(c.archs) * c.epochs
    strategy = f"{space.search.sampler}+{space.search.pruner}"
    start = time.perf_counter()
    traces: dict[str, list[replay.Trace]] = {}
    base = replay.resolve(space, strategy)
    for rule in ("nearest", "random"):
        name = f"{strategy}, replaced by {rule}"
        variant = dataclasses.replace(base, name=name, options=Options(replacement=rule))
        traces[name] = replay.replay_many(c, space, [variant], args.seeds, 2, full)[name]
    wall = time.perf_counter() - start
    nearest, random_ = traces.values()
    sooner, hv = replay.top3_sooner(nearest, random_), replay.hv_higher(nearest, random_, full // 4)
    regret = replay.versus(nearest, random_, lambda t: t.regret, lower_is_better=True)
    text = "\n".join([
        "# Replacing a proposal the search will not train: nearest untried vs any untried",
        "",
        f"Command: `python {' '.join(sys.argv)}` ({wall:.0f} s). Curves: {CURVES.relative_to(ROOT)}; "
        f"{args.seeds} replay seeds, 2 workers, budget {full} epochs (the grid's).",
        "",
        replay.table(traces, full, baseline=f"{strategy}, replaced by random"),
        "",
        "Nearest against random, paired by replay seed (seeds won-lost, exact sign test): "
        f"top-3 sooner {sooner}; higher hypervolume at 25% {hv}; lower final regret {regret}.",
    ])  # fmt: skip
    out = ROOT / "experiments" / "results" / "replacement.md"
    out.write_text(text + "\n")
    print(text)
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
