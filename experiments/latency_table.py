"""The measured latency of every configuration of a recording, as a search with ``objectives: [accuracy, latency]``
would measure it (``gcsearch.nn.latency``: batch 1, one thread, BatchNorm folded, each configuration timed in
alternation with the baseline and ranked by the ratio), so the replay can search on latency too
(``heldout_replay.py --objective latency``).

    python experiments/latency_table.py [--curves experiments/data/curves-cue-shapes.csv]
        [--space search_spaces/gc-cue-shapes.yaml]

Writes experiments/data/<curves stem>-latency-cpu.csv (the configuration's cells, latency_ms, vs_baseline) and
resumes from the measurements already cached under runs/latency. Run it on a quiet machine: it times.
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

from gcsearch.arch import AXES
from gcsearch.bench import curves
from gcsearch.nn.latency import hardware, latency
from gcsearch.spacefile import load_space

ROOT = Path(__file__).resolve().parent.parent


def read(path: Path) -> dict:
    """configuration -> latency relative to the baseline, from a table this script wrote."""
    with path.open() as f:
        return {curves.arch_from_cells(r, str(path)): float(r["vs_baseline"]) for r in csv.DictReader(f)}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--curves", default=str(ROOT / "experiments" / "data" / "curves-cue-shapes.csv"))
    p.add_argument("--space", default=str(ROOT / "search_spaces" / "gc-cue-shapes.yaml"))
    args = p.parse_args()
    space = load_space(args.space)
    c = curves.Curves.of(curves.read(args.curves))
    cfg = space.search.latency
    out = ROOT / "experiments" / "data" / f"{Path(args.curves).stem}-latency-cpu.csv"
    cache = ROOT / "runs" / "latency"
    start = time.perf_counter()
    rows = []
    for i, arch in enumerate(c.archs):
        got = latency(arch, space.backbone, cfg, cache)
        rows.append([*curves.arch_cells(arch), f"{got.median_ms:.5f}", f"{got.vs_baseline:.5f}"])
        if i % 20 == 0:
            print(f"{i + 1}/{len(c.archs)} {arch.label()}: {got.vs_baseline:.3f}x", flush=True)
    with out.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow([*AXES, "latency_ms", "vs_baseline"])
        w.writerows(rows)
    print(f"wrote {out}: {len(rows)} configurations on {hardware(cfg)} in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
