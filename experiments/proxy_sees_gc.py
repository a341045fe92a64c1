"""Can the proxy see GC's effect at all? The paper-default GC config against the no-GC baseline,
trained with the space file's budget for one trial, over several seeds (mean and spread).

    python experiments/proxy_sees_gc.py [--space search_spaces/gc.yaml] [--seeds 3] [--jobs 2]

Writes experiments/results/proxy_sees_gc.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from gcsearch.arch import ArchConfig
from gcsearch.spacefile import load_space


def run(space_path: str, arch: dict, seed: int) -> tuple[float, float]:
    import torch

    from gcsearch.train import train

    torch.set_num_threads(1)
    space = load_space(space_path)
    space = dataclasses.replace(space, train=dataclasses.replace(space.train, seed=seed))
    m = train(ArchConfig.from_dict(arch), space)
    return m.accuracy, m.seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--space", default="search_spaces/gc.yaml")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    space = load_space(args.space)
    arms = {"paper default": space.reference(), "baseline (no GC)": ArchConfig()}
    start = time.perf_counter()
    with ProcessPoolExecutor(args.jobs) as pool:
        futures = {
            (name, seed): pool.submit(run, args.space, arch.to_dict(), seed)
            for name, arch in arms.items()
            for seed in range(args.seeds)
        }
        results = {key: f.result() for key, f in futures.items()}
    wall = time.perf_counter() - start
    lines = [
        "# Does the proxy see GC's effect?",
        "",
        f"Command: `python {' '.join(sys.argv)}`",
        f"Machine: {platform.machine()}, {args.jobs} parallel single-thread trainings; wall {wall:.0f} s",
        f"Budget: {space.train.epochs} epochs on {space.data.train_subset} {space.data.dataset} images, "
        f"validation on {space.data.val_size} held-out training images, seeds 0..{args.seeds - 1}",
        "",
        "| arm | val accuracy mean | std | per seed | seconds per training |",
        "|---|---|---|---|---|",
    ]
    means = {}
    for name, arch in arms.items():
        accs = [results[(name, s)][0] for s in range(args.seeds)]
        secs = [results[(name, s)][1] for s in range(args.seeds)]
        means[name] = statistics.mean(accs)
        lines.append(
            f"| {arch.label()} | {statistics.mean(accs):.4f} | {statistics.stdev(accs):.4f} | "
            f"{', '.join(f'{a:.4f}' for a in accs)} | {statistics.mean(secs):.0f} |"
        )
    diff = means["paper default"] - means["baseline (no GC)"]
    lines += ["", f"Difference paper default - baseline: {diff:+.4f}"]
    out = Path(__file__).parent / "results" / "proxy_sees_gc.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
