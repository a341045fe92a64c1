"""Optuna pruners for the search, and the Pareto-aware pruner.

Optuna refuses ``Trial.report`` and ``should_prune`` in multi-objective studies, so every search keeps
a single-objective twin study ("accuracy") in the same storage: each trial of the main study has a twin
that receives its per-epoch validation accuracy (step = epochs finished, 1-based, so that a pruner's
``min_resource`` of 1 decides after the first epoch) and its MACs (user attr). Optuna's
own pruners (median, successive halving, hyperband) run unchanged on the twin; their state, like the
intermediate values, lives in the storage, so a resumed search prunes the same way.

``ParetoPruner`` is MO-ASHA (Schmucker et al. 2021) on the twin: at each rung (min_epochs * rf^k epochs)
it ranks the trials that reached the rung by non-dominated sorting of (accuracy at the rung, MACs, and
params when it is an objective) and keeps 1/rf of them, whole fronts first and the overflowing front by
crowding distance, so cheap configurations are not killed for being cheap.
"""

from __future__ import annotations

import math

import optuna
from optuna.pruners import BasePruner
from optuna.trial import FrozenTrial, TrialState

from gcsearch.pareto import nondominated_ranks
from gcsearch.settings import SearchConfig


class ParetoPruner(BasePruner):
    """MO-ASHA at the rungs min_epochs * rf^k. Selection as published (NSGA-II's): whole non-dominated
    fronts of (accuracy at the rung, MACs[, params]) are kept while they fit in ceil(n / rf) places; the
    front that overflows is cut by crowding distance, keeping the points that spread along it (its
    extremes first). ``front_first`` is the earlier rule, kept for comparison in the replay: the whole
    first front survives however large it is, the other places go by accuracy."""

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
        self.costs = [o for o in objectives if o != "accuracy"] or ["macs"]
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
        keep = math.ceil(len(peers) / self.reduction_factor)
        me = next(i for i, t in enumerate(peers) if t.number == trial.number)
        if self.front_first:
            order = sorted(range(len(peers)), key=lambda i: (ranks[i], -points[i][0], peers[i].number))
            return ranks[me] > 0 and order.index(me) >= keep
        return me not in select(points, ranks, keep, [t.number for t in peers])


def select(points: list[tuple[float, ...]], ranks: list[int], keep: int, names: list[int]) -> set[int]:
    """NSGA-II survivor selection: indices of ``keep`` points, whole fronts first, the overflowing front
    by crowding distance (larger first; ties by name, for a deterministic choice)."""
    chosen: list[int] = []
    for rank in sorted(set(ranks)):
        front = [i for i, r in enumerate(ranks) if r == rank]
        if len(chosen) + len(front) <= keep:
            chosen += front
            continue
        distance = crowding(points, front)
        front.sort(key=lambda i: (-distance[i], names[i]))
        chosen += front[: keep - len(chosen)]
        break
    return set(chosen)


def crowding(points: list[tuple[float, ...]], front: list[int]) -> dict[int, float]:
    """NSGA-II crowding distance of each point of one front: the extremes of each objective are infinite;
    the rest sum, per objective, the normalised gap between their two neighbours."""
    distance = dict.fromkeys(front, 0.0)
    for k in range(len(points[front[0]])):
        ordered = sorted(front, key=lambda i: points[i][k])
        low, high = points[ordered[0]][k], points[ordered[-1]][k]
        distance[ordered[0]] = distance[ordered[-1]] = math.inf
        if high == low:
            continue
        for a, i, b in zip(ordered, ordered[1:], ordered[2:], strict=False):  # neighbours
            distance[i] += (points[b][k] - points[a][k]) / (high - low)
    return distance


def make_pruner(search: SearchConfig, epochs: int) -> BasePruner:
    """The file's pruner, acting on the single-objective twin study."""
    s = search.pruner_settings
    min_epochs = int(s.get("min_epochs", 1))
    rf = int(s.get("reduction_factor", 3))
    if search.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=int(s.get("startup_trials", 3)), n_warmup_steps=min_epochs)
    if search.pruner == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=min_epochs, reduction_factor=rf)
    if search.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=min_epochs, max_resource=epochs, reduction_factor=rf)
    if search.pruner == "pareto":
        # front_first: not a file setting; the replay sets it to compare with the earlier rule.
        return ParetoPruner(min_epochs, rf, epochs, search.objectives, bool(s.get("front_first", 0)))
    return optuna.pruners.NopPruner()
