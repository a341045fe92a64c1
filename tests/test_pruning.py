import optuna
import pytest

from gcsearch.pruning import ParetoPruner, make_pruner
from gcsearch.settings import SearchConfig


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


def test_an_overflowing_first_front_is_cut_by_crowding_distance_not_kept_whole():
    # Six trials all on the first front (accuracy rises with MACs), keep = ceil(6 / 3) = 2.
    front = [(0.50, 1), (0.60, 2), (0.61, 3), (0.62, 4), (0.63, 5), (0.90, 10)]
    study, trials = study_with(front)
    new = ParetoPruner(1, 3, 4)
    kept = [not new.prune(study, study.get_trials()[t.number]) for t in trials]
    # MO-ASHA / NSGA-II: the two extremes (infinite crowding distance) survive, the crowded middle goes.
    assert kept == [True, False, False, False, False, True]
    old = ParetoPruner(1, 3, 4, front_first=True)
    # The earlier rule never pruned the first front, however large: no pruning at all here.
    assert not any(old.prune(study, study.get_trials()[t.number]) for t in trials)


def test_crowding_distance_by_hand():
    from gcsearch.pruning import crowding

    points = [(0.0, 0.0), (0.5, 0.25), (1.0, 1.0)]
    d = crowding(points, [0, 1, 2])
    # The middle point: (1.0 - 0.0) / 1 in the first objective + (1.0 - 0.0) / 1 in the second = 2.
    assert d[0] == d[2] == float("inf") and d[1] == 2.0


def test_params_is_a_cost_when_it_is_an_objective():
    # A (0.9, 10 MACs, 1000 params) dominates E (0.85, 10, 5000); B (0.8, 10, 10) is the leanest in params.
    study, (a, b, e) = study_with([(0.9, 10), (0.8, 10), (0.85, 10)])
    for t, params in ((a, 1000), (b, 10), (e, 5000)):
        t.set_user_attr("params", params)
    two = ParetoPruner(1, 2, 4, objectives=("accuracy", "macs"))
    three = ParetoPruner(1, 2, 4, objectives=("accuracy", "macs", "params"))
    # keep = 2. On (accuracy, MACs) B is last (A, then E, dominate it); with params it joins A's front.
    assert two.prune(study, study.get_trials()[b.number])
    assert not three.prune(study, study.get_trials()[b.number])
