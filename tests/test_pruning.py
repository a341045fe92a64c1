import optuna
import pytest

from gcsearch.pruning import ParetoPruner, make_pruner
from gcsearch.space import SearchConfig


def study_with(points_at_step1):
    """A single-objective twin study: trials that reported accuracy after epoch 1 and carry MACs."""
    study = optuna.create_study(direction="maximize")
    trials = []
    for acc, macs in points_at_step1:
        t = study.ask()
        t.set_user_attr("macs", macs)
        t.report(acc, 1)  # step = epochs finished
        trials.append(t)
    return study, trials


def test_rungs_skip_the_last_epoch():
    assert ParetoPruner(1, 2, 4).rungs() == [1, 2]
    assert ParetoPruner(1, 3, 10).rungs() == [1, 3, 9]
    assert ParetoPruner(2, 2, 2).rungs() == []


def test_pareto_pruner_keeps_the_front_and_the_best_of_the_rest():
    # Front: (0.9, 10) and the cheap (0.5, 1). Dominated: (0.8, 10), (0.7, 12), (0.6, 12), (0.4, 12).
    study, trials = study_with([(0.9, 10), (0.5, 1), (0.8, 10), (0.7, 12), (0.6, 12), (0.4, 12)])
    pruner = ParetoPruner(min_epochs=1, reduction_factor=3, max_epochs=4)
    decisions = [pruner.prune(study, study.get_trials()[t.number]) for t in trials]
    # keep = ceil(6 / 3) = 2 places: the front fills them; the cheap, inaccurate trial is not killed for being
    # cheap; every dominated trial is pruned.
    assert decisions == [False, False, True, True, True, True]


def test_pareto_pruner_is_lenient_with_few_peers():
    study, trials = study_with([(0.9, 10), (0.8, 10)])
    pruner = ParetoPruner(1, 2, 4)
    # keep = ceil(2 / 2) = 1: the dominated second trial goes.
    assert [pruner.prune(study, study.get_trials()[t.number]) for t in trials] == [False, True]
    alone, (only,) = study_with([(0.1, 10)])
    assert not pruner.prune(alone, alone.get_trials()[only.number])


def test_pareto_pruner_only_acts_at_rungs():
    study = optuna.create_study(direction="maximize")
    for acc in (0.9, 0.1):
        t = study.ask()
        t.set_user_attr("macs", 10)
        t.report(acc, 3)  # epoch 3 of 4: no rung at 3 with min 1, factor 2
    assert not ParetoPruner(1, 2, 4).prune(study, study.get_trials()[1])


@pytest.mark.parametrize(
    "name,cls",
    [
        ("none", optuna.pruners.NopPruner),
        ("median", optuna.pruners.MedianPruner),
        ("successive_halving", optuna.pruners.SuccessiveHalvingPruner),
        ("hyperband", optuna.pruners.HyperbandPruner),
        ("pareto", ParetoPruner),
    ],
)
def test_make_pruner(name, cls):
    assert isinstance(make_pruner(SearchConfig(pruner=name, pruner_settings={"min_epochs": 1}), 4), cls)
