"""How far measured latency can be trusted, and where MACs mislead about it.

1. Repeatability: 6 configurations of gc.yaml (the baseline, the paper default and four far from it), each
   measured 5 times, every measurement in a fresh process pinned to one core (nn/latency.measure with the
   search's defaults: 2 s warm-up, 200 timed runs at batch 1, 1 thread); the coefficient of variation of the 5
   medians, and each configuration's latency relative to the baseline of the same round.
2. The same while a training runs on the other core (what a search on a shared node has left: a trial measures
   on its own Ray cores, under the machine's lock, but another trial may be training beside it).
3. MACs against latency over the whole grid of gc.yaml, in one pinned process in a seeded random order: one 2 s
   warm-up for the process, then per configuration 20 runs and 0.2 s of warm-up and 200 timed runs; the baseline
   remeasured every 60 configurations (its drift is reported, and every latency is taken relative to the
   nearest baseline). Kendall's tau (scipy.stats.kendalltau) between MACs and latency, and the configurations
   MACs call equal whose latencies differ by more than the noise of (1): a difference of two independent
   measurements beyond 2 * sqrt(2) * CV of the larger.

    python experiments/bench_latency.py [--space search_spaces/gc.yaml] [--rounds 5] [--device cpu|cuda --batch N]

Writes experiments/results/bench_latency-<device>.md, the grid's measurements to
experiments/data/latency-grid-<device>.csv and a scatter of latency against MACs beside the results. Run it on a
quiet machine: it times.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
import os
import platform
import random
import shlex
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS, DATA = ROOT / "experiments" / "results", ROOT / "experiments" / "data"

# Far from each other in what latency, not MACs, is sensitive to: pooling, gating, LayerNorm, where and how many.
PICKS = {
    "baseline": {},
    "paper default": {"stages": ["c3", "c4", "c5"], "pool": "att", "fusion": "add", "ratio": "1/16",
                      "norm": "layernorm", "position": "after_1x1"},
    "avg+add, no LN": {"stages": ["c3", "c4", "c5"], "pool": "avg", "fusion": "add", "ratio": "1/16",
                       "norm": "none", "position": "after_1x1"},
    "att+both, c2-c5, 1/4": {"stages": ["c2", "c3", "c4", "c5"], "pool": "att", "fusion": "both", "ratio": "1/4",
                             "norm": "layernorm", "position": "after_add", "gate_init": "identity"},
    "att+mul at c5": {"stages": ["c5"], "pool": "att", "fusion": "mul", "ratio": "1/8", "norm": "layernorm",
                      "position": "after_3x3", "gate_init": "half"},
    "avg+both, c4-c5": {"stages": ["c4", "c5"], "pool": "avg", "fusion": "both", "ratio": "1/4", "norm": "none",
                        "position": "after_add", "gate_init": "half"},
}  # fmt: skip


def pin(core: int) -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {core % (os.cpu_count() or 1)})


def one(space_path: str, arch_json: str, core: int) -> None:
    """Child process: measure one configuration with the search's settings; print its Latency as JSON."""
    pin(core)
    from gcsearch.arch import ArchConfig
    from gcsearch.nn import latency
    from gcsearch.nn.models import build_model
    from gcsearch.spacefile import load_space

    space = load_space(space_path)
    model = build_model(gc=ArchConfig.from_dict(json.loads(arch_json)), **space.backbone.build_kwargs())
    got = latency.measure(model, space.backbone.input_size, space.search.latency)
    print(json.dumps(dataclasses.asdict(got)))


def trainer(space_path: str, core: int) -> None:
    """Child process: train the baseline on ``core`` until killed (the neighbour a measurement may have)."""
    pin(core)
    import torch

    from gcsearch.arch import ArchConfig
    from gcsearch.nn.models import build_model
    from gcsearch.spacefile import load_space

    torch.set_num_threads(1)
    space = load_space(space_path)
    model = build_model(gc=ArchConfig(), **space.backbone.build_kwargs())
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x = torch.randn(128, *space.backbone.input_size)
    y = torch.randint(0, space.backbone.num_classes, (128,))
    print("training", flush=True)
    while True:
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()


def child(args: argparse.Namespace, *extra: str) -> list[str]:
    return [sys.executable, __file__, "--space", args.space, *extra]


def repeatability(args: argparse.Namespace, loaded: bool) -> dict[str, list[float]]:
    """{pick: [median ms per round]}, each from a fresh process; with a training on the other core if ``loaded``."""
    neighbour = None
    if loaded:
        neighbour = subprocess.Popen(child(args, "--train-on", "1"), stdout=subprocess.PIPE, text=True)
        assert neighbour.stdout is not None
        neighbour.stdout.readline()  # training has started
    medians: dict[str, list[float]] = defaultdict(list)
    order = list(PICKS)
    try:
        for r in range(args.rounds):
            random.Random(r).shuffle(order)
            for name in order:
                out = subprocess.run(child(args, "--one", json.dumps(PICKS[name]), "--core", "0"),
                                     capture_output=True, text=True, check=True)  # fmt: skip
                medians[name].append(json.loads(out.stdout.strip().splitlines()[-1])["median_ms"])
                print(
                    f"  {'loaded' if loaded else 'quiet'} round {r + 1} {name}: {medians[name][-1]:.4f} ms", flush=True
                )
    finally:
        if neighbour is not None:
            neighbour.kill()
            neighbour.wait()
    return dict(medians)


def cv(values: list[float]) -> float:
    return statistics.stdev(values) / statistics.mean(values)


def grid(args: argparse.Namespace) -> list[dict]:
    """Every configuration of the space in a seeded random order, in this process pinned to core 0."""
    pin(0)
    from gcsearch.arch import ArchConfig
    from gcsearch.nn import latency
    from gcsearch.nn.flops import SpaceCoster
    from gcsearch.nn.models import build_model
    from gcsearch.spacefile import load_space

    space = load_space(args.space)
    cfg = space.search.latency
    short = dataclasses.replace(cfg, warmup_s=0.2)
    coster = SpaceCoster(space.backbone)
    archs = space.grid()
    random.Random(0).shuffle(archs)

    def timed(arch: ArchConfig, settings) -> latency.Latency:
        return latency.measure(
            build_model(gc=arch, **space.backbone.build_kwargs()), space.backbone.input_size, settings
        )

    timed(ArchConfig(), cfg)  # the process's warm-up (2 s)
    rows, start = [], time.perf_counter()
    for i, arch in enumerate(archs):
        if i % 60 == 0:
            base = timed(ArchConfig(), short)
            rows.append({"arch": "baseline (drift check)", "macs": coster(ArchConfig())[0], "ms": base.median_ms,
                         "iqr_ms": base.iqr_ms, "order": i, "drift_check": 1, "baseline": 1})  # fmt: skip
        got = timed(arch, short)
        rows.append({"arch": json.dumps(arch.to_dict(), sort_keys=True), "label": arch.label(), "macs": coster(arch)[0],
                     "ms": got.median_ms, "iqr_ms": got.iqr_ms, "attempts": got.attempts, "order": i,
                     "vs_baseline": got.median_ms / base.median_ms, "drift_check": 0,
                     "baseline": int(arch.is_baseline)})  # fmt: skip
        if i % 50 == 0:
            print(f"  grid {i + 1}/{len(archs)}  {time.perf_counter() - start:.0f} s", flush=True)
    return rows


def macs_equal_pairs(rows: list[dict], noise_cv: float) -> tuple[list[tuple], int, int]:
    """Within each group of configurations with equal MACs, the fastest against the slowest where they differ by
    more than the noise; with the number of such groups and of groups in all (of 2 or more)."""
    groups: dict[int, list[dict]] = defaultdict(list)
    for row in rows:
        if not row["drift_check"]:
            groups[row["macs"]].append(row)
    found, sized = [], 0
    for macs, members in groups.items():
        if len(members) < 2:
            continue
        sized += 1
        lo, hi = min(members, key=lambda r: r["ms"]), max(members, key=lambda r: r["ms"])
        if hi["ms"] - lo["ms"] > 2 * math.sqrt(2) * noise_cv * hi["ms"]:
            found.append((hi["ms"] / lo["ms"], macs, lo, hi, len(members)))
    return sorted(found, key=lambda f: -f[0]), len(found), sized


def axis_diffs(rows: list[dict]) -> list[tuple[str, str]]:
    """Per axis, the median latency ratio between its values over configurations equal in every other axis."""
    from gcsearch.arch import AXES

    configs = [(json.loads(r["arch"]), r["ms"]) for r in rows if not r["drift_check"] and not r["baseline"]]
    out = []
    for axis in AXES:
        values = sorted({json.dumps(a.get(axis)) for a, _ in configs})
        if len(values) < 2:
            continue
        by_rest: dict[str, dict[str, float]] = defaultdict(dict)
        # add has no gate: fusions compare at the half gate (the official code's)
        skip = {axis, "gate_init"} if axis == "fusion" else {axis}
        for a, ms in configs:
            if axis == "fusion" and a.get("gate_init") not in (None, "half"):
                continue
            rest = json.dumps({k: v for k, v in a.items() if k not in skip}, sort_keys=True)
            by_rest[rest][json.dumps(a.get(axis))] = ms
        first = values[0]
        parts = []
        for v in values[1:]:
            ratios = [d[v] / d[first] for d in by_rest.values() if v in d and first in d]
            if ratios:
                parts.append(
                    f"{json.loads(v)} / {json.loads(first)}: {statistics.median(ratios):.3f}x ({len(ratios)} pairs)"
                )
        if parts:
            out.append((axis, "; ".join(parts)))
    return out


def scatter(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pts = [r for r in rows if not r["drift_check"]]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for pool, colour in (("att", "tab:red"), ("avg", "tab:blue")):
        sel = [r for r in pts if json.loads(r["arch"]).get("pool") == pool]
        ax.scatter([r["macs"] / 1e6 for r in sel], [r["ms"] for r in sel], s=8, c=colour, label=f"pool {pool}")
    base = [r for r in pts if r["baseline"]]
    ax.scatter([r["macs"] / 1e6 for r in base], [r["ms"] for r in base], s=60, c="k", marker="x", label="baseline")
    ax.set_xlabel("MACs (M)")
    ax.set_ylabel("latency (ms, median)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--space", default=str(ROOT / "search_spaces" / "gc.yaml"))
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--skip-grid", action="store_true", help="repeatability only")
    p.add_argument("--one", help=argparse.SUPPRESS)
    p.add_argument("--core", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--train-on", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one is not None:
        return one(args.space, args.one, args.core)
    if args.train_on is not None:
        return trainer(args.space, args.train_on)

    from scipy.stats import kendalltau

    from gcsearch.nn import latency
    from gcsearch.spacefile import load_space

    space = load_space(args.space)
    cfg = space.search.latency
    latency.check(cfg)
    device = cfg.device
    command = "python " + " ".join(shlex.quote(a) for a in [str(Path(__file__).relative_to(ROOT)), *sys.argv[1:]])
    print("1. repeatability, quiet", flush=True)
    quiet = repeatability(args, loaded=False)
    print("2. repeatability beside a training", flush=True)
    loaded = repeatability(args, loaded=True)
    noise = max(cv(v) for v in quiet.values())

    lines = [f"# Measured latency: repeatability, and MACs against latency over {Path(args.space).name}'s grid", "",
             f"Command: `{command}`. Machine: {platform.node()}, {os.cpu_count()} cores, {latency.hardware(cfg)}; "
             f"torch {__import__('torch').__version__}. Settings: {dataclasses.asdict(cfg)} (BatchNorm folded, "
             "eval mode, channels_last). "
             + ("No GPU was lent to this task: CPU figures only, no GPU figures (the same script with a space whose "
                "search.latency says `device: cuda, batch: 64` measures on a GPU)." if device == "cpu" else ""), "",
             f"## 1-2. Repeatability: {args.rounds} measurements per configuration, each in a fresh process pinned to "
             "one core", "",
             "| configuration | quiet: median ms | CV | vs baseline (per round, median) | beside a training: median ms "
             "| CV | loaded / quiet |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for name in PICKS:
        rel = statistics.median(q / b for q, b in zip(quiet[name], quiet["baseline"], strict=True))
        lines.append(f"| {name} | {statistics.median(quiet[name]):.4f} | {cv(quiet[name]):.2%} | {rel:.3f}x | "
                     f"{statistics.median(loaded[name]):.4f} | {cv(loaded[name]):.2%} | "
                     f"{statistics.median(loaded[name]) / statistics.median(quiet[name]):.3f}x |")  # fmt: skip
    lines += ["", f"Noise used below: the largest quiet CV, {noise:.2%}; two measurements differ beyond noise when "
              f"their difference exceeds 2 * sqrt(2) * {noise:.2%} = {2 * math.sqrt(2) * noise:.2%} of the larger.",
              ""]  # fmt: skip
    raw: dict = {"quiet": quiet, "loaded": loaded}
    if not args.skip_grid:
        print("3. grid", flush=True)
        rows = grid(args)
        DATA.mkdir(parents=True, exist_ok=True)
        data_path = DATA / f"latency-grid-{device}.csv"
        with open(data_path, "w", newline="") as f:
            fields = [
                "order",
                "label",
                "arch",
                "macs",
                "ms",
                "iqr_ms",
                "attempts",
                "vs_baseline",
                "baseline",
                "drift_check",
            ]
            w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
            w.writeheader()
            w.writerows(rows)
        pts = [r for r in rows if not r["drift_check"]]
        tau = kendalltau([r["macs"] for r in pts], [r["ms"] for r in pts])
        gc_only = [r for r in pts if not r["baseline"]]
        base_macs = next(r["macs"] for r in pts if r["baseline"])
        tau_rel = kendalltau([r["macs"] for r in gc_only], [r["vs_baseline"] for r in gc_only])
        drift = [r["ms"] for r in rows if r["drift_check"]] or [0.0]
        # The grid runs in one long process, which the fresh processes of (1) need not predict: judge its
        # differences by its own baseline's remeasurements too (the 2026-12-07 run's ranged 0.66-1.50 ms).
        grid_noise = max(noise, cv(drift) if len(drift) > 1 else 0.0)
        found, n_found, n_groups = macs_equal_pairs(rows, grid_noise)
        spreads = [r["iqr_ms"] / r["ms"] for r in pts]
        lines += [f"## 3. MACs against latency: {len(pts)} configurations", "",
                  f"Kendall's tau between MACs and latency: {tau.statistic:.3f} (p = {tau.pvalue:.2g}); over the "
                  f"configurations with GC, MACs against latency relative to the nearest baseline: "
                  f"{tau_rel.statistic:.3f} (p = {tau_rel.pvalue:.2g}). Latency relative to the baseline ranges "
                  f"{min(r['vs_baseline'] for r in gc_only):.3f}x to {max(r['vs_baseline'] for r in gc_only):.3f}x "
                  f"(median {statistics.median(r['vs_baseline'] for r in gc_only):.3f}x); MACs relative to it "
                  f"{min(r['macs'] for r in gc_only) / base_macs:.4f}x to "
                  f"{max(r['macs'] for r in gc_only) / base_macs:.4f}x. "
                  f"The baseline's remeasurements through the run (drift): {min(drift):.4f} to {max(drift):.4f} ms. "
                  f"Within-measurement IQR/median: median {statistics.median(spreads):.1%}, "
                  f"{sum(s > cfg.max_spread for s in spreads)} of {len(spreads)} above {cfg.max_spread:.0%} after "
                  f"{cfg.attempts} attempts.", "",
                  f"**Where MACs mislead**: of {n_groups} groups of configurations with exactly equal MACs, {n_found} "
                  f"hold configurations whose latencies differ beyond the noise (the grid's: the larger of (1)'s CV "
                  f"and the CV of its baseline's remeasurements, {grid_noise:.2%}); the ten widest:", "",
                  "| slower / faster | MACs | configurations in the group | faster | slower |",
                  "|---|---|---|---|---|"]  # fmt: skip
        for ratio, macs, lo, hi, size in found[:10]:
            lines.append(f"| {ratio:.3f}x | {macs:,} | {size} | {lo['label']} ({lo['ms']:.3f} ms) | "
                         f"{hi['label']} ({hi['ms']:.3f} ms) |")  # fmt: skip
        lines += ["", "Per axis, the median latency ratio between its values over configurations equal in every "
                  "other axis (which choices cost time MACs do not count):", ""]  # fmt: skip
        lines += [f"- {axis}: {text}" for axis, text in axis_diffs(rows)]
        png = RESULTS / f"bench_latency-{device}.png"
        scatter(rows, png)
        lines += ["", f"Scatter: `{png.relative_to(ROOT)}`; every measurement: `{data_path.relative_to(ROOT)}`."]
        raw["tau"] = [tau.statistic, tau.pvalue]
    lines += ["", "Raw: " + json.dumps(raw)]
    out = RESULTS / f"bench_latency-{device}.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines[:40]))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
