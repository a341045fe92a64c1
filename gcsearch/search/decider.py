"""What decides a search, over Optuna alone: no Ray, no torch, no clock.

The same ``Decider`` is driven by Ray Tune in ``gcsearch run`` (``search.py``: a Searcher and a scheduler of
a few lines each) and by a simulated clock over recorded curves in ``gcsearch bench replay``
(``replay.py``), so a replay is the real search, not a re-implementation. It

- proposes configurations: the reference trials first (the baseline without GC and the paper default,
  what users compare against), then the sampler's (``space.suggest``: the sampler explores the GC
  configurations only), or a fixed plan of (configuration, seed) pairs (ablation, record, grid);
- records each trial's MACs and params before it trains, and skips configurations over the MAC budget;
- trains only configurations ``within`` a given set when one is given (a replay of a recording that
  sampled a large grid): a proposal outside it is told FAIL and replaced by the nearest configuration
  inside (fewest differing axes), so the sampler's evidence is always what was trained;
- answers a proposal of a configuration already trained without training it again: the copy is told
  FAIL (Optuna's samplers ignore FAIL trials, so a copy adds no false evidence), and the proposal is
  replaced by a configuration not tried yet, drawn among those nearest to the proposal (fewest differing
  axes: the sampler's intent, one step away): a sampler stuck on one point costs two asks, never a loop;
- hands every epoch's score to the Optuna pruner of the single-objective twin study (step = epochs
  finished, so ``min_epochs: 1`` decides after the first epoch for every pruner);
- tells Optuna the outcome: COMPLETE with the objectives after the last epoch, PRUNED when stopped early,
  FAIL for an error or a diverged loss.

Runners hand it typed values only (``epoch.Epoch`` after each epoch, ``epoch.Outcome`` at the end) and a
coster that prices a configuration in (MACs, params) without training it (``flops.SpaceCoster`` for a search,
the recorded costs for a replay): building a decider loads Optuna and nothing of torch or Ray.
"""

from __future__ import annotations

import dataclasses
import random
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, Trial, TrialState

from gcsearch.arch import ArchConfig
from gcsearch.epoch import Epoch, Outcome
from gcsearch.objectives import OBJECTIVES
from gcsearch.search import attrs, pruning, rundir
from gcsearch.search.pruning import make_pruner
from gcsearch.search.strategy import Budget, Strategy, budget_of
from gcsearch.space import SearchSpace

Coster = Callable[[ArchConfig], tuple[int, int]]  # a configuration's (MACs, params)


def make_sampler(strategy: Strategy, seed: int, budget: Budget | None = None) -> optuna.samplers.BaseSampler:
    """The strategy's sampler; with a ``budget``, its random start-up is the budget's (after the reference trials,
    which Optuna's samplers count among the finished trials they wait for)."""
    first = budget.references + budget.startup if budget is not None else None
    if strategy.sampler == "tpe":
        options = dict(strategy.tpe) | ({"n_startup_trials": first} if first is not None else {})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # group: stable in practice
            return optuna.samplers.TPESampler(seed=seed, **options)
    if strategy.sampler == "nsga2":  # its first generation is its random start-up
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=max(2, budget.startup) if budget else 50)
    if strategy.sampler == "gp":
        # On a conditional (define-by-run) space Optuna's GP falls back to independent random draws.
        return optuna.samplers.GPSampler(seed=seed, warn_independent_sampling=False, n_startup_trials=first or 10)
    return optuna.samplers.RandomSampler(seed=seed)  # random, and grid (whose trials are all enqueued)


def grid_plan(
    space: SearchSpace, within: Sequence[ArchConfig] | None = None, references: bool = True
) -> list[tuple[ArchConfig, int | None]]:
    """``sampler: grid``: every configuration (of ``within``, default the space's grid) once, up to the
    trial budget; references first (unless ``references`` is False: then uniform random search without
    replacement), the rest in a seeded random order so a smaller budget still spreads."""
    grid = list(within) if within is not None else space.grid()
    first = [a for a in space.references() if a in grid] if references else []
    rest = [a for a in grid if a not in first]
    random.Random(space.search.seed).shuffle(rest)
    order = first + rest
    return [(a, None) for a in order[: space.search.trials]]


def axes_apart(a: ArchConfig, b: ArchConfig) -> int:
    """How many axes two configurations differ in."""
    return sum(getattr(a, f.name) != getattr(b, f.name) for f in dataclasses.fields(ArchConfig))


def nearest(arch: ArchConfig, among: Sequence[ArchConfig]) -> ArchConfig:
    """The configuration of ``among`` with the fewest axes differing from ``arch``; ties by label."""
    if arch in among:
        return arch
    return min(among, key=lambda a: (axes_apart(a, arch), a.label()))


@dataclass(frozen=True)
class Proposal:
    number: int  # the main study's trial number: the trial's name everywhere
    arch: ArchConfig
    seed: int | None
    macs: int
    params: int


@dataclass
class _Live:
    main: Trial
    twin: Trial
    proposal: Proposal


class Decider:
    """Proposals, duplicates, reference trials, pruning and outcomes of one search (see the module)."""

    def __init__(
        self,
        space: SearchSpace,
        storage: str | BaseStorage,
        new_trials: int,
        *,
        coster: Coster,
        rerun: list[int] | None = None,
        plan: list[tuple[ArchConfig, int | None]] | None = None,
        within: Sequence[ArchConfig] | None = None,
        strategy: Strategy | None = None,
    ):
        self.space = space
        self.strategy = strategy or Strategy.of(space.search)
        self.new_trials, self.rerun = new_trials, list(rerun or [])
        self.plan = list(plan) if plan is not None else None
        self.coster = coster
        self.within = list(within) if within is not None else space.grid()  # what can be trained
        self._within = set(self.within)
        self.budget = budget_of(space, self.strategy, self.within)
        self.main = optuna.create_study(
            study_name=rundir.MAIN_STUDY, storage=storage, directions=space.search.directions,  # type: ignore[arg-type]
            sampler=make_sampler(self.strategy, space.search.seed, self.budget), load_if_exists=True,
        )  # fmt: skip
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            self.main.set_metric_names(list(space.search.objectives))  # rundir and optuna-dashboard read them
        self.twin = optuna.create_study(
            study_name=rundir.TWIN_STUDY, storage=storage, direction="maximize",
            pruner=make_pruner(self.strategy, space.train.epochs, space.search.objectives), load_if_exists=True,
        )  # fmt: skip
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            self.twin.set_metric_names(["accuracy"])
        self.live: dict[int, _Live] = {}
        self._close_half_started()
        self._close_pruned_reruns()
        self.asked = 0
        self.proposals = 0  # the sampler's proposals, duplicates included (what "duplicate share" divides by)
        self.duplicates = 0
        self.outside = 0  # proposals outside ``within``, replaced by their nearest configuration inside
        self.ended: str | None = None  # why proposals ran out before the budget did, in words
        self.references = self._references_to_run() if self.plan is None else []

    def _close_half_started(self) -> None:
        """Repair what a kill between two journal writes leaves: a configuration enqueued but never asked
        (the next ask would pop it in place of the one it enqueues), a main trial asked but never paired
        with its twin (neither trained: FAIL), and a twin still RUNNING whose main trial was already told."""
        for _ in self.main.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
            self.main.tell(self.main.ask(), state=TrialState.FAIL)
        twins = self.twin.get_trials(deepcopy=False)
        for t in self.main.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if attrs.TWIN not in t.user_attrs:
                self.main.tell(t.number, state=TrialState.FAIL)
        for t in self.main.get_trials(deepcopy=False):
            twin_number = t.user_attrs.get(attrs.TWIN)
            if t.state.is_finished() and twin_number is not None and twin_number < len(twins):
                twin = twins[twin_number]
                if twin.state == TrialState.RUNNING:
                    value = t.user_attrs.get(attrs.ACCURACY) if t.state == TrialState.COMPLETE else None
                    state = t.state if t.state != TrialState.COMPLETE or value is None else None
                    self.twin.tell(twin.number, value, state=state)

    def _close_pruned_reruns(self) -> None:
        """A trial pruned just before a crash was not told yet: tell it now instead of training it again."""
        for number in list(self.rerun):
            frozen = self.main.get_trials(deepcopy=False)[number]
            if frozen.user_attrs.get(attrs.PRUNED):
                self.rerun.remove(number)
                self._resume(number)
                self.finish(number, Outcome.ENDED)

    # ---------------------------------------------------------------- proposals

    def _references_to_run(self) -> list[tuple[ArchConfig, int | None]]:
        """The baseline and the paper default (when the space holds them) at the search's seed, then at more
        seeds as the budget allows, up to ``search.reference_seeds`` (their paired differences are the run's
        noise), unless already trained; none when the strategy turns reference trials off."""
        if not self.strategy.references:
            return []
        wanted = [a for a in self.space.references() if a in self._within]
        seed = self.space.train.seed
        seeds = self.budget.references // max(1, len(wanted))  # the budget's share (strategy.split)
        pairs = [(a, None if k == 0 else seed + k) for k in range(seeds) for a in wanted]
        done = {(ArchConfig.from_dict(t.user_attrs[attrs.ARCH]), t.user_attrs.get(attrs.SEED)) for t in self._trained()}
        return [p for p in pairs if p not in done]

    def propose(self) -> Proposal | None:
        """The next trial to train, or None when the budget (or the plan) is spent."""
        if self.rerun:
            return self._resume(self.rerun.pop(0))
        if self.plan is not None:
            if not self.plan:
                return None
            arch, seed = self.plan.pop(0)
            return self._start(self._ask_fixed(arch), arch, seed)
        if self.asked >= self.new_trials:
            return None
        if self.references:
            arch, seed = self.references.pop(0)
            return self._start(self._ask_fixed(arch), arch, seed, reference=True)
        for _ in range(len(self.space.grid()) + 1):  # each pass trains, skips one over budget, or ends
            self.main.sampler = make_sampler(self.strategy, self._seed_now(), self.budget)
            trial = self.main.ask()
            self.proposals += 1
            arch = self.space.suggest(trial)
            if self._over_budget(trial, arch):
                continue
            if arch not in self._within:
                self.outside += 1
                near = nearest(arch, self.within)
                self._replace(trial, arch, f"outside the trainable set; replaced by the nearest, {near.label()}")
                if self._trained_as(near) is None:
                    return self._start(self._ask_fixed(near), near, None)
                return self._start_untried(arch)
            original = self._trained_as(arch)
            if original is None:
                return self._start(trial, arch, None)
            self.duplicates += 1
            trial.set_user_attr(attrs.DUPLICATE_OF, original.number)
            self._replace(trial, arch, f"same configuration as trial {original.number}; replaced by an untried one")
            return self._start_untried(arch)
        self.ended = f"the sampler proposed only configurations over the MAC budget ({self.proposals} proposals)"
        return None

    def _replace(self, trial: Trial, arch: ArchConfig, reason: str) -> None:
        """A proposal not trained as proposed: FAIL, so no sampler counts it as evidence."""
        trial.set_user_attr(attrs.ARCH, arch.to_dict())
        trial.set_user_attr(attrs.LABEL, arch.label())
        trial.set_user_attr(attrs.REASON, reason)
        self.main.tell(trial, state=TrialState.FAIL)

    def _start_untried(self, near: ArchConfig) -> Proposal | None:
        fresh = self._untried(near)
        if fresh is None:
            within = " within the MAC budget" if self.space.search.max_macs is not None else ""
            self.ended = f"every configuration{within} has been trained ({self.asked} trials)"
            return None
        return self._start(self._ask_fixed(fresh), fresh, None)

    def _ask_fixed(self, arch: ArchConfig) -> Trial:
        if arch.is_baseline:
            return self.main.ask()  # the baseline has no parameters: nothing for a sampler to draw
        self.main.enqueue_trial(self.space.params_of(arch))
        trial = self.main.ask()
        drawn = self.space.suggest(trial)  # records the Optuna params of the enqueued configuration
        if drawn != arch:
            raise RuntimeError(f"enqueued {arch.label()} but the space drew {drawn.label()}")
        return trial

    def _over_budget(self, trial: Trial, arch: ArchConfig) -> bool:
        max_macs = self.space.search.max_macs
        if max_macs is None:
            return False
        macs, params = self.coster(arch)
        trial.set_constraint("macs", macs - max_macs)
        if macs <= max_macs:
            return False
        # Known before training: no need to spend a trial to learn it is over budget.
        for key, value in ((attrs.ARCH, arch.to_dict()), (attrs.LABEL, arch.label()), (attrs.MACS, macs),
                           (attrs.PARAMS, params), (attrs.SKIPPED, "over MAC budget"),
                           (attrs.REASON, f"{macs:,d} MACs over the budget of {max_macs:,.0f}")):  # fmt: skip
            trial.set_user_attr(key, value)
        self.main.tell(trial, state=TrialState.PRUNED)
        return True

    def _trained(self) -> list[FrozenTrial]:
        return [t for t in self.main.get_trials(deepcopy=False) if rundir.was_trained(t)]

    def _trained_as(self, arch: ArchConfig) -> FrozenTrial | None:
        return next((t for t in self._trained() if t.user_attrs.get(attrs.ARCH) == arch.to_dict()), None)

    def _untried(self, near: ArchConfig | None = None) -> ArchConfig | None:
        """A configuration not trained yet: among the nearest to ``near`` (what the sampler wanted) when
        the strategy's replacement is "nearest", else any; drawn at random among equals."""
        tried = {ArchConfig.from_dict(t.user_attrs[attrs.ARCH]) for t in self._trained()}
        max_macs = self.space.search.max_macs
        left = [a for a in self.within if a not in tried]
        if max_macs is not None:
            left = [a for a in left if self.coster(a)[0] <= max_macs]
        if near is not None and left and self.strategy.replacement == "nearest":
            distance = {a: axes_apart(a, near) for a in left}
            closest = min(distance.values())
            left = [a for a in left if distance[a] == closest]
        return random.Random(self._seed_now()).choice(left) if left else None

    def _seed_now(self) -> int:
        """The seed of the next random draw: the search's seed and how many trials the journal holds, so a
        proposal is a function of the search's history. A resumed search (after Ctrl-C or a crash) then proposes
        what the uninterrupted one would have, where the history is the same (one trial at a time)."""
        return self.space.search.seed * 1_000_003 + len(self.main.get_trials(deepcopy=False))

    def _start(self, trial: Trial, arch: ArchConfig, seed: int | None, reference: bool = False) -> Proposal:
        """Record what is known before training and pair the trial with its twin, where the pruner acts
        (which never prunes a reference trial: the baseline and the paper default users compare against)."""
        macs, params = self.coster(arch)
        known: dict[str, Any] = {attrs.ARCH: arch.to_dict(), attrs.LABEL: arch.label(), attrs.MACS: macs,
                                 attrs.PARAMS: params}  # fmt: skip
        if seed is not None:
            known[attrs.SEED] = seed
        for key, value in known.items():
            trial.set_user_attr(key, value)
        twin = self.twin.ask()
        twin.set_user_attr(attrs.MACS, macs)
        twin.set_user_attr(attrs.PARAMS, params)  # the pareto pruner's costs
        if reference:  # before MAIN and TWIN: a kill between the writes leaves no unmarked reference
            twin.set_user_attr(pruning.REFERENCE, True)
        twin.set_user_attr(attrs.MAIN, trial.number)
        twin.set_user_attr(attrs.LABEL, arch.label())  # a rung's fidelity takes a configuration's seeds as one
        trial.set_user_attr(attrs.TWIN, twin.number)  # from here on the trial counts as trained
        self.asked += 1
        proposal = Proposal(trial.number, arch, seed, macs, params)
        self.live[trial.number] = _Live(trial, twin, proposal)
        return proposal

    def _resume(self, number: int) -> Proposal:
        frozen = self.main.get_trials(deepcopy=False)[number]
        twin_frozen = self.twin.get_trials(deepcopy=False)[frozen.user_attrs[attrs.TWIN]]
        # Optuna has no public handle for re-attaching to a RUNNING trial; Trial(study, id) is the one.
        main, twin = Trial(self.main, frozen._trial_id), Trial(self.twin, twin_frozen._trial_id)
        a = frozen.user_attrs
        proposal = Proposal(number, ArchConfig.from_dict(a[attrs.ARCH]), a.get(attrs.SEED), int(a[attrs.MACS]),
                            int(a[attrs.PARAMS]))  # fmt: skip
        self.live[number] = _Live(main, twin, proposal)
        return proposal

    # ---------------------------------------------------------------- epochs and outcomes

    def report(self, number: int, epoch: Epoch) -> bool:
        """Record one finished epoch; True = prune this trial."""
        live = self.live.get(number)
        if live is None:
            return False
        value, done = epoch.score, epoch.done  # done: epochs finished, the pruners' step
        main = live.main
        curve = main.user_attrs.get(attrs.CURVE, [])
        if epoch.replayed:
            # An epoch finished before a restart, said again: fill what its first report may have missed
            # (a kill between the epoch's checkpoint and its report), and take the pruner's decision on it only
            # if the kill came before that decision was recorded (else the restart would skip a rung).
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Optuna ignores, with a warning, a step already reported
                live.twin.report(value, done)
            if all(p["epoch"] != epoch.epoch for p in curve):
                main.set_user_attr(attrs.CURVE, sorted([*curve, epoch.curve_point()], key=lambda p: p["epoch"]))
            if main.user_attrs.get(attrs.EPOCHS, 0) < done:
                self._record_progress(main, epoch)
            if main.user_attrs.get(attrs.DECIDED, 0) < done and self._prune(live, value, done):
                # Pruned where the restart picked it up: it continued from its checkpoint, only to stop there.
                main.set_user_attr(attrs.RESUMED_AT, [*main.user_attrs.get(attrs.RESUMED_AT, []), done])
                return True
            return False
        live.twin.report(value, done)
        start = epoch.start_epoch
        if start > 0 and epoch.epoch == min(start, self.space.train.epochs - 1):
            # First report after a restart (a retry or a resumed search) that continued from a checkpoint.
            main.set_user_attr(attrs.RESUMED_AT, [*main.user_attrs.get(attrs.RESUMED_AT, []), start])
        self._record_progress(main, epoch)
        # The learning curve, for `gcsearch bench` (curves.csv): one entry per epoch, a rerun epoch replaced.
        main.set_user_attr(attrs.CURVE, [*(p for p in curve if p["epoch"] < epoch.epoch), epoch.curve_point()])
        return self._prune(live, value, done)

    @staticmethod
    def _record_progress(main: Trial, epoch: Epoch) -> None:
        """How far the trial got: the epochs done, the score there and the seconds so far."""
        main.set_user_attr(attrs.EPOCHS, epoch.done)
        main.set_user_attr(attrs.ACCURACY, epoch.score)
        main.set_user_attr(attrs.SECONDS, float(epoch.seconds))

    def _prune(self, live: _Live, value: float, done: int) -> bool:
        """The pruner's decision after ``done`` epochs, recorded either way (a pruned trial, or how far it may go
        on), so that a restart knows which decisions a kill cut off."""
        if done >= self.space.train.epochs:
            return False
        if live.twin.should_prune():
            why = pruning.rung_fidelity(self.twin, done, self.space.train.epochs)
            live.main.set_user_attr(attrs.REASON, f"pruned after epoch {done} at accuracy {value:.4f} (the rung at "
                                    f"{why.text()})")  # fmt: skip
            live.main.set_user_attr(attrs.PRUNED, True)
            return True
        live.main.set_user_attr(attrs.DECIDED, done)
        return False

    def note(self, number: int, **facts: Any) -> None:
        """Facts of where a trial ran that its runner knows (a node id, setup seconds, its measured latency):
        recorded once each; a cost (latency) goes to the twin too, where the pareto pruner reads costs."""
        live = self.live.get(number)
        if live is None:
            return
        for key, value in facts.items():
            if key not in live.main.user_attrs:
                live.main.set_user_attr(key, value)
                if key == attrs.LATENCY:
                    live.twin.set_user_attr(key, value)

    def finish(self, number: int, outcome: Outcome, last: Epoch | None = None, reason: str = "") -> None:
        """Tell Optuna what became of a trial: ``outcome``, with its last epoch when it ended (else the last
        one it reported is used) and, for an error, what went wrong in words."""
        live = self.live.pop(number, None)
        if live is None:
            return
        a = live.main.user_attrs
        epochs = last.done if last is not None else int(a.get(attrs.EPOCHS, 0))
        if outcome is not Outcome.ENDED:
            fallback = "the trial raised an error (see the Tune logs under tune/)"
            live.main.set_user_attr(attrs.REASON, reason or fallback)
            self.main.tell(live.main, state=TrialState.FAIL)
            self.twin.tell(live.twin, state=TrialState.FAIL)
        elif a.get(attrs.PRUNED) or epochs < self.space.train.epochs:
            if not a.get(attrs.PRUNED):
                live.main.set_user_attr(attrs.REASON, f"stopped after epoch {epochs} (time budget)")
            self.main.tell(live.main, state=TrialState.PRUNED)
            self.twin.tell(live.twin, state=TrialState.PRUNED)
        else:
            value = last.score if last is not None else float(a[attrs.ACCURACY])
            # Each objective from its source (objectives.py): the training's score, or what the trial's attribute
            # holds (set before training by the coster, or by the trial's measurement).
            values = [value if OBJECTIVES[o].source == "training" else float(a.get(OBJECTIVES[o].attr, "nan"))
                      for o in self.space.search.objectives]  # fmt: skip
            self.main.tell(live.main, values)
            self.twin.tell(live.twin, value)

    def stop_running(self) -> None:
        """Tell every trial still live what it reached when a time budget ran out: PRUNED, or COMPLETE with
        its last report when that was its last epoch (reported, not yet told): none stays RUNNING for ever."""
        for number in list(self.live):
            curve = self.live[number].main.user_attrs.get(attrs.CURVE, [])
            self.finish(number, Outcome.ENDED, Epoch.from_dict(curve[-1]) if curve else None)
