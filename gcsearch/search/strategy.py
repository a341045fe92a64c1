"""How a search decides, as one value (``Strategy``): the sampler, the pruner and its settings, and what the
decider does beyond them (reference trials first, what replaces a proposal it will not train, TPE's settings,
the pareto pruner's earlier rule). A space file's search section gives one (``Strategy.of``); the replay runs
variants side by side by handing others to the decider (``Strategy.parse`` reads their names), never by
patching a module or a class. Pure (no optuna), so the replay's strategy list loads without it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from gcsearch.arch import ArchConfig
from gcsearch.errors import ConfigError
from gcsearch.settings import PRUNERS, SAMPLERS, SearchConfig
from gcsearch.space import SearchSpace

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


LEARNING = ("tpe", "gp", "nsga2")  # samplers that learn from the trials so far (the others draw at random)
STARTUP = {"tpe": int(TPE_OPTIONS["n_startup_trials"]), "gp": 10, "nsga2": 50}  # Optuna's own random start-ups


@dataclass(frozen=True)
class Budget:
    """How a search of ``trials`` trainings spends them: the reference trials (the baseline and the paper default,
    at one or more seeds), the sampler's random start-up trials, and the rest, which the sampler guides.

    Both scale with the budget, so that a small search still searches: one reference pair per 6 trials (at least
    one, at most ``reference_seeds``: three pairs are the fewest whose paired differences give the front's noise
    marks a usable threshold, t(0.975, 2) = 4.3 sds) and a start-up of about a sixth (at least 2, at most
    Optuna's default), so the sampled configurations are at least half. gc.yaml's 18 trials: 6 references
    (3 seeds), 3 random, 9 guided; a 40-trial search: 6, 6, 28; a 6-trial one: 2, 2, 2 (before, 2 x 3
    references and TPE's 8 start-up trials left a 6-trial search nothing to sample)."""

    trials: int
    references: int  # trainings of the reference configurations
    startup: int  # sampled at random before the sampler learns (all of them for a sampler that does not learn)
    sampler: str
    reference_seeds: int = 1  # the most seeds the references may get (search.reference_seeds)
    reference_configs: int = 2  # the space's reference configurations (0-2)

    @property
    def sampled(self) -> int:
        return self.trials - self.references

    @property
    def guided(self) -> int:
        return max(0, self.sampled - self.startup)

    def text(self) -> str:
        refs = f"{self.references} references (baseline, paper default)" if self.references else "no references"
        if self.sampler not in LEARNING:
            return f"{self.trials} trials = {refs} + {self.sampled} drawn by {self.sampler}"
        return (f"{self.trials} trials = {refs} + {self.startup} random start-up + {self.guided} guided by "
                f"{self.sampler}")  # fmt: skip

    def warning(self) -> str:
        """One line when the sampler would have nothing to learn from, else empty."""
        if self.sampler not in LEARNING or self.guided > 0:
            return ""
        enough = next(n for n in range(self.trials + 1, self.trials + 100)
                      if split(n, self.reference_seeds, self.reference_configs, self.sampler).guided > 0)  # fmt: skip
        return (f"warning: {self.trials} trials leave {self.sampler} nothing to guide (every sampled trial is its "
                f"random start-up): give --trials {enough} or more to search")  # fmt: skip


def split(trials: int, reference_seeds: int, references: int, sampler: str, startup: int | None = None) -> Budget:
    """The budget of a search of ``trials`` whose space holds ``references`` reference configurations (0-2);
    ``startup``: the sampler's own start-up (default Optuna's)."""
    pairs = 0 if references == 0 or trials < 4 else min(reference_seeds, max(1, trials // 6))
    sampled = trials - pairs * references
    # A sampler that does not learn draws every sampled trial at random: all of them are its "start-up".
    first = min(startup or STARTUP[sampler], max(2, trials // 6), sampled) if sampler in LEARNING else sampled
    return Budget(trials, pairs * references, first, sampler, reference_seeds, references)


def budget_of(space: SearchSpace, strategy: Strategy, within: Sequence[ArchConfig] | None = None) -> Budget:
    """How a search of ``space`` splits its trials (``strategy.split``)."""
    trainable = set(within) if within is not None else set(space.grid())
    refs = sum(a in trainable for a in space.references()) if strategy.references else 0
    startup = dict(strategy.tpe).get("n_startup_trials") if strategy.sampler == "tpe" else None
    return split(space.search.trials, space.search.reference_seeds, refs, strategy.sampler, startup)


@dataclass(frozen=True)
class Strategy:
    """How a search decides.

    ``references``: train the baseline and the paper default first (what users compare against).
    ``replacement``: what replaces a proposal that cannot be trained as proposed (a duplicate, or outside the
    trainable set): "nearest", an untried configuration nearest to it (the sampler's intent, one step away),
    or "random", any untried one (the earlier rule).
    ``tpe``: keyword arguments of Optuna's TPESampler, as (name, value) pairs.
    ``front_first``: the pareto pruner keeps the whole first front however large (its earlier rule).
    ``guard``: a rung cuts only once the search's completed trials show it predicts the final score
    (``pruning.FidelityGuard``); off, the pruner cuts at every rung (the earlier rule)."""

    name: str
    sampler: str
    pruner: str
    pruner_settings: tuple[tuple[str, float], ...] = ()
    references: bool = True
    replacement: str = "nearest"
    tpe: tuple[tuple[str, Any], ...] = field(default_factory=lambda: tuple(TPE_OPTIONS.items()))
    front_first: bool = False
    guard: bool = True
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
