"""How a search decides beyond the space file's sampler and pruner, as one value: the replay runs variants
side by side by passing different ``Options`` to the decider, never by patching a module or a class.
Pure (no optuna), so that the replay's strategy list loads without it."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

# TPE's settings. multivariate + group: joint modelling of the axes that occur together (define-by-run
# spaces need group=True, or the joint space shrinks to the axes every trial has); constant liar: running
# trials count as pending so parallel workers do not all get the same proposal. Optuna's prior_weight (1)
# stays: a smoother prior (2, 3, 5) cuts the duplicate proposals of a replay from 46% to 28%, 15%, 9%, but
# finds a top-3 configuration no sooner (10-21 seeds against prior_weight 3, sign test p 0.07), and a
# duplicate costs an ask, not a training (experiments/results/sampler-settings.md).
# Read-only: a variant is an ``Options(tpe=...)`` value passed to the Decider, never a patched global.
TPE_OPTIONS: Mapping[str, Any] = MappingProxyType(
    {"multivariate": True, "group": True, "constant_liar": True, "n_startup_trials": 8}
)
REPLACEMENTS = ("nearest", "random")


@dataclass(frozen=True)
class Options:
    """How a search decides, beyond the space file's sampler and pruner: a value, so that the replay can
    run variants side by side (in one process or many) without patching a module or a class.

    ``references``: train the baseline and the paper default first (what users compare against).
    ``replacement``: what replaces a proposal that cannot be trained as proposed (a duplicate, or outside
    ``within``): "nearest", an untried configuration nearest to it (the sampler's intent, one step away),
    or "random", any untried one (the earlier rule).
    ``tpe``: keyword arguments of Optuna's TPESampler, as (name, value) pairs."""

    references: bool = True
    replacement: str = "nearest"
    tpe: tuple[tuple[str, Any], ...] = field(default_factory=lambda: tuple(TPE_OPTIONS.items()))

    def __post_init__(self) -> None:
        if self.replacement not in REPLACEMENTS:
            raise ValueError(f"replacement must be one of {REPLACEMENTS}, but got {self.replacement!r}")

    def with_tpe(self, **changes: Any) -> Options:
        """These options with some TPE settings changed."""
        return dataclasses.replace(self, tpe=tuple({**dict(self.tpe), **changes}.items()))
