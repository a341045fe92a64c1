"""Optuna pruners for the search, and the Pareto-aware pruner.

Optuna refuses ``Trial.report`` and ``should_prune`` in multi-objective studies, so every search keeps
a single-objective twin study ("accuracy") in the same storage: each trial of the main study has a twin
that receives its per-epoch validation accuracy (step = epochs finished, 1-based, so that a pruner's
``min_resource`` of 1 decides after the first epoch) and its MACs (user attr). Optuna's
own pruners (median, successive halving, hyperband) run unchanged on the twin; their state, like the
intermediate values, lives in the storage, so a resumed search prunes the same way.

``ParetoPruner`` is MO-ASHA (Schmucker et al. 2021) on the twin: at each rung (min_epochs * rf^k epochs)
it ranks the trials that reached the rung by non-dominated sorting of (accuracy at the rung, MACs) and
keeps the first front plus the best of the rest up to 1/rf of them, so cheap configurations are not
killed for being cheap.
"""

from __future__ import annotations

import math

import optuna
from optuna.pruners import BasePruner
from optuna.trial import FrozenTrial, TrialState

from gcsearch.pareto import nondominated_ranks
from gcsearch.space import SearchConfig


class ParetoPruner(BasePruner):
    def __init__(self, min_epochs: int = 1, reduction_factor: int = 3, max_epochs: int = 100):
        if min_epochs < 1 or reduction_factor < 2:
            raise ValueError("min_epochs must be >= 1 and reduction_factor >= 2")
        self.min_epochs, self.reduction_factor, self.max_epochs = min_epochs, reduction_factor, max_epochs

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
            if step in t.intermediate_values and "macs" in t.user_attrs
        ]
        if trial.number not in {t.number for t in peers}:
            return False
        points = [(t.intermediate_values[step], float(t.user_attrs["macs"])) for t in peers]
        ranks = nondominated_ranks(points, ["maximize", "minimize"])
        order = sorted(range(len(peers)), key=lambda i: (ranks[i], -points[i][0], peers[i].number))
        keep = math.ceil(len(peers) / self.reduction_factor)
        me = next(i for i, t in enumerate(peers) if t.number == trial.number)
        return ranks[me] > 0 and order.index(me) >= keep


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
        return ParetoPruner(min_epochs, rf, epochs)
    return optuna.pruners.NopPruner()
