"""Which TPE settings should the default strategy ship? Replayed on the recorded curves, no training.

The default strategy (tpe + pareto) with each variant of the TPE options of ``options.TPE_OPTIONS``, on
the same replay seeds (each replay seed reads the same recorded seed in every variant, so variants are
paired). What the settings change is how often TPE proposes a configuration already trained (a
duplicate: it costs an ask, and the decider replaces it by the nearest untried configuration) and how
soon the search finds a top-3 configuration. Reports the tables of `gcsearch bench replay` and exact
sign tests against Optuna's defaults (prior_weight 1, 24 EI candidates).

The replay may only train the recorded configurations (60 of gc.yaml's 433), so it overstates the
duplicate share of a real search: the ranking of the variants is what it measures, and
experiments/duplicates.py counts a real search.

    python experiments/sampler_settings.py [--seeds 40]

Writes experiments/results/sampler-settings.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

from gcsearch import curves, options, replay
from gcsearch.spacefile import load_space

ROOT = Path(__file__).resolve().parent.parent
CURVES = ROOT / "experiments" / "data" / "curves-gc.csv"
OPTUNA_DEFAULTS = {"prior_weight": 1.0, "n_ei_candidates": 24}
VARIANTS = {
    "Optuna's defaults (prior_weight 1, 24 EI candidates)": OPTUNA_DEFAULTS,
    "prior_weight 2": {**OPTUNA_DEFAULTS, "prior_weight": 2.0},
    "prior_weight 3": {**OPTUNA_DEFAULTS, "prior_weight": 3.0},
    "prior_weight 5": {**OPTUNA_DEFAULTS, "prior_weight": 5.0},
    "1 EI candidate (a draw from l(x))": {**OPTUNA_DEFAULTS, "n_ei_candidates": 1},
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=40)
    args = parser.parse_args()
    space = load_space(ROOT / "search_spaces" / "gc.yaml")
    c = curves.Curves.of(curves.read(CURVES))
    full = len(c.archs) * c.epochs
    shipped = dict(options.TPE_OPTIONS)
    base = replay.resolve(space, "tpe+pareto")
    start = time.perf_counter()
    traces: dict[str, list[replay.Trace]] = {}
    for name, tpe in VARIANTS.items():
        variant = dataclasses.replace(base, name=name, options=base.options.with_tpe(**tpe))
        shipped_mark = " (shipped)" if {**OPTUNA_DEFAULTS, **shipped} == dict(variant.options.tpe) else ""
        traces[name + shipped_mark] = replay.replay_many(c, space, [variant], args.seeds, 2, full, 1)[name]
    traces["random+none"] = replay.replay_many(c, space, ["random+none"], args.seeds, 2, full, 1)["random+none"]
    wall = time.perf_counter() - start
    ref = traces[next(iter(traces))]
    lines = [
        "# TPE settings of the default strategy, replayed",
        "",
        f"Command: `python {' '.join(sys.argv)}` ({wall:.0f} s). Curves: {CURVES.relative_to(ROOT)} "
        f"({len(c.archs)} configurations x seeds {c.common_seeds()} x {c.epochs} epochs; grid total {full} epochs). "
        f"{args.seeds} replay seeds, 2 workers, budget = the grid's epochs, pruner pareto as shipped. "
        "Median [quartiles] over replay seeds.",
        "",
        replay.table(traces, full),
        "",
        "Against Optuna's defaults, paired by replay seed (seeds won-lost, exact sign test):",
        "",
        "| variant | top-3 sooner | higher HV at 25% | fewer duplicate proposals |",
        "|---|---|---|---|",
    ]
    for name, ts in traces.items():
        fewer = replay.versus(ts, ref, lambda t: t.duplicates / max(1, t.proposals), lower_is_better=True)
        lines.append(f"| {name} | {replay.top3_sooner(ts, ref)} | {replay.hv_higher(ts, ref, full // 4)} | {fewer} |")
    text = "\n".join(lines) + "\n"
    out = ROOT / "experiments" / "results" / "sampler-settings.md"
    out.write_text(text)
    print(text)
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
