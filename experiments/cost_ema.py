"""What does scoring trials by an EMA of the weights cost? CPU-seconds per gc.yaml trial, with and without.

Trains gc.yaml's paper default for the file's epochs with train.ema 0 (the recipe before) and 0.95 (the
recipe now: the EMA is updated every step and it alone is evaluated), one thread each, alternating
A, B, A, B so both see the same machine load; reports the mean seconds and the ratio now / before.

    python experiments/cost_ema.py [--repeats 2]

Writes experiments/results/cost_ema.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

from gcsearch import data as datasets
from gcsearch.spacefile import load_space
from gcsearch.train import train

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)
    space = load_space(ROOT / "search_spaces" / "gc.yaml")
    splits = datasets.load(space.data, space.backbone.input_size, space.backbone.num_classes, seed=space.train.seed)
    seconds: dict[float, list[float]] = {0.0: [], 0.95: []}
    accuracy: dict[float, list[float]] = {0.0: [], 0.95: []}
    for _ in range(args.repeats):
        for ema in seconds:
            s = dataclasses.replace(space, train=dataclasses.replace(space.train, ema=ema, threads=1))
            start = time.process_time()
            m = train(s.reference(), s, splits=splits)
            seconds[ema].append(time.process_time() - start)
            accuracy[ema].append(m.accuracy)
            print(f"ema {ema}: {seconds[ema][-1]:.1f} CPU-s, accuracy {m.accuracy:.4f}", flush=True)
    before, now = statistics.fmean(seconds[0.0]), statistics.fmean(seconds[0.95])
    lines = [
        "# CPU cost of scoring trials by an EMA of the weights",
        "",
        f"Command: `python {' '.join(sys.argv)}`",
        f"Machine: {platform.machine()}, {torch.get_num_threads()} thread, torch {torch.__version__}",
        "",
        f"| recipe | CPU-seconds per trial (mean of {args.repeats}) | final accuracy |",
        "|---|---|---|",
        f"| before: train.ema 0 (raw weights evaluated) | {before:.1f} | {statistics.fmean(accuracy[0.0]):.4f} |",
        f"| now: train.ema 0.95 (EMA updated each step, only it evaluated) | {now:.1f} | "
        f"{statistics.fmean(accuracy[0.95]):.4f} |",
        "",
        f"Ratio now / before: {now / before:.3f}",
    ]
    out = ROOT / "experiments" / "results" / "cost_ema.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
