"""Judge the search on what it recommends, against held-out seeds, fair baselines and the bounds an oracle sets.

Every strategy of ``strategy.fair`` (the space file's default, uniform random search without replacement with
and without pruning, ASHA, the default with each component removed, Optuna's random sampler) is replayed
through the real decider on a recording. Replay seed r reads recorded seed r mod S, so the replays form S
clusters that share one noise draw each.

- The recommendation at a budget (a share of the grid's epochs) is what a user would pick: the completed
  trial with the best score the search saw by then. Its **held-out regret** is the best configuration's mean
  over the seeds the replay did not read, minus the pick's mean over those seeds (``bench.heldout``).
- Every strategy is paired with uniform random search on the same replay seed; the mean paired difference gets
  a **clustered bootstrap** interval (recorded seeds, then replays within them). Verdict: better / worse when
  the 95% interval excludes 0; equivalent when the 90% interval lies within +-margin; else not resolved.
- **Bounds**: the oracle (recommends the held-out best) and the anti-oracle (the worst) against uniform search
  are the largest gain and loss any strategy could show. Where the oracle too is within the margin, the
  recording cannot tell strategies apart, and "equivalent" is refused ("cannot tell").
- **Regret after 1-4 completed trials**, where strategies that order their first trials differently differ.
- **Negative control**: the default with each configuration's MACs given to another (``replay.permuted_costs``).

    python experiments/heldout_replay.py [--curves experiments/data/curves-gc.csv --space search_spaces/gc-scratch.yaml]
        [--replays 40] [--shares 0.1 0.25 0.5 1.0] [--margin 0.001] [--jobs 2] [--out NAME] [--reads mixed]

With ``--reads mixed`` (for a recording of many configurations at few seeds): each replay reads each configuration
at a seed drawn for it and is judged on the others (``replay.mixed_reads``, ``heldout.truth_of``), so every replay
is a noise draw of its own and the unit of the intervals (bootstrap over replays, sign test); a budget is a number
of trials, a share of the recorded configurations, given to the search as ``--trials`` (its references and random
start-up scale with it), in epochs as much as those trials cost trained to the end.

Writes experiments/results/<NAME>.md (default: heldout-replay-<curves stem>.md).
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
from gcsearch.bench import curves, heldout, replay
from gcsearch.files import write_atomic
from gcsearch.search import strategy
from gcsearch.search.strategy import UNIFORM
from gcsearch.spacefile import load_space
from gcsearch.testing import shown

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--curves", default=str(ROOT / "experiments" / "data" / "curves-finetune.csv"))
    parser.add_argument("--space", default=str(ROOT / "search_spaces" / "gc-fashion.yaml"))
    parser.add_argument("--replays", type=int, default=40)
    parser.add_argument("--shares", type=float, nargs="+", default=[0.1, 0.25, 0.5, 1.0])
    parser.add_argument("--margin", type=float, default=0.001, help="accuracy: a smaller regret is noise")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", help="results file name (without .md)")
    parser.add_argument("--latency", help="mixed reads: search objectives [accuracy, latency] with this table of "
                        "measured latency (experiments/latency_table.py)")  # fmt: skip
    parser.add_argument("--reads", choices=["seed", "mixed"], default="seed",
                        help="seed: a replay reads one recorded seed (clusters: recorded seeds); mixed: each "
                        "configuration its own (clusters: replays)")  # fmt: skip
    args = parser.parse_args()
    if args.reads == "mixed":
        return mixed(args)
    start = time.perf_counter()
    space = load_space(args.space)
    c = curves.Curves.of(curves.read(args.curves))
    full = len(c.archs) * c.epochs
    fair = strategy.fair(space.search)
    traces = replay.replay_many(c, space, fair, args.replays, 2, full, args.jobs)
    # One permutation of costs for the control; uniform search ignores costs, so it is its own control.
    control = dataclasses.replace(fair[0], name="default (MACs permuted)")
    traces.update(replay.replay_many(c, space, [control], args.replays, 2, full, args.jobs,
                                     costs=replay.permuted_costs(c, seed=1000)))  # fmt: skip
    truths = {s: heldout.truth(c, s) for s in c.common_seeds()}
    held = [truths[t.recorded_seed] for t in traces[UNIFORM]]
    clusters = [t.recorded_seed for t in traces[UNIFORM]]
    rng = random.Random(0)
    names = list(traces)
    wall = time.perf_counter() - start
    seeds = len(c.common_seeds())
    within = round(
        statistics.fmean(sum(v >= max(t.values()) - args.margin for v in t.values()) for t in truths.values())
    )
    out = ROOT / "experiments" / "results" / f"{args.out or 'heldout-replay-' + Path(args.curves).stem}.md"

    lines = [
        "# The search judged on what it recommends: held-out regret against fair baselines and an oracle",
        "",
        f"Command: `python {' '.join(sys.argv)}` ({wall:.0f} s). Recording: {shown(args.curves)} ({len(c.archs)} "
        f"configurations x {seeds} seeds, {c.epochs} epochs; the grid is {full} epochs); space {shown(args.space)}. "
        f"{args.replays} replays per strategy, 2 workers; replay seed r reads recorded seed r mod {seeds}. "
        f"Regret: best held-out mean minus the pick's (the {seeds - 1} seeds the replay did not read). Paired with "
        f"uniform random search on the same replay seed; clustered bootstrap ({heldout.BOOT} draws); equivalence "
        f"margin {args.margin}. {within} of the {len(c.archs)} configurations are within the margin of the best "
        "(held out, averaged over the recorded seeds).",
        "",
    ]
    for share in args.shares:
        regrets = {n: [heldout.regret(t, truths[t.recorded_seed], share * full) for t in traces[n]] for n in names}
        base = regrets[UNIFORM]
        oracle, anti = heldout.bounds(base, held, clusters, args.margin, rng)
        results = {n: heldout.compare(regrets[n], base, clusters, args.margin, rng, oracle.within_margin)
                   for n in names if n != UNIFORM}  # fmt: skip
        holm = dict(zip(results, stats.holm([r.p for r in results.values()]), strict=True))
        tell = ("cannot tell strategies apart: even an oracle gains less than the margin"
                if oracle.within_margin else "can tell strategies apart")  # fmt: skip
        lines += [
            f"## Budget {share:.0%} of the grid's epochs ({share * full:.0f})",
            "",
            f"Uniform random search: mean held-out regret {statistics.fmean(base):.4f}. Bounds (regret - uniform's): "
            f"oracle {oracle.mean:+.4f} [{oracle.low:+.4f}, {oracle.high:+.4f}], anti-oracle {anti.mean:+.4f} "
            f"[{anti.low:+.4f}, {anti.high:+.4f}]: the recording {tell}.",
            "",
            "| strategy | mean regret | regret - uniform [95% clustered interval] | replays better-worse "
            "| sign test Holm p | verdict |",
            "|---|---|---|---|---|---|",
        ]
        for n, r in results.items():
            interval = f"{r.mean:+.4f} [{r.low:+.4f}, {r.high:+.4f}]"
            lines.append(f"| {n} | {statistics.fmean(regrets[n]):.4f} | {interval} | {r.wins}-{r.losses} "
                         f"| {holm[n]:.3g} | {r.verdict} |")  # fmt: skip
        lines.append("")
    lines += ["## Regret after the first completed trials", "",
              "Mean held-out regret of the pick after k completed trials (replays that completed fewer are left "
              "out of that column; their count in brackets).", "",
              "| strategy | after 1 | after 2 | after 3 | after 4 |", "|---|---|---|---|---|"]  # fmt: skip
    for n in names:
        cells = []
        for k in range(1, 5):
            values = [heldout.regret_after(t, truths[t.recorded_seed], k) for t in traces[n]]
            done = [v for v in values if v != float("inf")]
            cells.append(f"{statistics.fmean(done):.4f} ({len(done)})" if done else "-")
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    about = {st.name: st.about for st in fair}
    lines += ["", "## Strategies", "", *(f"- `{n}`: {about[n]}" for n in about), ""]
    text = "\n".join(lines)
    print(text)
    write_atomic(out, text)


def mixed(args: argparse.Namespace) -> None:
    """Budgets in trials, each replay its own noise draw (module docstring: --reads mixed)."""
    start = time.perf_counter()
    space = load_space(args.space)
    latencies = None
    if args.latency:  # the search's second objective is the measured latency, told as a trial measures it
        from latency_table import read as read_latency

        latencies = read_latency(Path(args.latency))
        space = space.with_search(objectives=("accuracy", "latency"))
    c = curves.Curves.of(curves.read(args.curves))
    configs = len(c.archs)
    fair = strategy.fair(space.search)
    names = [st.name for st in fair]
    extra = space.search.reference_seeds - 1
    truths = [heldout.truth_of(c, replay.mixed_reads(c, r), extra) for r in range(args.replays)]
    clusters = list(range(args.replays))
    rng = random.Random(0)
    lines = ["# The search judged on what it recommends: held-out regret against uniform search and an oracle", ""]
    body = []
    for share in args.shares:
        trials = max(2, round(share * configs))
        budget = trials * c.epochs
        traces = replay.replay_many(c, space, fair, args.replays, 2, budget, args.jobs, trials=trials, mixed=True,
                                    latencies=latencies)  # fmt: skip
        regrets = {n: [heldout.regret(t, truths[t.seed], budget) for t in traces[n]] for n in names}
        base = regrets[UNIFORM]
        oracle, anti = heldout.bounds(base, truths, clusters, args.margin, rng)
        results = {n: heldout.compare(regrets[n], base, clusters, args.margin, rng, oracle.within_margin)
                   for n in names if n != UNIFORM}  # fmt: skip
        holm = dict(zip(results, stats.holm([r.p for r in results.values()]), strict=True))
        split = strategy.split(trials, space.search.reference_seeds, 2, space.search.sampler)
        body += [f"## {trials} trials ({share:.0%} of the {configs} recorded configurations; {budget} epochs)", "",
                 f"The default's budget: {split.text()}. Uniform random search: mean held-out regret "
                 f"{statistics.fmean(base):.4f}. Bounds (regret - uniform's): oracle {oracle.mean:+.4f} "
                 f"[{oracle.low:+.4f}, {oracle.high:+.4f}], anti-oracle {anti.mean:+.4f} [{anti.low:+.4f}, "
                 f"{anti.high:+.4f}].", "",
                 "| strategy | mean regret | regret - uniform [95% bootstrap over replays] | replays better-worse | "
                 "sign test Holm p | verdict |", "|---|---|---|---|---|---|"]  # fmt: skip
        for n, r in results.items():
            body.append(f"| {n} | {statistics.fmean(regrets[n]):.4f} | {r.mean:+.4f} [{r.low:+.4f}, {r.high:+.4f}] | "
                        f"{r.wins}-{r.losses} | {holm[n]:.3g} | {r.verdict} |")  # fmt: skip
        body.append("")
    wall = time.perf_counter() - start
    lines += [f"Command: `python {' '.join(sys.argv)}` ({wall:.0f} s). Recording: {shown(args.curves)} ({configs} "
              f"configurations, {c.epochs} epochs); space {shown(args.space)}. {args.replays} replays per strategy and "
              "budget, 2 workers; each replay reads each configuration at a seed drawn for it and judges the pick on "
              f"the configuration's other seeds (a reference's, but the {extra} its extra trials read). Objectives: "
              f"{', '.join(space.search.objectives)}"
              + (f" (latency measured: {shown(args.latency)})" if args.latency else "")
              + ". Regret: the "
              "best held-out score minus the pick's. Paired with uniform random search on the same replay (the same "
              f"reads); bootstrap over replays ({heldout.BOOT} draws), sign test Holm over the strategies; equivalence "
              f"margin {args.margin}.", "", *body, "## Strategies", "",
              *(f"- `{st.name}`: {st.about}" for st in fair), ""]  # fmt: skip
    text = "\n".join(lines)
    print(text)
    out = ROOT / "experiments" / "results" / f"{args.out or 'heldout-replay-' + Path(args.curves).stem}.md"
    write_atomic(out, text)


if __name__ == "__main__":
    main()
