"""The objective table (gcsearch/objectives.py): every row is readable wherever objectives are read."""

import dataclasses

import optuna
import pytest

from gcsearch.arch import ArchConfig
from gcsearch.epoch import Epoch, Outcome
from gcsearch.nn.flops import SpaceCoster
from gcsearch.objectives import OBJECTIVES, costs
from gcsearch.pareto import TrialRecord
from gcsearch.search.decider import Decider
from gcsearch.settings import SearchConfig
from gcsearch.spacefile import load_space
from tests.conftest import ROOT


@pytest.mark.parametrize("name", sorted(OBJECTIVES))
def test_each_objective_has_a_direction_a_record_field_and_a_source(name):
    o = OBJECTIVES[name]
    assert o.direction in ("maximize", "minimize") and o.source in ("training", "coster", "measurement")
    record = TrialRecord(0, "COMPLETE", ArchConfig(), 0.5, 10, 20, 3, 1.0, latency=2.5)
    assert record.objective(name) == {"accuracy": 0.5, "macs": 10, "params": 20, "latency": 2.5}[name]
    assert SearchConfig(objectives=("accuracy", name) if name != "accuracy" else ("accuracy",)).directions[-1] == (
        o.direction
    )


def test_the_decider_tells_each_objective_from_its_source():
    smoke = load_space(ROOT / "search_spaces" / "smoke.yaml")
    space = dataclasses.replace(smoke, search=dataclasses.replace(smoke.search, objectives=("params", "accuracy"),
                                                                  pruner="none", pruner_settings={}))  # fmt: skip
    d = Decider(space, optuna.storages.InMemoryStorage(), 1, coster=SpaceCoster(space.backbone))
    p = d.propose()
    for e in range(space.train.epochs):
        d.report(p.number, Epoch(e, 0.7, 0.0, 0.0, 1.0))
    d.finish(p.number, Outcome.ENDED, Epoch(space.train.epochs - 1, 0.7, 0.0, 0.0, 1.0))
    # In the space file's order: params (a coster's, set before training), then accuracy (the training's).
    assert d.main.trials[p.number].values == [p.params, 0.7]
    assert costs(("accuracy", "params", "latency")) == ["params", "latency"] and costs(("accuracy",)) == ["macs"]
