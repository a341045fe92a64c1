import optuna
import pytest
from optuna.trial import TrialState

from gcsearch.search.pruning import REFERENCE, FidelityGuard, KeepReferences, ParetoPruner, make_pruner
from gcsearch.search.strategy import Strategy


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


def arrivals(pruner, points, references=(), step=1):
    """Trials arriving one at a time at the rung ``step``, each judged when it arrives (as the decider asks
    the pruner right after the report): the pruner's decision for each, in arrival order. ``references``:
    indices of the trials the decider marks as reference trials."""
    study = optuna.create_study(direction="maximize", pruner=pruner)
    decisions = []
    for i, (acc, macs) in enumerate(points):
        t = study.ask()
        t.set_user_attr("macs", macs)
        if i in references:
            t.set_user_attr(REFERENCE, True)
        t.report(acc, step)
        decisions.append(bool(t.should_prune()))
        # Told as the decider tells a twin (median counts COMPLETE trials only).
        study.tell(t, None if decisions[-1] else acc, state=TrialState.PRUNED if decisions[-1] else None)
    return decisions


def test_rungs_skip_the_last_epoch():
    assert ParetoPruner(1, 2, 4).rungs() == [1, 2]
    assert ParetoPruner(1, 3, 10).rungs() == [1, 3, 9]
    assert ParetoPruner(2, 2, 2).rungs() == []


def test_pareto_pruner_keeps_the_front_and_the_best_of_the_rest():
    # Front: (0.9, 10) and the cheap (0.5, 1). Dominated: (0.8, 10), (0.7, 12), (0.6, 12), (0.4, 12).
    study, trials = study_with([(0.9, 10), (0.5, 1), (0.8, 10), (0.7, 12), (0.6, 12), (0.4, 12)])
    pruner = ParetoPruner(min_epochs=1, reduction_factor=3, max_epochs=4)
    decisions = [pruner.prune(study, study.get_trials()[t.number]) for t in trials]
    # All six at the rung: the front ranks 0 (two ahead of nobody), (0.8, 10) ranks 2: 2 / 6 is not above
    # 1 / 3, it goes on; the cheap, inaccurate trial is not killed for being cheap; the rest rank 3, 4, 5.
    assert decisions == [False, False, False, True, True, True]
    # Judged one arrival at a time, as in a search: (0.8, 10) arrives third, behind two: 2 / 3 > 1 / 3.
    points = [(0.9, 10), (0.5, 1), (0.8, 10), (0.7, 12), (0.6, 12), (0.4, 12)]
    assert arrivals(ParetoPruner(1, 3, 4), points) == [False, False, True, True, True, True]


def test_two_trials_at_a_rung_both_go_on_as_in_syne_tune():
    # Syne Tune's MOASHA (rf 2): the second trial at a rung ranks at most 1 of 2, and 1 / 2 is not above
    # 1 / 2, so it continues even when dominated; a dominated third ranks 2 of 3 and stops. The earlier
    # rule kept ceil(2 / 2) = 1 and pruned the second.
    assert arrivals(ParetoPruner(1, 2, 4), [(0.9, 10), (0.8, 10), (0.7, 10)]) == [False, False, True]
    alone, (only,) = study_with([(0.1, 10)])
    assert not ParetoPruner(1, 2, 4).prune(alone, alone.get_trials()[only.number])


@pytest.mark.parametrize("rf", [2, 3, 4])
def test_a_non_dominated_newcomer_is_never_pruned_on_a_tie(rf):
    # The baseline reaches the rung first; a cheaper, slightly less accurate newcomer is non-dominated. Both
    # are extremes of the front (infinite crowding distance): equal rank 0. The earlier rule kept one of the
    # two and broke the tie by trial number, pruning the newcomer.
    assert arrivals(ParetoPruner(1, rf, 10), [(0.90, 10), (0.85, 5)]) == [False, False]
    # A non-dominated newcomer at an extreme of a larger front also ranks 0.
    front = [(0.50, 1), (0.60, 2), (0.61, 3), (0.62, 4), (0.63, 5)]
    assert arrivals(ParetoPruner(1, rf, 10), [*front, (0.95, 20)])[-1] is False


def test_equal_points_share_a_rank():
    # Three trials with the same accuracy and MACs: none is ahead of another, so none is pruned (the earlier
    # rule kept ceil(3 / 2) = 2 and pruned the last by trial number).
    assert arrivals(ParetoPruner(1, 2, 4), [(0.9, 10)] * 3) == [False, False, False]


def test_the_crowding_distance_of_equal_points_does_not_depend_on_their_order():
    from gcsearch.search.pruning import crowding

    points = [(0.5, 1.0), (0.7, 2.0), (0.7, 2.0), (0.9, 3.0)]
    d = crowding(points, [0, 1, 2, 3])
    assert d[1] == d[2] == 2.0 and d[0] == d[3] == float("inf")


@pytest.mark.parametrize(
    ("name", "settings"),
    [("pareto", {"min_epochs": 1, "reduction_factor": 3}),
     ("successive_halving", {"min_epochs": 1, "reduction_factor": 3}),
     ("median", {"min_epochs": 0, "startup_trials": 1})],
)  # fmt: skip
def test_reference_trials_are_never_pruned_by_any_pruner(name, settings):
    # The paper default arrives at the rung after trials that dominate it (as it does after the baseline,
    # which the decider trains first): every pruner would stop it, but not when it is marked as a reference.
    # (The rung's fidelity is not what this tests: the guard is off.)
    strategy = Strategy("x", "tpe", name, tuple(settings.items()), guard=False)
    points = [(0.90, 10), (0.88, 5), (0.70, 20)]
    assert arrivals(make_pruner(strategy, 4), points)[-1] is True  # unmarked: pruned
    assert arrivals(make_pruner(strategy, 4), points, {2})[-1] is False
    # A reference still counts as a peer of the others: an unmarked loser behind it is pruned.
    behind = [(0.90, 10), (0.88, 5), (0.70, 20), (0.60, 20)]
    assert arrivals(make_pruner(strategy, 4), behind, {2})[2:] == [False, True]


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
    pruner = make_pruner(Strategy("x", "tpe", name, (("min_epochs", 1),)), 4)
    # Every pruner but none comes wrapped, so that it never stops a reference trial, and cuts only at a rung
    # that predicts.
    assert isinstance(pruner, cls) if name == "none" else isinstance(pruner, KeepReferences)
    guard = getattr(pruner, "inner", pruner)
    assert name == "none" or isinstance(guard, FidelityGuard)
    assert isinstance(getattr(guard, "inner", guard), cls)


def test_an_overflowing_first_front_is_cut_by_crowding_distance_not_kept_whole():
    # Six trials all on the first front (accuracy rises with MACs), rf 3.
    front = [(0.50, 1), (0.60, 2), (0.61, 3), (0.62, 4), (0.63, 5), (0.90, 10)]
    study, trials = study_with(front)
    new = ParetoPruner(1, 3, 4)
    kept = [not new.prune(study, study.get_trials()[t.number]) for t in trials]
    # The two extremes (infinite crowding distance) rank 0; the crowded middle ranks by its distance:
    # (0.63, 5), between 0.62 and 0.90, has the largest (0.7 + 6 / 9; rank 2, 2 / 6 not above 1 / 3);
    # (0.60, 2) (0.275 + 2 / 9), (0.61, 3) and (0.62, 4) (0.05 + 2 / 9 each) rank 3, 4 and 4, and go.
    assert kept == [True, False, False, False, True, True]
    old = ParetoPruner(1, 3, 4, front_first=True)
    # The earlier rule never pruned the first front, however large: no pruning at all here.
    assert not any(old.prune(study, study.get_trials()[t.number]) for t in trials)


def test_crowding_distance_by_hand():
    from gcsearch.search.pruning import crowding

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


def completed(study, curves):
    """COMPLETE twin trials with these (score at epoch 1, final score at epoch 3), one configuration each."""
    for rung, final in curves:
        t = study.ask()
        t.set_user_attr("macs", 10)
        t.set_user_attr("label", f"config {t.number}")
        t.report(rung, 1)
        t.should_prune()  # asked at the rung, as the decider asks after every epoch
        t.report(final, 3)
        study.tell(t, final)


@pytest.mark.parametrize("ranks_the_end", [False, True])
def test_a_rung_cuts_only_once_completed_trials_show_it_ranks_the_end(ranks_the_end):
    strategy = Strategy("x", "tpe", "successive_halving", (("min_epochs", 1), ("reduction_factor", 2)))
    study = optuna.create_study(direction="maximize", pruner=make_pruner(strategy, 3))
    finals = [0.50 + 0.03 * i for i in range(10)]
    # The rung's scores either rank the finals (the same order) or rank nothing (an order unrelated to them).
    rungs = [f - 0.2 for f in finals] if ranks_the_end else [0.30 + 0.01 * ((7 * i) % 10) for i in range(10)]
    newcomer = [(0.10, 10)]  # far below every trial at the rung: successive halving stops it, if it may
    completed(study, list(zip(rungs[:7], finals[:7], strict=True)))
    # 7 completed configurations: too few to judge the rung, so it does not cut, whatever it says.
    t = study.ask()
    t.set_user_attr("macs", 10)
    t.report(newcomer[0][0], 1)
    assert not t.should_prune()
    study.tell(t, state=TrialState.FAIL)
    completed(study, list(zip(rungs[7:], finals[7:], strict=True)))
    fidelity = study.pruner.inner.fidelity(study, 1)
    assert fidelity.configurations == 10 and fidelity.predicts is ranks_the_end
    # 10: a rung that ranks the end cuts; one that ranks nothing still does not.
    t = study.ask()
    t.set_user_attr("macs", 10)
    t.report(newcomer[0][0], 1)
    assert t.should_prune() is ranks_the_end
