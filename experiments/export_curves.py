"""Export the curves a `gcsearch bench record` run holds so far, keeping only configurations with every seed.

`bench record` writes curves.csv when its plan is done; a recording stopped early (here: the session's
time ran out) still holds every finished training in its journal. This reads them from there.

    python experiments/export_curves.py runs/curves-gc experiments/data/curves-gc.csv [--seeds 3]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from gcsearch import bench, curves, rundir


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run")
    parser.add_argument("out")
    parser.add_argument("--seeds", type=int, default=3, help="keep configurations recorded with this many seeds")
    args = parser.parse_args()
    run = Path(args.run)
    space = rundir.load_run_space(run)
    points = bench.curve_points(space, rundir.load_main_study(run))
    seeds: dict = {}
    for p in points:
        seeds.setdefault(p.arch, set()).add(p.seed)
    whole = {a for a, s in seeds.items() if len(s) >= args.seeds}
    kept = [p for p in points if p.arch in whole]
    curves.Curves.of(kept, args.out)  # checks every kept curve is whole
    curves.write(Path(args.out), kept)
    print(f"{len(whole)} configurations x {args.seeds} seeds, {len(kept)} rows -> {args.out}")


if __name__ == "__main__":
    main()
