"""How a search decides, as one value (``Strategy``): the sampler, the pruner and its settings, and what the
decider does beyond them (reference trials first, what replaces a proposal it will not train, TPE's settings,
the pareto pruner's earlier rule). A space file's search section gives one (``Strategy.of``); the replay runs
variants side by side by handing others to the decider (``Strategy.parse`` reads their names), never by
patching a module or a class. Pure (no optuna), so the replay's strategy list loads without it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from gcsearch.errors import ConfigError
from gcsearch.settings import PRUNERS, SAMPLERS, SearchConfig

# TPE's settings. multivariate + group: joint modelling of the axes that occur together (define-by-run
# spaces need group=True, or the joint space shrinks to the axes every trial has); constant liar: running
# trials count as pending so parallel workers do not all get the same proposal. Optuna's prior_weight (1)
# stays: a smoother prior (2, 3, 5) cuts the duplicate proposals of a replay from 46% to 28%, 15%, 9%, but
# finds a top-3 configuration no sooner (10-21 seeds against prior_weight 3, sign test p 0.07), and a
# duplicate costs an ask, not a training (experiments/results/sampler-settings.md).
TPE_OPTIONS: Mapping[str, Any] = MappingProxyType(
    {"multivariate": True, "group": True, "constant_liar": True, "n_startup_trials": 8}
)
REPLACEMENTS = ("nearest", "random")
ASHA = "asha"  # random search under ASHA with Ray Tune's ASHAScheduler defaults (grace 1, reduction factor 4)
UNIFORM = "uniform"  # the fair comparator every strategy is paired against
FRONT_FIRST = "-front-first"  # a pareto pruner's name with this suffix keeps its whole first front (earlier rule)


@dataclass(frozen=True)
class Strategy:
    """How a search decides.

    ``references``: train the baseline and the paper default first (what users compare against).
    ``replacement``: what replaces a proposal that cannot be trained as proposed (a duplicate, or outside the
    trainable set): "nearest", an untried configuration nearest to it (the sampler's intent, one step away),
    or "random", any untried one (the earlier rule).
    ``tpe``: keyword arguments of Optuna's TPESampler, as (name, value) pairs.
    ``front_first``: the pareto pruner keeps the whole first front however large (its earlier rule)."""

    name: str
    sampler: str
    pruner: str
    pruner_settings: tuple[tuple[str, float], ...] = ()
    references: bool = True
    replacement: str = "nearest"
    tpe: tuple[tuple[str, Any], ...] = field(default_factory=lambda: tuple(TPE_OPTIONS.items()))
    front_first: bool = False
    about: str = ""  # one line for a report

    def __post_init__(self) -> None:
        if self.replacement not in REPLACEMENTS:
            raise ValueError(f"replacement must be one of {REPLACEMENTS}, but got {self.replacement!r}")
        if self.sampler not in SAMPLERS or self.pruner not in PRUNERS:
            raise ValueError(f"unknown sampler or pruner: {self.sampler!r}, {self.pruner!r}")

    @property
    def settings(self) -> dict[str, float]:
        return dict(self.pruner_settings)

    def with_tpe(self, **changes: Any) -> Strategy:
        """This strategy with some TPE settings changed."""
        return dataclasses.replace(self, tpe=tuple({**dict(self.tpe), **changes}.items()))

    @classmethod
    def of(cls, search: SearchConfig) -> Strategy:
        """The space file's strategy."""
        settings = dict(search.pruner_settings)
        return cls("default", search.sampler, search.pruner, tuple(settings.items()),
                   about=f"{search.sampler} + {search.pruner} {settings} (the space file's)")  # fmt: skip

    @classmethod
    def parse(cls, text: str, search: SearchConfig) -> Strategy:
        """A strategy by name: "default" (the file's), one of ``fair``, or one of ``names()``: SAMPLER+PRUNER
        (a pruner the file names keeps its settings; others get min_epochs 1 and, where it applies, reduction
        factor 2), "asha", "grid", or "SAMPLER+pareto-front-first"."""
        fair_ = {st.name: st for st in fair(search)}
        if text in fair_:
            return fair_[text]
        if text not in names():
            raise ConfigError("--strategy", f"must be one of {[*fair_, *names()]}", text)
        if text == ASHA:
            # Optuna's SuccessiveHalvingPruner is asynchronous successive halving (Li et al. 2020), the
            # algorithm of Ray Tune's ASHAScheduler; these are that scheduler's defaults.
            return cls(text, "random", "successive_halving", (("min_epochs", 1), ("reduction_factor", 4)))
        if text == "grid":
            return cls(text, "grid", "none")
        front_first = text.endswith(FRONT_FIRST)
        sampler, _, pruner = text.removesuffix(FRONT_FIRST).partition("+")
        settings = dict(search.pruner_settings) if pruner == search.pruner else {}
        if front_first or (pruner in ("successive_halving", "hyperband", "pareto") and not settings):
            settings = {"min_epochs": 1, "reduction_factor": 2, **settings}
        elif pruner == "median" and not settings:
            settings = {"min_epochs": 1}
        return cls(text, sampler, pruner, tuple(settings.items()), front_first=front_first)


def names() -> list[str]:
    """Every sampler with every pruner, ASHA, grid (every configuration once, in random order), and the
    pareto pruner's earlier rule (the whole first front kept) for comparison."""
    samplers = [s for s in SAMPLERS if s != "grid"]
    return [f"{s}+{p}" for s in samplers for p in PRUNERS] + [ASHA, "grid", f"tpe+pareto{FRONT_FIRST}"]


def fair(search: SearchConfig) -> list[Strategy]:
    """The file's strategy and its fair baselines (issue 26): uniform random search without replacement over
    the trainable configurations (``grid`` without reference trials first), with and without pruning; ASHA
    (Optuna's SuccessiveHalvingPruner, asynchronous) at the default's ``min_epochs`` with reduction factor 4
    (Ray's default) and 2 (halving); the default with each component removed; and Optuna's random sampler
    without pruning, the earlier baseline (its proposals mostly fall outside a sampled recording)."""
    s = search
    settings = dict(s.pruner_settings)
    min_epochs = float(settings.get("min_epochs", 1))
    own = tuple(settings.items())
    default = Strategy.of(search)
    asha = f"uniform random order, ASHA at min_epochs {min_epochs:g}, reduction factor"
    return [
        default,
        Strategy(UNIFORM, "grid", "none", (), references=False,
                 about="uniform random order of the trainable configurations, no pruning"),
        Strategy("uniform+pareto", "grid", "pareto", own, references=False,
                 about=f"uniform random order, the default's pruner {settings}"),
        Strategy("uniform+asha", "grid", "successive_halving", (("min_epochs", min_epochs), ("reduction_factor", 4)),
                 references=False, about=f"{asha} 4"),
        Strategy("uniform+halving", "grid", "successive_halving", (("min_epochs", min_epochs), ("reduction_factor", 2)),
                 references=False, about=f"{asha} 2"),
        dataclasses.replace(default, name="default-references", references=False,
                            about="the default without reference trials"),
        dataclasses.replace(default, name="default-nearest", replacement="random",
                            about="the default, a duplicate or outside proposal replaced by any untried configuration"),
        Strategy("default-pruner", s.sampler, "none", (), about=f"the default without pruning ({s.sampler} + none)"),
        Strategy("random+none", "random", "none", (),
                 about="Optuna's random sampler, outside proposals replaced by the nearest (the earlier baseline)"),
    ]  # fmt: skip
