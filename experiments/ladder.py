"""Does the proxy see GC, and the paper's ablation, at a higher fidelity? A ladder of proxy fidelities
(EcoNAS-style), each costing more than gc.yaml's in another way, with every comparison paired by seed.

Rungs: gc.yaml as shipped (`base`: 4 epochs of 6,000 images); 3x the epochs (`epochs-12`); twice the width
(`width-16`); all 55,000 training images for one epoch (`all-images`: 2.3x the images and steps of `base`,
EcoNAS's "more data, fewer epochs"). At every rung the paper default and the baseline without GC are
trained under seeds 0..S-1 (a seed gives both the same initial backbone weights and batch order);
`--variants` adds one-factor-at-a-time points of `gcsearch ablate` (`fusion` for all of an axis's values,
`fusion=mul` for one), so those axes' paired effects are measured at that rung too, with the ablation's
own table (paired t interval, Holm over the rung's comparisons, exact sign-flip p).

Every training is appended to experiments/data/ladder.csv as it finishes: a stopped run keeps what it
trained, and a rerun trains only the (rung, configuration, seed) it lacks. The report is rebuilt from the
whole file, so rungs measured by earlier runs stay in it.

    python experiments/ladder.py [--seeds 5] [--jobs 2] [--rungs base epochs-12] [--variants fusion=mul pool]

Writes experiments/results/ladder.md.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from gcsearch import ablate, stats
from gcsearch.arch import ArchConfig
from gcsearch.space import SearchSpace
from gcsearch.spacefile import load_space

ROOT = Path(__file__).resolve().parent.parent
GC = ROOT / "search_spaces" / "gc.yaml"
DATA = ROOT / "experiments" / "data" / "ladder.csv"
OUT = ROOT / "experiments" / "results" / "ladder.md"
KNOWN = ("base", "epochs-12", "width-16", "all-images")
COLUMNS = ("rung", "axis", "value", "seed", "score", "cpu_s", "macs", "params")


def rung(space: SearchSpace, name: str) -> SearchSpace:
    if name == "epochs-12":
        return dataclasses.replace(space, train=dataclasses.replace(space.train, epochs=12))
    if name == "width-16":
        return dataclasses.replace(space, backbone=dataclasses.replace(space.backbone, width=16))
    if name == "all-images":
        return dataclasses.replace(
            space,
            data=dataclasses.replace(space.data, train_subset=None),
            train=dataclasses.replace(space.train, epochs=1),
        )
    return space


def train_one(rung_name: str, arch: dict, seed: int) -> tuple[float, float, int, int]:
    """(final accuracy the search would see, CPU-seconds, MACs, params) of one training."""
    import torch

    from gcsearch.flops import SpaceCoster
    from gcsearch.train import train

    torch.set_num_threads(1)
    space = rung(load_space(GC), rung_name)
    config = ArchConfig.from_dict(arch)
    start = time.process_time()
    m = train(config, space, seed=seed)
    score = m.ema_accuracy if m.ema_accuracy is not None else m.accuracy
    cpu = time.process_time() - start
    macs, params = SpaceCoster(space.backbone)(config)
    return score, cpu, macs, params


def recorded() -> list[dict[str, str]]:
    if not DATA.is_file():
        return []
    with DATA.open(newline="") as f:
        return list(csv.DictReader(f))


def append(row: dict[str, object]) -> None:
    new = not DATA.is_file()
    with DATA.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        if new:
            writer.writeheader()
        writer.writerow(row)


def rung_rows(points: list[ablate.Point], rows: list[dict[str, str]], name: str) -> list[ablate.Row]:
    """The ablation's rows of one rung: each recorded point's accuracy per seed."""
    out = []
    for p in points:
        mine = [r for r in rows if r["rung"] == name and (r["axis"], r["value"]) == (p.axis, p.value)]
        if mine:
            accs = {int(r["seed"]): float(r["score"]) for r in mine}
            out.append(ablate.Row(p, accs, int(mine[0]["macs"]), int(mine[0]["params"])))
    return out


def report(points: list[ablate.Point], rows: list[dict[str, str]], command: str) -> str:
    lines = [
        "# The paper default, the baseline and the ablation's axes on a ladder of proxy fidelities",
        "",
        f"Command: `{command}` (every training in experiments/data/ladder.csv; the report is rebuilt from it).",
        f"Paper default: {points[0].arch.label()}. Score: the accuracy a search sees (of the EMA weights, "
        "train.ema). Every comparison is paired by seed: 95% Student-t interval of the per-seed differences, "
        "exact sign-flip p.",
        "",
        "## GC against the baseline without GC",
        "",
        "| rung | seeds | GC mean | baseline mean | GC - baseline [95% interval] | p | sign-flip p | "
        "CPU-s per training |",
        "|---|---|---|---|---|---|---|---|",
    ]
    sections = []
    for name in KNOWN:
        mine = rung_rows(points, rows, name)
        by_axis = {r.point.axis: r for r in mine if r.point.axis in ("reference", "baseline")}
        if len(by_axis) < 2:
            continue
        gc, base = by_axis["reference"], by_axis["baseline"]
        diffs = stats.paired(gc.accuracies, base.accuracies)
        cpu = statistics.fmean(float(r["cpu_s"]) for r in rows if r["rung"] == name)
        if len(diffs) >= 2:
            i = stats.t_interval(diffs)
            lines.append(
                f"| {name} | {len(diffs)} | {gc.mean:.4f} | {base.mean:.4f} | {i.text()} | {i.p:.3f} | "
                f"{stats.sign_flip_p(diffs):.3f} | {cpu:.0f} |"
            )
        if any(r.point.axis in ablate.AXES for r in mine):
            sections += ["", f"## Axes at rung {name}", "", ablate.table(mine)]
    return "\n".join(lines + sections) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--rungs", nargs="+", default=["base", "epochs-12", "width-16"], choices=KNOWN)
    parser.add_argument("--variants", nargs="*", default=[], help="ablation points to add: AXIS or AXIS=VALUE")
    args = parser.parse_args()
    command = f"python {' '.join(sys.argv)}"
    points = ablate.points(load_space(GC))
    wanted = [
        p for p in points if p.axis in ("reference", "baseline") or {p.axis, f"{p.axis}={p.value}"} & set(args.variants)
    ]
    done = {(r["rung"], r["axis"], r["value"], int(r["seed"])) for r in recorded()}
    with ProcessPoolExecutor(args.jobs) as pool:
        for name in args.rungs:
            todo = [(p, s) for p in wanted for s in range(args.seeds) if (name, p.axis, p.value, s) not in done]
            futures = [(p, s, pool.submit(train_one, name, p.arch.to_dict(), s)) for p, s in todo]
            for p, s, f in futures:  # in submission order; each written as soon as it is read
                score, cpu, macs, params = f.result()
                append({"rung": name, "axis": p.axis, "value": p.value, "seed": s, "score": f"{score:.6f}",
                        "cpu_s": f"{cpu:.1f}", "macs": macs, "params": params})  # fmt: skip
                print(f"{name} {p.axis}={p.value} seed {s}: {score:.4f} ({cpu:.0f} CPU-s)", flush=True)
            OUT.write_text(report(points, recorded(), command))  # after every rung
    print(f"wrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
