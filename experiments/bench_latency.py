"""How far measured latency can be trusted, and where MACs mislead about it.

1. Repeatability: 6 configurations of gc-fashion.yaml (the baseline, the paper default and four far from it), each
   measured 5 times as a search measures it, every measurement in a fresh process pinned to one core with an
   empty cache (nn/latency.latency with the search's defaults: the baseline alone, then the configuration
   against it; 2 s warm-up, 200 timed runs at batch 1, 1 thread); the coefficients of variation of the 5 ms
   figures and of the 5 ratios to the baseline.
2. The same while a training runs on the other core (what a search on a shared node has left: a trial measures
   on its own Ray cores, under the machine's lock, but another trial may be training beside it).
3. MACs against latency over the whole grid of gc-fashion.yaml, in one process pinned to one core: each configuration
   timed against the baseline in the same moment (the two alternate in blocks of 10 runs), so that the slow
   phases of a shared machine cancel in the ratio; 3 passes, each in its own random order, whose spread is the
   grid's noise. Kendall's tau (scipy.stats.kendalltau) between MACs and latency, and the groups of
   configurations MACs call equal whose latencies differ (a one-way ANOVA, Holm-corrected over the groups).

    python experiments/bench_latency.py [--space search_spaces/gc-fashion.yaml] [--rounds 5] [--passes 3] [--skip-grid]
                                        [--resume]

A space whose search.latency says `device: cuda, batch: 64` measures on a GPU.

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
    "baseline": {"stages": []},
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
    """Child process: measure one configuration as a search does (nn/latency.latency, an empty cache: the
    baseline alone, then the configuration against it); print its Latency as JSON."""
    pin(core)
    import tempfile

    from gcsearch.arch import ArchConfig
    from gcsearch.nn import latency
    from gcsearch.spacefile import load_space

    space = load_space(space_path)
    with tempfile.TemporaryDirectory() as cache:
        got = latency.latency(ArchConfig.from_dict(json.loads(arch_json)), space.backbone, space.search.latency,
                              Path(cache))  # fmt: skip
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


def repeatability(args: argparse.Namespace, loaded: bool) -> dict[str, list[dict]]:
    """{pick: [its Latency per round, as a dict]}, each from a fresh process; with a training on the other core if
    ``loaded``."""
    neighbour = None
    if loaded:
        neighbour = subprocess.Popen(child(args, "--train-on", "1"), stdout=subprocess.PIPE, text=True)
        assert neighbour.stdout is not None
        neighbour.stdout.readline()  # training has started
    got: dict[str, list[dict]] = defaultdict(list)
    order = list(PICKS)
    try:
        for r in range(args.rounds):
            random.Random(r).shuffle(order)
            for name in order:
                out = subprocess.run(child(args, "--one", json.dumps(PICKS[name]), "--core", "0"),
                                     capture_output=True, text=True, check=True)  # fmt: skip
                got[name].append(json.loads(out.stdout.strip().splitlines()[-1]))
                print(f"  {'loaded' if loaded else 'quiet'} round {r + 1} {name}: {got[name][-1]['median_ms']:.4f} "
                      f"ms, {got[name][-1]['vs_baseline']:.4f}x", flush=True)  # fmt: skip
    finally:
        if neighbour is not None:
            neighbour.kill()
            neighbour.wait()
    return dict(got)


def cv(values: list[float]) -> float:
    return statistics.stdev(values) / statistics.mean(values)


GRID_FIELDS = ["pass", "order", "label", "arch", "macs", "ms", "vs_baseline", "baseline"]


def grid(args: argparse.Namespace, data_path: Path) -> list[dict]:
    """Every configuration of the space, ``args.passes`` times, each pass in its own seeded random order, each
    timed against the baseline as a search times it (nn/latency.measure ``against`` a fresh baseline; the
    baseline against a second copy of itself), in this process pinned to core 0. Rows are
    appended to ``data_path`` as they come; with ``args.resume`` the ones already there are kept."""
    pin(0)
    import torch

    from gcsearch.arch import ArchConfig
    from gcsearch.nn import latency
    from gcsearch.nn.flops import SpaceCoster
    from gcsearch.nn.models import build_model
    from gcsearch.spacefile import load_space

    space = load_space(args.space)
    cfg = space.search.latency
    coster = SpaceCoster(space.backbone)

    def built(arch: ArchConfig) -> torch.nn.Module:
        return build_model(gc=arch, **space.backbone.build_kwargs())

    rows: list[dict] = []
    if args.resume and data_path.is_file():
        with open(data_path, newline="") as f:
            rows = [{k: (v if k in ("label", "arch") else float(v)) for k, v in r.items()} for r in csv.DictReader(f)]
    done = {(int(r["pass"]), r["arch"]) for r in rows}
    if not rows:
        data_path.parent.mkdir(parents=True, exist_ok=True)
        data_path.write_text(",".join(GRID_FIELDS) + "\n")
    # the search's measurement against the baseline, with a short warm-up: the process is warm already
    short = dataclasses.replace(cfg, warmup_s=0.2, attempts=1)
    start = time.perf_counter()
    with open(data_path, "a", newline="") as f:
        out = csv.DictWriter(f, fieldnames=GRID_FIELDS)
        latency.measure(built(ArchConfig()), space.backbone.input_size, cfg)  # the process's warm-up
        for grid_pass in range(args.passes):
            archs = space.grid()
            random.Random(grid_pass).shuffle(archs)
            for i, arch in enumerate(archs):
                key = json.dumps(arch.to_dict(), sort_keys=True)
                if (grid_pass, key) in done:
                    continue
                got = latency.measure(built(arch), space.backbone.input_size, short, against=built(ArchConfig()))
                row = {"pass": grid_pass, "order": i, "label": arch.label(), "arch": key, "macs": coster(arch)[0],
                       "ms": got.median_ms, "vs_baseline": got.vs_baseline,
                       "baseline": int(arch.is_baseline)}  # fmt: skip
                out.writerow(row)
                f.flush()
                rows.append(row)
                if i % 50 == 0:
                    print(f"  grid pass {grid_pass + 1}/{args.passes}: {i + 1}/{len(archs)}  "
                          f"{time.perf_counter() - start:.0f} s", flush=True)  # fmt: skip
    return rows


def by_config(rows: list[dict]) -> list[dict]:
    """One entry per configuration: its MACs, label, the ratios and ms of its passes, the ratios' median."""
    grouped: dict[str, dict] = {}
    for r in rows:
        entry = grouped.setdefault(r["arch"], {"arch": r["arch"], "label": r["label"], "macs": int(r["macs"]),
                                               "baseline": int(r["baseline"]), "ratios": [], "ms": []})  # fmt: skip
        entry["ratios"].append(float(r["vs_baseline"]))
        entry["ms"].append(float(r["ms"]))
    for entry in grouped.values():
        entry["ratio"] = statistics.median(entry["ratios"])
    return list(grouped.values())


def pooled_cv(configs: list[dict]) -> float:
    """The coefficient of variation of one paired measurement: the pooled within-configuration standard
    deviation of log ratios (the passes of one configuration differ by noise only)."""
    variances = [statistics.variance([math.log(v) for v in c["ratios"]]) for c in configs if len(c["ratios"]) > 1]
    return math.sqrt(statistics.mean(variances))


def macs_equal_groups(configs: list[dict], rank_based: bool = False) -> tuple[list[tuple], int]:
    """Groups of configurations with exactly equal MACs, each tested for any difference in latency over the
    passes' log ratios (a one-way ANOVA, scipy.stats.f_oneway, or with ``rank_based`` Kruskal-Wallis), Holm-
    corrected over the groups; per group that differs, its fastest and slowest configuration by median ratio.
    Returns those and the number of groups tested."""
    from scipy.stats import f_oneway, kruskal

    from gcsearch import stats

    groups: dict[int, list[dict]] = defaultdict(list)
    for c in configs:
        groups[c["macs"]].append(c)
    tested = [(macs, members) for macs, members in groups.items() if len(members) > 1]
    if not tested:
        return [], 0
    test = kruskal if rank_based else f_oneway
    p_values = [test(*[[math.log(v) for v in m["ratios"]] for m in members]).pvalue for _, members in tested]
    p_holm = stats.holm(p_values)
    found = []
    for (macs, members), p in zip(tested, p_holm, strict=True):
        if p <= stats.ALPHA:
            lo, hi = min(members, key=lambda c: c["ratio"]), max(members, key=lambda c: c["ratio"])
            found.append((hi["ratio"] / lo["ratio"], macs, lo, hi, len(members), p))
    return sorted(found, key=lambda f: -f[0]), len(tested)


def axis_diffs(configs: list[dict]) -> list[tuple[str, str]]:
    """Per axis, the median latency ratio between its values over configurations equal in every other axis."""
    from gcsearch.arch import AXES

    pairs = [(json.loads(c["arch"]), c["ratio"]) for c in configs if not c["baseline"]]
    out = []
    for axis in AXES:
        values = sorted({json.dumps(a.get(axis)) for a, _ in pairs})
        if len(values) < 2:
            continue
        by_rest: dict[str, dict[str, float]] = defaultdict(dict)
        # add has no gate: fusions compare at the half gate (the official code's)
        skip = {axis, "gate_init"} if axis == "fusion" else {axis}
        for a, ratio in pairs:
            if axis == "fusion" and a.get("gate_init") not in (None, "half"):
                continue
            rest = json.dumps({k: v for k, v in a.items() if k not in skip}, sort_keys=True)
            by_rest[rest][json.dumps(a.get(axis))] = ratio
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


def scatter(configs: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for pool, colour in (("att", "tab:red"), ("avg", "tab:blue")):
        sel = [c for c in configs if json.loads(c["arch"]).get("pool") == pool]
        ax.scatter([c["macs"] / 1e6 for c in sel], [c["ratio"] for c in sel], s=8, c=colour, label=f"pool {pool}")
    base = [c for c in configs if c["baseline"]]
    ax.scatter([c["macs"] / 1e6 for c in base], [c["ratio"] for c in base], s=60, c="k", marker="x",
               label="baseline (against a second copy)")  # fmt: skip
    ax.set_xlabel("MACs (M)")
    ax.set_ylabel("latency / the baseline's (timed in alternation)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def grid_section(rows: list[dict], quiet: dict[str, list[dict]], passes: int, runs: int) -> list[str]:
    from scipy.stats import kendalltau

    from gcsearch.arch import ArchConfig
    from gcsearch.nn import latency

    configs = by_config(rows)
    gc_only = [c for c in configs if not c["baseline"]]
    null = next(c for c in configs if c["baseline"])
    tau = kendalltau([c["macs"] for c in configs], [c["ratio"] for c in configs])
    noise = pooled_cv(configs)
    found, n_groups = macs_equal_groups(configs)
    by_ranks, _ = macs_equal_groups(configs, rank_based=True)
    ms_moves = [max(c["ms"]) / min(c["ms"]) for c in configs]  # slowest pass over fastest, per configuration
    ratio_moves = [max(c["ratios"]) / min(c["ratios"]) for c in configs]
    ratio_of = {c["arch"]: c["ratio"] for c in configs}
    pick_ratio = {name: ratio_of.get(json.dumps(ArchConfig.from_dict(arch).to_dict(), sort_keys=True))
                  for name, arch in PICKS.items()}  # fmt: skip
    lines = [f"## 3. MACs against latency: {len(configs)} configurations, {passes} passes", "",
             "Each configuration timed against the baseline as a search times it (both freshly built, alternating "
             f"in blocks of {latency.BLOCK_RUNS} runs, {runs} timed runs each), in one pinned process, after 0.2 s "
             "of warm-up instead of 2 s and in one attempt instead of up to 3; its figure is the median of its "
             "passes' ratios (each pass in its own random order). Between "
             f"passes a configuration's ms moved by a median {statistics.median(ms_moves) - 1:.1%} (the largest "
             f"{max(ms_moves) - 1:.0%}), its ratio by {statistics.median(ratio_moves) - 1:.1%} (the largest "
             f"{max(ratio_moves) - 1:.0%}): the machine's slow phases fall on both sides of a ratio. Noise: the "
             f"pooled within-configuration CV of one pass, {noise:.2%}. The null control, the baseline timed "
             f"against a second copy of itself: {null['ratio']:.3f}x (passes "
             f"{', '.join(f'{v:.3f}' for v in null['ratios'])}).", "",
             "The picks of (1) in the grid against (1)'s fresh processes:", "",
             "| configuration | grid: x the baseline | (1): fresh processes, x the baseline, median |",
             "|---|---|---|"]  # fmt: skip
    for name in PICKS:
        fresh = statistics.median(r["vs_baseline"] for r in quiet[name])
        grid_text = "not in this grid" if pick_ratio[name] is None else f"{pick_ratio[name]:.3f}x"
        lines.append(f"| {name} | {grid_text} | {fresh:.3f}x |")
    base_macs = null["macs"]
    lines += ["", f"Kendall's tau (scipy.stats.kendalltau) between MACs and latency relative to the baseline: "
              f"{tau.statistic:.3f} (p = {tau.pvalue:.2g}). With GC, latency relative to the baseline ranges "
              f"{min(c['ratio'] for c in gc_only):.3f}x to {max(c['ratio'] for c in gc_only):.3f}x (median "
              f"{statistics.median(c['ratio'] for c in gc_only):.3f}x); MACs relative to it "
              f"{min(c['macs'] for c in gc_only) / base_macs:.4f}x to "
              f"{max(c['macs'] for c in gc_only) / base_macs:.4f}x.", "",
              f"**Where MACs mislead**: of {n_groups} groups of configurations with exactly equal MACs, {len(found)} "
              "hold configurations whose latencies differ (a one-way ANOVA over the passes' log ratios, "
              "scipy.stats.f_oneway; Holm-corrected over the groups at 0.05, statsmodels multipletests). "
              f"Kruskal-Wallis, which ranks and so shrugs off a slow phase's outlier, finds {len(by_ranks)}; but "
              f"with {passes} passes its smallest p-value in a group of fewer than about 10 configurations cannot "
              "pass Holm's threshold, so it cannot say that the small groups differ, and neither test says that "
              "the others are equal. The ten widest, by the ratio of the group's slowest to its fastest median:",
              "",
              "| slower / faster | MACs | configurations in the group | Holm p | faster | slower |",
              "|---|---|---|---|---|---|"]  # fmt: skip
    for ratio, macs, lo, hi, size, p in found[:10]:
        lines.append(f"| {ratio:.3f}x | {macs:,} | {size} | {p:.2g} | {lo['label']} ({lo['ratio']:.3f}x) | "
                     f"{hi['label']} ({hi['ratio']:.3f}x) |")  # fmt: skip
    lines += ["", "Per axis, the median latency ratio between its values over configurations equal in every "
              "other axis (which choices cost time MACs do not count):", ""]  # fmt: skip
    lines += [f"- {axis}: {text}" for axis, text in axis_diffs(configs)]
    return lines


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--space", default=str(ROOT / "search_spaces" / "gc-fashion.yaml"))
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--passes", type=int, default=3, help="passes over the grid")
    p.add_argument("--skip-grid", action="store_true", help="repeatability only")
    p.add_argument("--resume", action="store_true", help="keep the grid's rows and (1-2)'s figures already written")
    p.add_argument("--one", help=argparse.SUPPRESS)
    p.add_argument("--core", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--train-on", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one is not None:
        return one(args.space, args.one, args.core)
    if args.train_on is not None:
        return trainer(args.space, args.train_on)

    from gcsearch.nn import latency
    from gcsearch.spacefile import load_space

    space = load_space(args.space)
    cfg = space.search.latency
    latency.check(cfg)
    device = cfg.device
    command = "python " + " ".join(shlex.quote(a) for a in [str(Path(__file__).relative_to(ROOT)), *sys.argv[1:]])
    saved = DATA / f"latency-repeatability-{device}.json"
    if args.resume and saved.is_file():
        quiet, loaded = json.loads(saved.read_text()).values()
    else:
        print("1. repeatability, quiet", flush=True)
        quiet = repeatability(args, loaded=False)
        print("2. repeatability beside a training", flush=True)
        loaded = repeatability(args, loaded=True)
        DATA.mkdir(parents=True, exist_ok=True)
        saved.write_text(json.dumps({"quiet": quiet, "loaded": loaded}))

    def ms(runs: list[dict]) -> list[float]:
        return [r["median_ms"] for r in runs]

    def ratio(runs: list[dict]) -> list[float]:
        return [r["vs_baseline"] for r in runs]

    with_gc = [name for name in PICKS if name != "baseline"]
    lines = [f"# Measured latency: repeatability, and MACs against latency over {Path(args.space).name}'s grid", "",
             f"Command: `{command}`. Machine: {platform.node()}, {os.cpu_count()} cores, {latency.hardware(cfg)}; "
             f"torch {__import__('torch').__version__}. Settings: {dataclasses.asdict(cfg)} (BatchNorm folded, "
             "eval mode, channels_last). "
             + ("No GPU was lent to this task: CPU figures only, no GPU figures (the same script with a space whose "
                "search.latency says `device: cuda, batch: 64` measures on a GPU)." if device == "cpu" else ""), "",
             f"## 1-2. Repeatability: {args.rounds} measurements per configuration as a search makes them", "",
             "Each in a fresh process pinned to one core, with an empty cache: the baseline alone, then the "
             "configuration against it (nn/latency.latency). A configuration's ms are its ratio to the baseline "
             "times the baseline's own measurement; the ratio is what ranks configurations in a search.", "",
             "| configuration | quiet: ms | CV of ms | x the baseline | CV of the ratio | beside a training: ms "
             "| CV of ms | x the baseline | CV of the ratio |", "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for name in PICKS:
        cells = []
        for runs in (quiet[name], loaded[name]):
            cells += [f"{statistics.median(ms(runs)):.4f}", f"{cv(ms(runs)):.2%}",
                      f"{statistics.median(ratio(runs)):.3f}x",
                      "-" if name == "baseline" else f"{cv(ratio(runs)):.2%}"]  # fmt: skip
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", f"Quiet, the ratio repeats within a CV of {max(cv(ratio(quiet[n])) for n in with_gc):.2%} and the ms "
              f"within {max(cv(ms(quiet[n])) for n in PICKS):.2%} (the baseline's own measurement, unpaired, carries "
              "the machine's slow phases into every ms of its search); beside a training, within "
              f"{max(cv(ratio(loaded[n])) for n in with_gc):.2%} and {max(cv(ms(loaded[n])) for n in PICKS):.2%}.",
              ""]  # fmt: skip
    raw: dict = {"quiet": quiet, "loaded": loaded}
    if not args.skip_grid:
        print("3. grid", flush=True)
        data_path = DATA / f"latency-grid-{device}.csv"
        rows = grid(args, data_path)
        lines += grid_section(rows, quiet, args.passes, cfg.timed_runs)
        png = RESULTS / f"bench_latency-{device}.png"
        scatter(by_config(rows), png)
        lines += ["", f"Scatter: `{png.relative_to(ROOT)}`; every measurement: `{data_path.relative_to(ROOT)}`."]
    lines += ["", "Raw (1-2): " + json.dumps(raw)]
    out = RESULTS / f"bench_latency-{device}.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines[:60]))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
