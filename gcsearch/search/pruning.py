"""Optuna pruners for the search, and the Pareto-aware pruner.

Optuna refuses ``Trial.report`` and ``should_prune`` in multi-objective studies, so every search keeps
a single-objective twin study ("accuracy") in the same storage: each trial of the main study has a twin
that receives its per-epoch validation accuracy (step = epochs finished, 1-based, so that a pruner's
``min_resource`` of 1 decides after the first epoch) and its MACs (user attr). Optuna's
own pruners (median, successive halving, hyperband) run unchanged on the twin; their state, like the
intermediate values, lives in the storage, so a resumed search prunes the same way.

``ParetoPruner`` is MO-ASHA (Schmucker et al. 2021; Syne Tune's ``MOASHA``) on the twin: a trial is
judged when it arrives at a rung (min_epochs * rf^k epochs), against the trials that reached the rung so
far (itself included). They are ordered by non-dominated sorting of (accuracy at the rung, MACs, and params
when it is an objective), then, within a front, by crowding distance; the trial's rank is the number of
them strictly ahead of it (equals share a rank, so a tie never goes against a trial by its number), and it
is stopped only when rank / n > 1 / rf. A non-dominated newcomer with infinite crowding distance thus
always continues, and so do both of the first two trials at a rung; cheap configurations are not killed
for being cheap.

Reference trials (the baseline without GC and the paper default, what users compare against) are never
pruned, by any pruner: ``make_pruner`` wraps the file's pruner in ``KeepReferences``, which answers "go on"
for a twin trial whose user attribute ``REFERENCE`` is true. The decider sets it on the twin of each trial
it trains as a reference.

A rung decides only where it predicts (``FidelityGuard``): ASHA-style pruning assumes a trial's score at a rung
ranks trials as their final scores do, and on the far-cue proxy epoch 1 ranked them at Spearman 0.16 (epoch 2:
0.80). So before any pruner acts at a rung, the search's own completed trials are asked: their score at the rung
against their final score, one point per configuration (its seeds averaged). Until at least ``fidelity_trials``
configurations have completed and their Spearman correlation reaches ``min_fidelity``, the rung records and
does not cut. ``min_fidelity: -1`` lets every rung cut, as before.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import optuna
from optuna.pruners import BasePruner
from optuna.trial import FrozenTrial, TrialState

from gcsearch import stats
from gcsearch.objectives import costs
from gcsearch.pareto import nondominated_ranks
from gcsearch.search import attrs
from gcsearch.search.strategy import Strategy

# Twin-study user attribute: true on the twin of a reference trial (the baseline, the paper default), which
# no pruner may stop. The decider sets it, before the main trial's ``attrs.TWIN``, when it starts a trial it
# popped from its reference list.
REFERENCE = "reference"


def is_reference(trial: FrozenTrial) -> bool:
    """Whether a twin trial is a reference trial (never pruned)."""
    return bool(trial.user_attrs.get(REFERENCE, False))


class ParetoPruner(BasePruner):
    """MO-ASHA at the rungs min_epochs * rf^k, as Syne Tune's MOASHA decides: a trial arriving at a rung
    is stopped when its rank among the n trials there so far, over n, exceeds 1 / rf. The rank orders by
    non-dominated front of (accuracy at the rung, MACs[, params]), then by crowding distance within the
    front (larger first: its extremes, infinite, first); it counts the trials strictly ahead, so equals
    share a rank and no tie is broken by trial number. ``front_first`` is the earlier rule, kept for
    comparison in the replay: the whole first front survives however large it is, the other ceil(n / rf)
    places go by accuracy. A reference trial (``REFERENCE``) is never pruned."""

    def __init__(
        self,
        min_epochs: int = 1,
        reduction_factor: int = 3,
        max_epochs: int = 100,
        objectives: tuple[str, ...] = ("accuracy", "macs"),
        front_first: bool = False,
    ):
        if min_epochs < 1 or reduction_factor < 2:
            raise ValueError("min_epochs must be >= 1 and reduction_factor >= 2")
        self.min_epochs, self.reduction_factor, self.max_epochs = min_epochs, reduction_factor, max_epochs
        self.costs = costs(objectives)
        self.front_first = front_first

    def rungs(self) -> list[int]:
        """Epoch counts at which trials are compared (the last epoch is no rung: nothing to save)."""
        out, r = [], self.min_epochs
        while r < self.max_epochs:
            out.append(r)
            r *= self.reduction_factor
        return out

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        step = trial.last_step
        if step is None or step not in self.rungs():
            return False
        peers = [
            t
            for t in study.get_trials(
                deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
            )
            if step in t.intermediate_values and all(c in t.user_attrs for c in self.costs)
        ]
        if trial.number not in {t.number for t in peers}:
            return False
        points = [(t.intermediate_values[step], *(float(t.user_attrs[c]) for c in self.costs)) for t in peers]
        directions = ["maximize"] + ["minimize"] * len(self.costs)
        ranks = nondominated_ranks(points, directions)
        me = next(i for i, t in enumerate(peers) if t.number == trial.number)
        if is_reference(peers[me]):
            return False
        if self.front_first:
            keep = math.ceil(len(peers) / self.reduction_factor)
            order = sorted(range(len(peers)), key=lambda i: (ranks[i], -points[i][0], peers[i].number))
            return ranks[me] > 0 and order.index(me) >= keep
        # rank / n > 1 / rf, in integers.
        return ahead(points, ranks, me) * self.reduction_factor > len(peers)


def ahead(points: list[tuple[float, ...]], ranks: list[int], me: int) -> int:
    """How many points rank strictly ahead of point ``me``: on a better front, or on its front with a larger
    crowding distance. Equal points share a rank: no tie is broken by name or arrival."""
    front = [i for i, r in enumerate(ranks) if r == ranks[me]]
    distance = crowding(points, front)
    better_fronts = sum(r < ranks[me] for r in ranks)
    return better_fronts + sum(distance[i] > distance[me] for i in front)


def crowding(points: list[tuple[float, ...]], front: list[int]) -> dict[int, float]:
    """NSGA-II crowding distance of each point of one front: the extremes of each objective are infinite;
    the rest sum, per objective, the normalised gap between their two neighbours. Equal points get the
    same distance (computed once per distinct point), so their order in ``front`` decides nothing."""
    distinct = sorted({points[i] for i in front})
    distance = dict.fromkeys(distinct, 0.0)
    for k in range(len(distinct[0])):
        ordered = sorted(distinct, key=lambda p: p[k])
        low, high = ordered[0][k], ordered[-1][k]
        distance[ordered[0]] = distance[ordered[-1]] = math.inf
        if high == low:
            continue
        for a, p, b in zip(ordered, ordered[1:], ordered[2:], strict=False):  # neighbours
            distance[p] += (b[k] - a[k]) / (high - low)
    return {i: distance[points[i]] for i in front}


MIN_FIDELITY = 0.7  # Spearman of a rung's score with the final score, below which the rung does not cut
FIDELITY_TRIALS = 8  # completed configurations a rung's fidelity needs before it may cut


@dataclass(frozen=True)
class Fidelity:
    """How well a rung ranks final scores, from the completed trials: one point per configuration."""

    step: int
    configurations: int
    spearman: float  # nan with fewer than 3 configurations
    threshold: float = MIN_FIDELITY
    needed: int = FIDELITY_TRIALS

    @property
    def predicts(self) -> bool:
        if self.threshold <= -1:  # min_fidelity -1: every rung cuts (the rule before the guard)
            return True
        return self.configurations >= self.needed and self.spearman >= self.threshold

    def text(self) -> str:
        rho = f"Spearman {self.spearman:.2f}" if not math.isnan(self.spearman) else "Spearman undefined"
        if self.threshold <= -1:
            n = self.configurations
            return f"epoch {self.step}: {rho} over {n} completed configurations; cuts (min_fidelity -1)"
        if self.configurations < self.needed:
            verdict = f"too few to judge (it cuts from {self.needed} on, at Spearman >= {self.threshold:g})"
        else:
            verdict = "cuts" if self.predicts else f"below {self.threshold:g}: does not cut"
        n = self.configurations
        return f"epoch {self.step}: {rho} with the final score over {n} completed configurations; {verdict}"


def rung_fidelity(study: optuna.Study, step: int, final: int, threshold: float = MIN_FIDELITY,
                  needed: int = FIDELITY_TRIALS) -> Fidelity:  # fmt: skip
    """The fidelity of rung ``step`` in a twin study, from its COMPLETE trials that reached epoch ``final``."""
    at_rung: dict[str, list[float]] = {}
    at_end: dict[str, list[float]] = {}
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        values = t.intermediate_values
        if step in values and final in values:
            key = str(t.user_attrs.get(attrs.LABEL, t.number))  # a configuration's seeds are one point
            at_rung.setdefault(key, []).append(values[step])
            at_end.setdefault(key, []).append(values[final])
    keys = sorted(at_rung)
    if len(keys) < 3:
        return Fidelity(step, len(keys), math.nan, threshold, needed)
    rho = stats.spearman(
        [sum(at_rung[k]) / len(at_rung[k]) for k in keys], [sum(at_end[k]) / len(at_end[k]) for k in keys]
    )
    return Fidelity(step, len(keys), rho, threshold, needed)


class FidelityGuard(BasePruner):
    """A pruner that lets ``inner`` cut at a step only where ``rung_fidelity`` says the step predicts."""

    def __init__(self, inner: BasePruner, final: int, threshold: float = MIN_FIDELITY, needed: int = FIDELITY_TRIALS):
        self.inner, self.final, self.threshold, self.needed = inner, final, threshold, needed

    def fidelity(self, study: optuna.Study, step: int) -> Fidelity:
        return rung_fidelity(study, step, self.final, self.threshold, self.needed)

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        # The inner pruner is always asked: some record the trial at its rung then (successive halving's rung
        # attributes), and would have no peers once the rung may cut.
        cut = self.inner.prune(study, trial)
        step = trial.last_step
        return cut and step is not None and step < self.final and self.fidelity(study, step).predicts


class KeepReferences(BasePruner):
    """A pruner that never stops a reference trial (``REFERENCE`` on its twin) and otherwise asks ``inner``.
    The reference trials still count as peers of the others at a rung: only their own decision is fixed."""

    def __init__(self, inner: BasePruner):
        self.inner = inner

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        if is_reference(trial):
            return False
        return self.inner.prune(study, trial)


def make_pruner(strategy: Strategy, epochs: int, objectives: tuple[str, ...] = ("accuracy", "macs")) -> BasePruner:
    """The strategy's pruner, acting on the single-objective twin study, reference trials exempt, cutting only at
    rungs that predict (unless the strategy turns the guard off)."""
    inner = _pruner(strategy, epochs, objectives)
    if isinstance(inner, optuna.pruners.NopPruner):
        return inner
    s = strategy.settings
    if strategy.guard:
        inner = FidelityGuard(inner, epochs, float(s.get("min_fidelity", MIN_FIDELITY)),
                              int(s.get("fidelity_trials", FIDELITY_TRIALS)))  # fmt: skip
    return KeepReferences(inner)


def _pruner(strategy: Strategy, epochs: int, objectives: tuple[str, ...]) -> BasePruner:
    s = strategy.settings
    min_epochs = int(s.get("min_epochs", 1))
    rf = int(s.get("reduction_factor", 3))
    if strategy.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=int(s.get("startup_trials", 3)), n_warmup_steps=min_epochs)
    if strategy.pruner == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=min_epochs, reduction_factor=rf)
    if strategy.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=min_epochs, max_resource=epochs, reduction_factor=rf)
    if strategy.pruner == "pareto":
        return ParetoPruner(min_epochs, rf, epochs, objectives, strategy.front_first)
    return optuna.pruners.NopPruner()
