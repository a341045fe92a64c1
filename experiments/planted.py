"""Would the pipeline find an optimum that is there? Known effects planted into recorded curves, no training.

Background: a recording with its GC configurations' curve sets shuffled among their labels (all seeds of one
configuration move together, so seed pairing and the real noise stay; the real effects become a random
background); each label keeps its own MACs. Three shapes of plant (``gcsearch.analysis.planted``), each added
in proportion to epoch progress to the accuracy and the EMA accuracy:

- additive: +delta for each of the paper's levels a configuration holds (att, add, layernorm, 1/4, c3-c5):
  main effects only, TPE's best case; the factorial's power to resolve each planted hypothesis;
- cell: +3 delta for the configurations of one fusion x position cell: an interaction; the factorial's
  interaction screen (fusion:position resolved, Holm);
- needle: +3 delta for one configuration drawn per permutation: nothing to model.

For each shape, delta (in units of the recording's paired noise) and permutation, the default search and
uniform random search without replacement are replayed (the real decider; one recorded seed; a share of the
grid's epochs): a hit is a recommendation within the paired noise of the best planted configuration, judged on
the mean of the other seeds (held out). The two are paired by permutation: hit rates, their difference with a
95% interval, McNemar's exact test.

    python experiments/planted.py [--curves ...] [--space ...] [--permutations 200] [--deltas 0 2 4 8] [--jobs 2]

Writes experiments/results/planted.md. Each permutation's outcome is appended to
experiments/data/planted-<recording>.jsonl as it finishes, so a stopped run continues where it was (delete the
file to start over).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import time
from pathlib import Path

from gcsearch.analysis import factorial, planted
from gcsearch.bench import curves, replay
from gcsearch.files import write_atomic
from gcsearch.search.strategy import UNIFORM, Strategy
from gcsearch.spacefile import load_space
from gcsearch.testing import shown

ROOT = Path(__file__).resolve().parent.parent
STATE: dict = {}


def setup(path: str, space_file: str, share: float) -> None:
    points = curves.read(path)
    recorded = curves.Curves.of(points)
    space = load_space(space_file)
    noise = factorial.analyse(factorial.observations(recorded)).seed_sd * 2**0.5  # paired: sd of a difference
    strategies = [Strategy.parse("default", space.search), Strategy.parse(UNIFORM, space.search)]
    budget = int(len(recorded.archs) * recorded.epochs * share)
    STATE.update(points=points, epochs=recorded.epochs, space=space, noise=noise, budget=budget, strategies=strategies)


def one(job: tuple[str, float, int]) -> dict:
    """One permutation of one shape at one delta: the factorial's calls and each strategy's hit."""
    shape, units, r = job
    s = STATE
    c = curves.Curves.of(planted.plant(planted.background(s["points"], r), units * s["noise"], s["epochs"], shape, r))
    out: dict = {"shape": shape, "units": units, "r": r}
    if shape in ("additive", "cell"):
        analysis = factorial.analyse(factorial.observations(c))
        # Where the gate start varies, a fusion hypothesis is judged at each start ("add > mul/half", ...): the
        # plant favours add over every gated fusion, so each of them must agree.
        verdicts = {x.name: x.verdict for x in analysis.hypotheses}
        judged = {h.name: [v for n, v in verdicts.items() if n == h.name or n.startswith(h.name + "/")]
                  for h in planted.PLANTED}  # fmt: skip
        out["agree"] = {name: bool(vs) and all(v == "agree" for v in vs) for name, vs in judged.items()}
        out["wrong"] = any(v == "disagree" for vs in judged.values() for v in vs)
        out["interaction"] = any(
            i.axes == ("fusion", "position") and i.p_adjusted <= 0.05 for i in analysis.interactions
        )
    for st in s["strategies"]:
        trace = replay.replay(c, s["space"], st, r, workers=2, budget_epochs=s["budget"])
        out[st.name] = planted.held_out_hit(c, trace, s["noise"])
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--curves", default=str(ROOT / "experiments" / "data" / "curves-rediscover.csv"))
    parser.add_argument("--space", default=str(ROOT / "search_spaces" / "gc-rediscover.yaml"))
    parser.add_argument("--permutations", type=int, default=200)
    parser.add_argument("--deltas", type=float, nargs="+", default=[0, 2, 4, 8])
    parser.add_argument("--shapes", nargs="+", default=list(planted.SHAPES))
    parser.add_argument("--share", type=float, default=planted.SHARE)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    start = time.perf_counter()
    setup(args.curves, args.space, args.share)
    # The outcomes so far, keyed by job; the share is part of the file's name since it changes every hit.
    done_path = ROOT / "experiments" / "data" / f"planted-{Path(args.curves).stem}-{args.share:g}.jsonl"
    done = {}
    if done_path.is_file():
        for line in done_path.read_text().splitlines():
            try:
                x = json.loads(line)
            except json.JSONDecodeError:
                continue  # blank, or torn by a kill mid-write: that permutation runs again
            done[(x["shape"], x["units"], x["r"])] = x
    jobs = [(shape, u, r) for shape in args.shapes for u in args.deltas for r in range(args.permutations)]
    todo = [j for j in jobs if j not in done]
    print(f"{len(jobs) - len(todo)} of {len(jobs)} permutations already in {done_path.name}", flush=True)
    with (
        multiprocessing.get_context("fork").Pool(
            args.jobs, initializer=setup, initargs=(args.curves, args.space, args.share)
        ) as pool,
        open(done_path, "a") as log,
    ):
        for i, x in enumerate(pool.imap_unordered(one, todo, chunksize=2), 1):
            log.write(json.dumps(x) + "\n")
            log.flush()
            done[(x["shape"], x["units"], x["r"])] = x
            if i % 50 == 0:
                print(f"{i} of {len(todo)}", flush=True)
    results = [done[j] for j in jobs]
    wall = time.perf_counter() - start
    names = [st.name for st in STATE["strategies"]]
    lines = [
        "# Planted effects: would the pipeline find an optimum that is there?",
        "",
        f"Command: `python {' '.join(sys.argv)}` ({wall:.0f} s, last sitting). Background: {shown(args.curves)} with "
        f"the GC configurations' curve sets permuted among their labels ({args.permutations} permutations per shape "
        f"and delta, seeds and costs kept). delta in units of the recording's paired noise {STATE['noise']:.4f}. "
        f"Search: replayed at {args.share:.0%} of the grid's epochs ({STATE['budget']}), 2 workers, one recorded "
        f"seed per replay; a hit is a recommendation within {STATE['noise']:.4f} of the best planted "
        "configuration by the mean of the other seeds (held out). Default and uniform search paired by "
        "permutation: difference in hit rate with a 95% Wald interval for paired proportions, McNemar's exact p.",
        "",
        "| shape | delta / noise | hit: default | hit: uniform | default - uniform [95%] | McNemar p "
        "| factorial: every planted hypothesis agreed | any wrong direction | fusion:position resolved |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for shape in args.shapes:
        for units in args.deltas:
            rows = [x for x in results if x["shape"] == shape and x["units"] == units]
            pair = planted.paired_hits([x[names[0]] for x in rows], [x[names[1]] for x in rows])
            if shape == "additive":
                agreed = f"{sum(all(x['agree'].values()) for x in rows) / len(rows):.2f}"
                wrong = f"{sum(x['wrong'] for x in rows) / len(rows):.2f}"
            else:
                agreed = wrong = "-"
            inter = f"{sum(x['interaction'] for x in rows) / len(rows):.2f}" if shape in ("additive", "cell") else "-"
            diff = f"{pair.difference:+.2f} [{pair.low:+.2f}, {pair.high:+.2f}]"
            lines.append(f"| {shape} | {units:g} | {pair.a:.2f} | {pair.b:.2f} | {diff} | {pair.p:.3g} | {agreed} "
                         f"| {wrong} | {inter} |")  # fmt: skip
    lines += ["", "At delta 0 a hit is no evidence of finding a plant (none is there): it is how often a pick lands "
              "within the noise of the best by chance; the factorial's calls there are false discoveries."]  # fmt: skip
    text = "\n".join(lines) + "\n"
    print(text)
    write_atomic(ROOT / "experiments" / "results" / "planted.md", text)


if __name__ == "__main__":
    main()
