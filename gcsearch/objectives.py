"""What a search can optimise, one row each: the name a space file gives it, its direction, its unit, and where its
value comes from. The decider, the records, the reports, the export and the pruner read this table, so a new
objective is a row here, a field of ``pareto.TrialRecord`` (its value in a trial's record), and the code that
produces it (a coster before training, or a measurement the trial makes). Pure Python.

Sources:
- ``training``: the score the training reaches (accuracy, of the EMA weights when the recipe keeps them);
- ``coster``: known before training from the configuration alone (``nn/flops.SpaceCoster``), given to the decider;
- ``measurement``: measured by the trial before it trains (``nn/latency.py``), on the hardware it runs on.
A cost (anything but the training's score) is what the Pareto pruner ranks a rung's trials on beside the score.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Objective:
    name: str
    direction: str  # "maximize" or "minimize"
    unit: str  # for tables and axes
    source: str  # "training", "coster" or "measurement"
    attr: str  # the trial's user attribute (search/attrs.py) that holds its value
    description: str

    @property
    def is_cost(self) -> bool:
        return self.source != "training"


OBJECTIVES: dict[str, Objective] = {
    o.name: o
    for o in (
        Objective("accuracy", "maximize", "", "training", "accuracy", "validation accuracy at the last epoch"),
        Objective("macs", "minimize", "MACs", "coster", "macs", "multiply-accumulates per image (flops.py)"),
        Objective("params", "minimize", "params", "coster", "params", "parameters"),
        Objective(
            "latency",
            "minimize",
            "ms",
            "measurement",
            "latency",
            "the whole model's time per batch on search.latency's device, against the baseline",
        ),
    )
}
DIRECTIONS = {name: o.direction for name, o in OBJECTIVES.items()}


def costs(names: tuple[str, ...] | list[str]) -> list[str]:
    """The cost objectives among ``names``, or MACs when there is none (a rung still ranks by a cost)."""
    return [n for n in names if OBJECTIVES[n].is_cost] or ["macs"]
