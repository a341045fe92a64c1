"""Judge the search on what it recommends, against held-out seeds and fair baselines (issue 26).

Every strategy of ``strategy.fair`` (the space file's default, uniform random search without
replacement with and without pruning, ASHA, the default with each component removed, Optuna's random
sampler) is replayed through the real decider on the fine-tuned recording
(experiments/data/curves-finetune.csv: 40 configurations x 5 seeds). Replay seed r reads recorded seed
r mod 5, so the replays form 5 clusters that share one noise draw each.

- The recommendation at a budget (a share of the grid's epochs) is what a user would pick: the completed
  trial with the best score the search saw by then. Its **held-out regret** is the best configuration's
  mean over the 4 seeds the replay did not read, minus the pick's mean over those seeds: the truth never
  contains the seed that chose.
- Every strategy is paired with uniform random search on the same replay seed. The mean paired difference
  gets a **clustered bootstrap** interval (recorded seeds resampled, then replays within them), because
  replays of one recorded seed are not independent. Verdict: better / worse when the 95% interval excludes
  0; equivalent when the 90% interval lies within +-MARGIN (two one-sided tests at 0.05); else not resolved.
  Holm over the strategies' exact sign tests is given beside it.
- **Negative control**: the default and uniform search again with each configuration's MACs given to
  another (``replay.permuted_costs``). On this recording cheaper configurations also score higher, which
  rewards any MACs-aware strategy by coincidence; the control shows how much of the default's edge is that.

The default was chosen on another recording (gc-scratch.yaml's curves-gc.csv): these data did not choose it.

    python experiments/heldout_replay.py [--replays 40] [--shares 0.1 0.25 0.5 1.0] [--jobs 2]

Writes experiments/results/heldout-replay.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import statistics
import sys
import time
from pathlib import Path

from gcsearch import stats
from gcsearch.bench import curves, replay
from gcsearch.files import write_atomic
from gcsearch.search import strategy
from gcsearch.search.strategy import UNIFORM
from gcsearch.spacefile import load_space

ROOT = Path(__file__).resolve().parent.parent
CURVES = ROOT / "experiments" / "data" / "curves-finetune.csv"
OUT = ROOT / "experiments" / "results" / "heldout-replay.md"
MARGIN = 0.001  # accuracy: the fine-tuned recipe's paired noise (recipes-noise.md); a smaller regret is noise
BOOT = 4000


def held_out_truth(c: curves.Curves, seed: int) -> dict:
    others = [s for s in c.common_seeds() if s != seed]
    return {a: statistics.fmean(c.final(a, s) for s in others) for a in c.archs}


def regret(trace: replay.Trace, truth: dict, epochs: float) -> float:
    """Held-out regret of the pick at ``epochs``; a search that completed nothing by then regrets the
    spread of the whole recording (it has nothing to recommend)."""
    seen = [(score, arch) for spent, arch, score in trace.completed if spent <= epochs]
    best = max(truth.values())
    if not seen:
        return best - min(truth.values())
    return best - truth[max(seen, key=lambda s: s[0])[1]]


def clustered_interval(diffs: dict[int, list[float]], confidence: float, rng: random.Random) -> tuple[float, float]:
    """Percentile interval of the mean difference, resampling clusters (recorded seeds), then replays in them."""
    clusters = list(diffs.values())
    means = []
    for _ in range(BOOT):
        draw = [x for cl in rng.choices(clusters, k=len(clusters)) for x in rng.choices(cl, k=len(cl))]
        means.append(statistics.fmean(draw))
    means.sort()
    lo = means[int((1 - confidence) / 2 * BOOT)]
    hi = means[min(BOOT - 1, int((1 + confidence) / 2 * BOOT))]
    return lo, hi


def compare(a: list[float], b: list[float], cluster_of: list[int], rng: random.Random) -> dict:
    diffs: dict[int, list[float]] = {}
    for x, y, k in zip(a, b, cluster_of, strict=True):
        diffs.setdefault(k, []).append(x - y)
    flat = [d for cl in diffs.values() for d in cl]
    mean = statistics.fmean(flat)
    lo95, hi95 = clustered_interval(diffs, 0.95, rng)
    lo90, hi90 = clustered_interval(diffs, 0.90, rng)
    wins, losses = sum(d < 0 for d in flat), sum(d > 0 for d in flat)
    if hi95 < 0:
        verdict = "better"
    elif lo95 > 0:
        verdict = "worse"
    elif lo90 > -MARGIN and hi90 < MARGIN:
        verdict = "equivalent"
    else:
        verdict = "not resolved"
    return {"mean": mean, "ci": (lo95, hi95), "wins": wins, "losses": losses,
            "p": stats.sign_test_p(wins, losses), "verdict": verdict}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--replays", type=int, default=40)
    parser.add_argument("--shares", type=float, nargs="+", default=[0.1, 0.25, 0.5, 1.0])
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    start = time.perf_counter()
    space = load_space(ROOT / "search_spaces" / "gc.yaml")
    c = curves.Curves.of(curves.read(CURVES))
    full = len(c.archs) * c.epochs
    fair = strategy.fair(space.search)
    traces = replay.replay_many(c, space, fair, args.replays, 2, full, args.jobs)
    control = {}
    for k, st in enumerate(s for s in fair if s.name in ("default", UNIFORM)):
        # One permutation per run of the control; the uniform search ignores costs, so it is its own control.
        costs = replay.permuted_costs(c, seed=1000 + k)
        named = dataclasses.replace(st, name=f"{st.name} (MACs permuted)")
        control.update(replay.replay_many(c, space, [named], args.replays, 2, full, args.jobs, costs=costs))
    every = {**traces, **control}
    truths = {s: held_out_truth(c, s) for s in c.common_seeds()}
    cluster_of = [t.recorded_seed for t in traces[UNIFORM]]
    rng = random.Random(0)
    names = list(every)
    regrets = {(n, share): [regret(t, truths[t.recorded_seed], share * full) for t in every[n]]
               for n in names for share in args.shares}  # fmt: skip
    wall = time.perf_counter() - start
    blind = statistics.fmean(max(t.values()) - v for t in truths.values() for v in t.values())
    flat = round(statistics.fmean(sum(v >= max(t.values()) - MARGIN for v in t.values()) for t in truths.values()))

    lines = [
        "# The search judged on what it recommends: held-out regret against fair baselines",
        "",
        f"Command: `python {' '.join(sys.argv)}` ({wall:.0f} s). Recording: {CURVES.relative_to(ROOT)} "
        f"({len(c.archs)} configurations x {len(c.common_seeds())} seeds, {c.epochs} epochs; the grid of the "
        f"recording is {full} epochs). {args.replays} replays per strategy, 2 workers, replay seed r reads "
        f"recorded seed r mod {len(c.common_seeds())}. Regret: best held-out mean minus the pick's held-out mean "
        "(the 4 seeds the replay did not read). Paired with uniform random search on the same replay seed; "
        f"clustered bootstrap ({BOOT} draws, recorded seeds then replays); equivalence margin {MARGIN}. The "
        "default was chosen on another recording (curves-gc.csv, from scratch): these data did not choose it.",
        "",
    ]
    for share in args.shares:
        base = regrets[(UNIFORM, share)]
        results = {n: compare(regrets[(n, share)], base, cluster_of, rng) for n in names if n != UNIFORM}
        holm = dict(zip(results, stats.holm([r["p"] for r in results.values()]), strict=True))
        lines += [
            f"## Budget {share:.0%} of the grid's epochs ({share * full:.0f})",
            "",
            f"Uniform random search: mean held-out regret {statistics.fmean(base):.4f}, median "
            f"{statistics.median(base):.4f}. Scale: one configuration drawn at random regrets {blind:.4f} on "
            f"average; {flat} of the {len(c.archs)} configurations are within {MARGIN} of the best (held out, "
            "averaged over the recorded seeds).",
            "",
            "| strategy | mean regret | median | regret - uniform [95% clustered interval] | replays better-worse "
            "| sign test Holm p | verdict |",
            "|---|---|---|---|---|---|---|",
        ]
        for n, r in results.items():
            v = regrets[(n, share)]
            lines.append(f"| {n} | {statistics.fmean(v):.4f} | {statistics.median(v):.4f} | {r['mean']:+.4f} "
                         f"[{r['ci'][0]:+.4f}, {r['ci'][1]:+.4f}] | {r['wins']}-{r['losses']} | {holm[n]:.3g} "
                         f"| {r['verdict']} |")  # fmt: skip
        lines.append("")
        ctl = compare(regrets[("default (MACs permuted)", share)], regrets[("default", share)], cluster_of, rng)
        lines += [f"Negative control at {share:.0%}: default with MACs permuted minus default "
                  f"{ctl['mean']:+.4f} [{ctl['ci'][0]:+.4f}, {ctl['ci'][1]:+.4f}] ({ctl['verdict']} as a "
                  "regret difference: 'worse' means the default's edge leans on cost telling accuracy).",
                  ""]  # fmt: skip
    about = {st.name: st.about for st in fair}
    lines += ["## Strategies", "", *(f"- `{n}`: {about[n]}" for n in about), ""]
    text = "\n".join(lines)
    print(text)
    write_atomic(OUT, text)


if __name__ == "__main__":
    main()
