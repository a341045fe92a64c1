"""Does the proxy see GC at a higher fidelity? The paper default against the baseline without GC,
paired by seed, on a ladder of proxy fidelities that each cost more than gc.yaml's in another way.

Rungs: gc.yaml as shipped; 3x the epochs (12); twice the width (16); optionally all 55,000 training
images (`--rungs ... all-images`: about 10 minutes a training on one core). Each rung trains both
configurations under seeds 0..S-1 (a seed gives both the same initial backbone weights and batch order)
and reports the paired difference with its 95% t interval, the exact sign-flip p, and the CPU-seconds.
Results are written after every rung, so a stopped run keeps what it finished.

    python experiments/ladder.py [--seeds 5] [--jobs 2] [--rungs base epochs-12 width-16]

Rungs already in ladder.md that a run does not repeat are kept.

Writes experiments/results/ladder.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from gcsearch import stats
from gcsearch.arch import ArchConfig
from gcsearch.space import SearchSpace, load_space

ROOT = Path(__file__).resolve().parent.parent
GC = ROOT / "search_spaces" / "gc.yaml"
KNOWN = ("base", "epochs-12", "width-16", "all-images")


def rung(space: SearchSpace, name: str) -> SearchSpace:
    if name == "epochs-12":
        return dataclasses.replace(space, train=dataclasses.replace(space.train, epochs=12))
    if name == "width-16":
        return dataclasses.replace(space, backbone=dataclasses.replace(space.backbone, width=16))
    if name == "all-images":
        return dataclasses.replace(space, data=dataclasses.replace(space.data, train_subset=None))
    return space


def train_one(rung_name: str, arch: dict, seed: int) -> tuple[float, float]:
    """(final accuracy the search would see, CPU-seconds) of one training."""
    import torch

    from gcsearch.train import train

    torch.set_num_threads(1)
    space = rung(load_space(GC), rung_name)
    start = time.process_time()
    m = train(ArchConfig.from_dict(arch), space, seed=seed)
    score = m.ema_accuracy if m.ema_accuracy is not None else m.accuracy
    return score, time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--rungs", nargs="+", default=["base", "epochs-12", "width-16"], choices=KNOWN)
    args = parser.parse_args()
    space = load_space(GC)
    gc, base = space.reference().to_dict(), ArchConfig().to_dict()
    lines = [
        "# Paper default vs baseline on a ladder of proxy fidelities, paired by seed",
        "",
        f"Command: `python {' '.join(sys.argv)}`. Paper default: {space.reference().label()}. Score: the accuracy "
        "a search sees (of the EMA weights, train.ema). Interval: 95% paired t; p: exact sign flip.",
        "",
        "| rung | seeds | GC mean | baseline mean | GC - baseline [95% interval] | sign-flip p | CPU-s per training |",
        "|---|---|---|---|---|---|---|",
    ]
    out = ROOT / "experiments" / "results" / "ladder.md"
    if out.is_file():  # keep the rungs measured before that this run does not repeat
        kept = set(KNOWN) - set(args.rungs)
        lines += [
            row for row in out.read_text().splitlines() if row.startswith("| ") and row[2:].split(" | ")[0] in kept
        ]
    with ProcessPoolExecutor(args.jobs) as pool:
        for name in args.rungs:
            seeds = list(range(args.seeds))
            gc_runs = [pool.submit(train_one, name, gc, s) for s in seeds]
            base_runs = [pool.submit(train_one, name, base, s) for s in seeds]
            a = {s: f.result() for s, f in zip(seeds, gc_runs, strict=True)}
            b = {s: f.result() for s, f in zip(seeds, base_runs, strict=True)}
            diffs = [a[s][0] - b[s][0] for s in seeds]
            interval = stats.t_interval(diffs)
            cpu = statistics.fmean([x[1] for x in [*a.values(), *b.values()]])
            lines.append(
                f"| {name} | {len(seeds)} | {statistics.fmean(x[0] for x in a.values()):.4f} | "
                f"{statistics.fmean(x[0] for x in b.values()):.4f} | {interval.text()} | "
                f"{stats.sign_flip_p(diffs):.3f} | {cpu:.0f} |"
            )
            print(lines[-1], flush=True)
            out.write_text("\n".join(lines) + "\n")  # after every rung: a stopped run keeps what it finished
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
