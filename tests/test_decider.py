"""The decider alone: Optuna in memory, no Ray, no training."""

import dataclasses
import subprocess
import sys

import optuna
import pytest

from gcsearch import ArchConfig
from gcsearch.epoch import Epoch, Outcome
from gcsearch.nn.flops import SpaceCoster
from gcsearch.search import attrs
from gcsearch.search.decider import Decider, grid_plan
from gcsearch.spacefile import load_space
from tests.conftest import ROOT

SMOKE = load_space(ROOT / "search_spaces" / "smoke.yaml")
COST = SpaceCoster(SMOKE.backbone)  # the smoke backbone's real costs, as a search prices them


def space_with(**search):
    return dataclasses.replace(SMOKE, search=dataclasses.replace(SMOKE.search, **search))


def epoch(e, acc):
    return Epoch(e, acc, loss=0.0, train_loss=0.0, seconds=float(e + 1))


def decider(space, storage, new_trials, **kwargs):
    coster = COST if space.backbone == SMOKE.backbone else SpaceCoster(space.backbone)
    return Decider(space, storage, new_trials, coster=coster, **kwargs)


def train_to_end(d, proposal, acc):
    for e in range(d.space.train.epochs):
        assert not d.report(proposal.number, epoch(e, acc))
    d.finish(proposal.number, Outcome.ENDED, epoch(d.space.train.epochs - 1, acc))


def test_within_a_subset_only_its_configurations_train_and_outside_proposals_fail():
    space = space_with(pruner="none", pruner_settings={}, sampler="random")
    within = space.grid()[:4]  # a recording of 4 of the 9 configurations
    d = decider(space, optuna.storages.InMemoryStorage(), new_trials=10, within=within)
    trained = []
    while (p := d.propose()) is not None:
        trained.append(p.arch)
        train_to_end(d, p, 0.5)
    assert sorted(a.label() for a in trained) == sorted(a.label() for a in within)  # each once, no loop
    outside = [t for t in d.main.trials if "outside the trainable set" in t.user_attrs.get("reason", "")]
    assert d.outside == len(outside) > 0
    assert all(t.state == optuna.trial.TrialState.FAIL and ArchConfig.from_dict(t.user_attrs["arch"]) not in within
               for t in outside)  # fmt: skip


def test_a_duplicate_is_replaced_by_an_untried_configuration_nearest_to_it():
    from gcsearch.search.decider import axes_apart

    space = space_with(pruner="none", pruner_settings={}, sampler="random")
    d = decider(space, optuna.storages.InMemoryStorage(), new_trials=len(space.grid()))
    while (p := d.propose()) is not None:
        replaced = [t for t in d.main.trials if "duplicate_of" in t.user_attrs]
        if replaced and replaced[-1].number == p.number - 1:  # this proposal replaces that duplicate
            wanted = ArchConfig.from_dict(replaced[-1].user_attrs["arch"])
            trained = {ArchConfig.from_dict(t.user_attrs["arch"]) for t in d.main.trials if "twin" in t.user_attrs}
            untried_before = [a for a in space.grid() if a not in trained or a == p.arch]
            assert axes_apart(p.arch, wanted) == min(axes_apart(a, wanted) for a in untried_before)
        train_to_end(d, p, 0.5)
    assert d.duplicates > 0


def test_a_budget_larger_than_the_space_ends_with_a_reason():
    space = space_with(pruner="none", pruner_settings={}, sampler="random")
    d = decider(space, optuna.storages.InMemoryStorage(), new_trials=len(space.grid()) + 5)
    while (p := d.propose()) is not None:
        train_to_end(d, p, 0.5)
    assert d.asked == len(space.grid()) and d.ended == f"every configuration has been trained ({d.asked} trials)"


def test_references_first_then_the_budget_then_none():
    d = decider(space_with(pruner="none", pruner_settings={}), optuna.storages.InMemoryStorage(), new_trials=4)
    proposals = []
    while (p := d.propose()) is not None:
        proposals.append(p)
        train_to_end(d, p, 0.5)
    # The baseline first, then the paper default as a point of the space (smoke.yaml has ratio 1/4 only, so
    # its reference is the paper default at 1/4), the rule bench record and ablate use too.
    assert [p.arch for p in proposals[:2]] == [ArchConfig(), SMOKE.reference()] and SMOKE.reference().ratio == 0.25
    assert len(proposals) == 4 and len({p.arch for p in proposals}) == 4
    # MACs and params were recorded before training, and the objectives told in the file's order.
    t = d.main.trials[proposals[2].number]
    assert t.values == [0.5, t.user_attrs["macs"]]


def test_duplicates_are_failed_replaced_and_never_loop():
    # Random sampling of a 9-point space: it keeps drawing configurations already trained.
    space = space_with(pruner="none", pruner_settings={}, sampler="random")
    d = decider(space, optuna.storages.InMemoryStorage(), new_trials=len(space.grid()))
    trained = []
    while (p := d.propose()) is not None:
        trained.append(p.arch)
        train_to_end(d, p, 0.5)
    # Every configuration trained exactly once, the whole space covered within the budget.
    assert sorted(a.label() for a in trained) == sorted(a.label() for a in space.grid())
    copies = [t for t in d.main.trials if "duplicate_of" in t.user_attrs]
    assert d.duplicates == len(copies) > 0
    # Copies are FAIL (no sampler reads them as evidence), never COMPLETE with the original's values.
    assert all(t.state == optuna.trial.TrialState.FAIL for t in copies)
    complete = [t for t in d.main.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == len(space.grid())


# Hyperband and pareto are left out: Hyperband's brackets may start at epoch 2 for a given trial, and the
# pareto pruner keeps a cheap trial whatever its accuracy (test_pruning.py covers its rungs).
@pytest.mark.parametrize("pruner", ["successive_halving", "median"])
def test_optunas_pruners_decide_after_the_first_epoch_with_min_epochs_1(pruner):
    settings = {"min_epochs": 1} | ({"startup_trials": 1} if pruner == "median" else {"reduction_factor": 2})
    settings["min_fidelity"] = -1  # every rung cuts: what is tested is when, not whether the rung predicts
    d = decider(space_with(pruner=pruner, pruner_settings=settings), optuna.storages.InMemoryStorage(), 6)
    for _ in range(3):
        p = d.propose()
        for e in range(d.space.train.epochs):
            d.report(p.number, epoch(e, 0.9))
        d.finish(p.number, Outcome.ENDED, epoch(d.space.train.epochs - 1, 0.9))
    weak = d.propose()
    # Epoch 1 of 3, far below every peer at that rung: pruned now, not one epoch late.
    assert d.report(weak.number, epoch(0, 0.1))
    d.finish(weak.number, Outcome.ENDED, epoch(0, 0.1))
    assert d.main.trials[weak.number].state == optuna.trial.TrialState.PRUNED


def test_a_trial_pruned_before_a_crash_is_told_pruned_not_rerun(tmp_path):
    from gcsearch.search import rundir

    storage = rundir.storage(tmp_path)
    d = decider(space_with(pruner="none", pruner_settings={}), storage, new_trials=2)
    p = d.propose()
    d.report(p.number, epoch(0, 0.3))
    d.live[p.number].main.set_user_attr("pruned", True)  # the decision was recorded, then the crash
    again = decider(d.space, rundir.storage(tmp_path), new_trials=1, rerun=[p.number])
    assert again.rerun == []
    assert again.main.trials[p.number].state == optuna.trial.TrialState.PRUNED


def test_grid_plan_covers_the_space_once_references_first():
    plan = grid_plan(space_with(sampler="grid", trials=100))
    archs = [a for a, _ in plan]
    assert archs[:2] == list(SMOKE.references())  # the references first
    assert sorted(a.label() for a in archs) == sorted(a.label() for a in SMOKE.grid())
    assert len(grid_plan(space_with(sampler="grid", trials=3))) == 3


def test_planned_trials_keep_their_parameters_under_python_O():
    # The configuration drawn for an enqueued trial was once computed inside an assert, which -O removes.
    code = (
        "import optuna; from gcsearch.search.decider import Decider; from gcsearch.spacefile import load_space\n"
        f"s = load_space({str(ROOT / 'search_spaces' / 'smoke.yaml')!r})\n"
        "a = [x for x in s.grid() if not x.is_baseline][1]\n"
        "d = Decider(s, optuna.storages.InMemoryStorage(), 0, coster=lambda a: (0, 0), plan=[(a, 0)])\n"
        "p = d.propose(); t = d.main.trials[p.number]\n"
        "assert t.params == s.params_of(a), t.params\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-O", "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.stdout.strip() == "ok", out.stderr[-1500:]


def test_objectives_in_any_order_keep_accuracy_as_the_accuracy():
    from gcsearch.search import rundir

    d = decider(space_with(pruner="none", pruner_settings={}, objectives=("macs", "accuracy")),
                optuna.storages.InMemoryStorage(), new_trials=2)  # fmt: skip
    for _ in range(2):
        train_to_end(d, d.propose(), 0.75)
    records = rundir.records(d.main)
    # Read from values[0] this was the MACs (millions) in trials.csv, the front, the picks and importance.
    assert [r.accuracy for r in records] == [0.75, 0.75]
    assert d.main.metric_names == ["macs", "accuracy"]


def test_a_kill_between_journal_writes_leaves_nothing_running_for_ever(tmp_path):
    from gcsearch.search import rundir

    d = decider(space_with(pruner="none", pruner_settings={}), rundir.storage(tmp_path), new_trials=3)
    done = d.propose()
    train_to_end(d, done, 0.6)
    # Killed after the main study was told, before its twin was: the twin is still RUNNING.
    half = d.propose()
    for e in range(3):
        d.report(half.number, epoch(e, 0.7))
    d.main.tell(d.live[half.number].main, [0.7, half.macs])
    # Killed between ask() and the twin link: a main trial with no twin.
    orphan = d.main.ask()
    again = decider(d.space, rundir.storage(tmp_path), new_trials=1)
    states = {t.number: t.state for t in again.main.trials}
    assert states[orphan.number] == optuna.trial.TrialState.FAIL
    twin_of_half = again.twin.trials[again.main.trials[half.number].user_attrs["twin"]]
    assert twin_of_half.state == optuna.trial.TrialState.COMPLETE and twin_of_half.value == 0.7
    assert not any(t.state == optuna.trial.TrialState.RUNNING for t in again.main.trials + again.twin.trials)


def test_a_restart_takes_the_pruning_decision_a_kill_cut_off_and_only_that_one(tmp_path):
    """Found by experiments/faults.py (journal:55): a kill after an epoch's report reached the journal but before
    the pruner's decision left the trial to train to the end after the restart, where the run that was not
    killed pruned it."""
    from gcsearch.search import rundir

    settings = {"min_epochs": 1, "reduction_factor": 2, "min_fidelity": -1}  # every rung cuts
    space = space_with(pruner="successive_halving", pruner_settings=settings)
    d = decider(space, rundir.storage(tmp_path), new_trials=6)
    early = d.propose()  # decided "go on" after epoch 1 while it had no peers, before the kill
    assert not d.report(early.number, epoch(0, 0.1))
    for _ in range(3):
        train_to_end(d, d.propose(), 0.9)
    cut = d.propose()
    d.live[cut.number].twin.report(0.1, 1)  # the report reached the journal; then the kill, before the decision
    again = decider(space, rundir.storage(tmp_path), new_trials=0, rerun=[early.number, cut.number])
    first, second = again.propose(), again.propose()
    assert (first.number, second.number) == (early.number, cut.number)
    # Said again after the restart: the decision taken before the kill stands; the one it cut off is taken now.
    assert not again.report(early.number, dataclasses.replace(epoch(0, 0.1), replayed=True))
    assert again.report(cut.number, dataclasses.replace(epoch(0, 0.1), replayed=True))
    cut_attrs = again.main.trials[cut.number].user_attrs
    assert cut_attrs["pruned"] and cut_attrs["resumed_at_epochs"] == [1]  # from its checkpoint, not from scratch
    assert (cut_attrs["epochs"], cut_attrs["accuracy"]) == (1, 0.1)  # what the cut-off report had not yet written


def test_a_replayed_epoch_fills_a_gap_in_the_curve_and_decides_nothing_twice():
    d = decider(space_with(pruner="successive_halving", pruner_settings={"min_epochs": 1, "reduction_factor": 2}),
                optuna.storages.InMemoryStorage(), new_trials=2)  # fmt: skip
    p = d.propose()
    # Epoch 0's report was lost (a kill after its checkpoint); the restart says it again, then goes on.
    assert not d.report(p.number, dataclasses.replace(epoch(0, 0.01), replayed=True))
    d.report(p.number, epoch(1, 0.6))
    curve = d.main.trials[p.number].user_attrs["curve"]
    assert [c["epoch"] for c in curve] == [0, 1] and curve[0]["accuracy"] == 0.01
    assert d.main.trials[p.number].user_attrs["epochs"] == 2


def test_tpe_models_the_axes_jointly_once_the_parameterless_baseline_is_trained():
    gc = load_space(ROOT / "search_spaces" / "gc.yaml")
    space = dataclasses.replace(gc, search=dataclasses.replace(gc.search, pruner="none", pruner_settings={}))
    d = decider(space, optuna.storages.InMemoryStorage(), new_trials=10)
    for i in range(10):  # the baseline (no parameters) first, then GC configurations
        train_to_end(d, d.propose(), 0.5 + 0.01 * i)
    trial = d.main.ask()
    axes = ["fusion", "gate_init", "norm", "pool", "position", "ratio", "stages"]
    assert sorted(d.main.sampler.infer_relative_search_space(d.main, trial)) == axes
    # Without group=True the joint space is the intersection over trials, emptied by the baseline.
    plain = optuna.samplers.TPESampler(multivariate=True, n_startup_trials=8)
    assert plain.infer_relative_search_space(d.main, trial) == {}


def test_a_time_budget_leaves_no_trial_running():
    d = decider(space_with(pruner="none", pruner_settings={}), optuna.storages.InMemoryStorage(), new_trials=4)
    started = [d.propose(), d.propose()]
    assert not d.report(started[0].number, epoch(0, 0.5))
    d.stop_running()  # what search.run does when Tune's time_budget_s ends the experiment
    for p in started:
        main = d.main.trials[p.number]
        twin = d.twin.trials[main.user_attrs[attrs.TWIN]]
        assert main.state == twin.state == optuna.trial.TrialState.PRUNED
        assert "time budget" in main.user_attrs[attrs.REASON]


def test_a_time_budget_completes_a_trial_that_reported_its_last_epoch():
    d = decider(space_with(pruner="none", pruner_settings={}), optuna.storages.InMemoryStorage(), new_trials=2)
    p = d.propose()
    for e in range(d.space.train.epochs):
        assert not d.report(p.number, epoch(e, 0.6 + e / 100))
    d.stop_running()  # the budget ended after its last report, before Tune told the decider it finished
    main = d.main.trials[p.number]
    assert main.state == optuna.trial.TrialState.COMPLETE
    assert main.values[0] == pytest.approx(0.6 + (d.space.train.epochs - 1) / 100)


def test_a_kill_between_enqueue_and_ask_does_not_train_a_stale_configuration(tmp_path):
    from gcsearch.search import rundir

    plan = grid_plan(SMOKE)[:3]
    d = decider(space_with(pruner="none", pruner_settings={}), rundir.storage(tmp_path), 3, plan=plan)
    first = d.propose()
    train_to_end(d, first, 0.6)
    d.main.enqueue_trial(d.space.params_of(plan[1][0]))  # killed here, before the ask
    again = decider(d.space, rundir.storage(tmp_path), 2, plan=plan[1:])
    assert not any(t.state == optuna.trial.TrialState.WAITING for t in again.main.trials)
    proposals = [again.propose(), again.propose()]
    assert [p.arch for p in proposals] == [a for a, _ in plan[1:]]


def test_reference_trials_are_marked_so_no_pruner_stops_them(tmp_path):
    import optuna

    from gcsearch.search import pruning

    space = load_space(ROOT / "search_spaces" / "gc.yaml")  # 3 reference seeds: the front's noise
    d = Decider(space, optuna.storages.InMemoryStorage(), 8, coster=SpaceCoster(space.backbone))
    proposals = [d.propose() for _ in range(7)]
    twins = d.twin.get_trials(deepcopy=False)
    assert [pruning.is_reference(t) for t in twins] == [True] * 6 + [False]
    # The baseline and the paper default at the search's seed, then at two more seeds; then the sampler.
    assert [(p.arch, p.seed) for p in proposals[:6]] == [(a, s) for s in (None, 1, 2) for a in space.references()]
    assert proposals[6].arch not in space.references()


@pytest.mark.parametrize(("trials", "references"), [(6, 2), (16, 4), (40, 6)])
def test_references_and_start_up_scale_with_the_budget(trials, references):
    # gc.yaml's search (TPE, reference_seeds 3) at a few budgets: at least half the trials are sampled
    # configurations, and TPE guides some of them (a 6-trial search once trained 6 references and sampled none).
    space = load_space(ROOT / "search_spaces" / "gc.yaml")
    space = space.with_search(trials=trials, pruner="none", pruner_settings={})
    d = decider(space, optuna.storages.InMemoryStorage(), trials)
    refs = set(space.references())
    proposals = []
    for _ in range(trials):
        p = d.propose()
        proposals.append(p)
        train_to_end(d, p, 0.5 + 0.01 * len(proposals))
    assert d.propose() is None
    trained_refs = sum(p.arch in refs for p in proposals)
    assert trained_refs == references == d.budget.references
    assert trials - trained_refs >= -(-trials // 2) and d.budget.guided >= 2
    # TPE waits for the references and its start-up, then guides: its start-up is the budget's.
    assert d.main.sampler._n_startup_trials == d.budget.references + d.budget.startup
