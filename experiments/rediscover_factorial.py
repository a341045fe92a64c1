"""Does the proxy rediscover the paper's ablation? The factorial verdicts on both recordings, and what the
default search recommends judged on held-out seeds. No training.

Per hypothesis of ``factorial.PAPER``: the verdict on the fine-tuned recording (gc.yaml's recipe) and on
the from-scratch one (gc-scratch.yaml's), beside the one-factor-at-a-time verdicts of the earlier
rediscovery (experiments/results/rediscover.md, 5 seeds from scratch: no axis separable after Holm).
Then the default search (gc.yaml's sampler and pruner, the real decider) replayed on the fine-tuned
recording, each replay reading one recorded seed: the configuration it recommends (best score it saw)
at 25% and 100% of the grid's epochs, and its regret by the mean of the other seeds (held out).

    python experiments/rediscover_factorial.py [--replays 10]

Writes experiments/results/rediscover-factorial.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections import Counter
from pathlib import Path

from gcsearch.analysis import factorial
from gcsearch.bench import curves, replay
from gcsearch.files import write_atomic
from gcsearch.spacefile import load_space

ROOT = Path(__file__).resolve().parent.parent
FINETUNE = ROOT / "experiments" / "data" / "curves-finetune.csv"
SCRATCH = ROOT / "experiments" / "data" / "curves-gc.csv"
# The OFAT verdicts of experiments/results/rediscover.md (5 seeds, from scratch, Holm over 11 comparisons).
OFAT = "not separable (Holm p >= 0.21)"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--replays", type=int, default=10)
    args = parser.parse_args()
    tuned_c = curves.Curves.of(curves.read(FINETUNE))
    tuned = factorial.analyse(factorial.observations(tuned_c))
    scratch = factorial.analyse(factorial.observations(curves.Curves.of(curves.read(SCRATCH))))
    by_name = {c.name: c for c in scratch.hypotheses}
    lines = [
        "# Rediscovery, factorial: the paper's hypotheses on both recordings",
        "",
        f"Command: `python {' '.join(sys.argv)}`. Fine-tuned: {FINETUNE.relative_to(ROOT)} ({tuned.configurations} GC "
        f"configurations x {len(tuned.seeds)} seeds); from scratch: {SCRATCH.relative_to(ROOT)} "
        f"({scratch.configurations} x {len(scratch.seeds)}). Verdicts of `gcsearch.factorial` (two-sided, Holm over "
        f"the {len(tuned.hypotheses)} hypotheses; 'equivalent' = TOST at +-{tuned.margin:g}); OFAT: "
        "experiments/results/rediscover.md (before).",
        "",
        "| hypothesis | paper (evidence) | fine-tuned: estimate [95%] | verdict | from scratch: estimate [95%] "
        "| verdict | OFAT, 5 seeds, from scratch |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in tuned.hypotheses:
        s = by_name.get(c.name)
        old = f"{s.estimate:+.4f} [{s.low:+.4f}, {s.high:+.4f}] | {s.verdict}" if s else "- | -"
        lines.append(f"| {c.name} | {c.paper} | {c.estimate:+.4f} [{c.low:+.4f}, {c.high:+.4f}] | **{c.verdict}** "
                     f"| {old} | {OFAT} |")  # fmt: skip
    lines += ["", "Position (outside the family, pairwise):", ""]
    lines += [
        f"- {c.name}: fine-tuned {c.estimate:+.4f} [{c.low:+.4f}, {c.high:+.4f}], {c.verdict}" for c in tuned.position
    ]

    space = load_space(ROOT / "search_spaces" / "gc.yaml")
    full = len(tuned_c.archs) * tuned_c.epochs
    seeds = tuned_c.common_seeds()
    picks: dict[float, list[tuple[str, float]]] = {0.25: [], 1.0: []}
    for r in range(args.replays):
        for share in picks:
            trace = replay.replay(tuned_c, space, "default", r, workers=2, budget_epochs=int(full * share))
            pick = max(trace.completed, key=lambda t: t[2])[1]
            others = [s for s in seeds if s != trace.recorded_seed]
            truth = {a: statistics.mean(tuned_c.final(a, s) for s in others) for a in tuned_c.archs}
            picks[share].append((pick.label(), max(truth.values()) - truth[pick]))
    lines += ["", f"The default search ({space.search.sampler} + {space.search.pruner}) replayed {args.replays} times "
              "on the fine-tuned recording (replay seed r reads recorded seed r mod 5); its recommendation and "
              "held-out regret (best mean of the other seeds minus the pick's):", ""]  # fmt: skip
    for share, got in picks.items():
        regrets = [g for _, g in got]
        common = Counter(label for label, _ in got).most_common(3)
        picked = ", ".join(f"{lab} ({n})" for lab, n in common)
        lines.append(f"- at {share:.0%} of the grid's {full} epochs: median regret {statistics.median(regrets):.4f} "
                     f"(max {max(regrets):.4f}); most picked: {picked}")  # fmt: skip
    text = "\n".join(lines) + "\n"
    print(text)
    write_atomic(ROOT / "experiments" / "results" / "rediscover-factorial.md", text)


if __name__ == "__main__":
    main()
