"""The paper's ablation as factorial main effects on a balanced design (statsmodels; no torch, no ray).

One-factor-at-a-time (``ablate``) spends every training on one axis. A balanced sample of the grid (a
``bench record`` recording, ``design.balanced``) lets every configuration inform every axis: each axis's
main effect is its levels' difference averaged over the other axes.

The model: an ordinary least-squares fit over the GC configurations' seed-mean scores,
``score ~ pool + fusion + ratio + norm + stages + position`` plus the interactions of ``INTERACTIONS`` the design can
carry (each, in order, while at least ``MIN_DF`` residual degrees of freedom stay), categorical. Every
configuration carries the same seeds, so seed (the blocking factor: a seed fixes the starting weights'
batch order, shared by every configuration) cancels from the configuration means; what is left in the
residual is one seed-mean's noise plus what the model does not explain (its misfit: the interactions it leaves
out), the honest error for an effect averaged over the space; the report splits the two (``misfit_sd``,
``seed_sd``): where misfit dominates, more configurations sharpen the intervals and more seeds do not. A level's
marginal mean averages the model over the full factorial of the levels present, so unequal level counts do not
bias it. The paper's claims are also read within its own fusion (add), where the factorial's average over
fusions and gate starts is not the paper's question (``within_add``).

The paper's hypotheses (``PAPER``) are pre-registered contrasts. Each is tested two-sided (a one-sided
test at alpha/2 in each direction, so the tool can say "agree" or "disagree"), Holm over the family;
"equivalent" only by TOST at the stated margin (both one-sided tests, Holm over the family); otherwise
"not resolved". Position, which the paper left unresolved, is tested pairwise outside the family.
GC (the paper default) against the baseline without GC is a paired t test over seeds when the recording
holds both, which it does when made by ``bench record`` (references first).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import statistics
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from gcsearch import stats
from gcsearch.analysis.claims import CONTROL, PAPER, Hypothesis
from gcsearch.analysis.control import Control, control
from gcsearch.arch import AXES, GATE_INITS, GATED, PAPER_DEFAULT, ArchConfig, paper_default_in
from gcsearch.bench.curves import Curves
from gcsearch.errors import ConfigError
from gcsearch.files import write_atomic
from gcsearch.space import SearchSpace

# The model's interactions, in order, each while the design leaves MIN_DF residual degrees of freedom: fusion x
# position (with gate starts varied, fusion's levels name the start: fusion x position x gate start), the one
# that survived Holm in the from-scratch recording (experiments/data/curves-gc.csv, p 0.011); pool x fusion (its
# reading: att+both 0.8525 against avg+both 0.8596); stages x position (the far-cue review's candidate, once
# 200 configurations allow it).
INTERACTIONS = (("fusion", "position"), ("pool", "fusion"), ("stages", "position"))
MIN_DF = 10
ALPHA = stats.ALPHA
POWER = stats.POWER
MARGIN = stats.MARGIN  # the equivalence margin of every tied verdict (stats.py says why 0.002)


# The model's factors: the axes but the gate start, which exists for gated fusions only (a factor nested in
# fusion): where a recording varies it, it is part of fusion's level ("mul/identity"), see ``level``.
FACTORS = tuple(a for a in AXES if a != "gate_init")


def level(axis: str, arch: ArchConfig, gates_vary: bool = False) -> str:
    """The text of one configuration's value on one axis, as hypotheses name it; with ``gates_vary`` a gated
    fusion's level names its gate start too."""
    if axis == "fusion" and gates_vary and arch.gate_init:
        return f"{arch.fusion}/{arch.gate_init}"
    return arch.value_text(axis)


Contrast = stats.Contrast


@dataclass(frozen=True)
class LevelMean:
    axis: str
    level: str
    mean: float
    low: float
    high: float
    configurations: int


@dataclass(frozen=True)
class Interaction:
    axes: tuple[str, str]
    f: float
    p: float
    p_adjusted: float  # Holm over the interactions screened


@dataclass(frozen=True)
class Analysis:
    configurations: int
    seeds: list[int]
    residual_sd: float  # of a configuration's seed mean, around the model
    seed_sd: float  # of one training, after removing configuration and seed (the within-block noise)
    df: float
    interactions_fitted: tuple[tuple[str, str], ...]
    margin: float
    hypotheses: list[Contrast]
    position: list[Contrast]
    means: list[LevelMean]
    interactions: list[Interaction]
    control: Control  # paper default - baseline: without it no verdict about the paper is printed
    within_add: list[Contrast] = dataclasses.field(default_factory=list)  # the claims at fusion = add

    @property
    def misfit_sd(self) -> float:
        """What the model leaves unexplained in a configuration's mean beyond its seeds' noise: the residual
        variance of a seed-mean less one training's variance over the seeds averaged (0 if noise explains it)."""
        return math.sqrt(max(0.0, self.residual_sd**2 - self.seed_sd**2 / len(self.seeds)))


def observations(curves: Curves) -> list[tuple[ArchConfig, int, float]]:
    """(configuration, seed, final score) of every configuration recorded with every common seed."""
    seeds = curves.common_seeds()
    return [(a, s, curves.final(a, s)) for a in curves.archs for s in seeds]


def analyse(obs: Sequence[tuple[ArchConfig, int, float]], margin: float = MARGIN, where: str = "curves") -> Analysis:
    """The factorial analysis of ``obs`` (configuration, seed, score); every configuration needs the same
    seeds (use ``observations``)."""
    import pandas as pd
    import statsmodels.formula.api as smf

    by_arch: dict[ArchConfig, dict[int, float]] = {}
    for arch, seed, score in obs:
        by_arch.setdefault(arch, {})[seed] = score
    seeds = sorted(set.intersection(*(set(d) for d in by_arch.values()))) if by_arch else []
    gc = [a for a in by_arch if not a.is_baseline]
    if len(seeds) < 2:
        raise ConfigError("seed", "needs two seeds or more common to every configuration", len(seeds), where)
    gates_vary = len({a.gate_init for a in gc if a.gate_init}) > 1
    rows = [{**{ax: level(ax, a, gates_vary) for ax in FACTORS}, "score": statistics.mean(by_arch[a][s] for s in seeds)}
            for a in gc]  # fmt: skip
    frame = pd.DataFrame(rows)
    axes = [ax for ax in FACTORS if frame[ax].nunique() > 1]
    terms = [f"C({ax})" for ax in axes]
    formula = "score ~ " + " + ".join(terms) if terms else "score ~ 1"
    fit = smf.ols(formula, frame).fit()
    fitted: list[tuple[str, str]] = []
    for a, b in INTERACTIONS:  # in order, while the design carries them
        if a in axes and b in axes:
            with warnings.catch_warnings():  # a design that cannot carry it is rank-deficient: refused below
                warnings.simplefilter("ignore")
                bigger = smf.ols(f"{formula} + C({a}):C({b})", frame).fit()
            if bigger.df_resid >= MIN_DF and bigger.model.rank == bigger.model.exog.shape[1]:
                formula, fit = f"{formula} + C({a}):C({b})", bigger
                fitted.append((a, b))
    if fit.df_resid < 2 or fit.model.rank < fit.model.exog.shape[1]:
        raise ConfigError(
            "configurations",
            f"are too few for the factorial model: {len(gc)} GC configurations for "
            f"{fit.model.exog.shape[1]} parameters, or not spread over the axes' levels; record a balanced "
            "sample (bench record --configs N)",
            len(gc),
            where,
        )
    full = _full_factorial(frame, axes)

    def marginal(axis: str, value: str) -> Any:
        return _design_rows(fit, full[full[axis] == value]).mean(axis=0)

    means = []
    for ax in axes:
        for value in sorted(frame[ax].unique(), key=_order):
            t = fit.t_test(marginal(ax, value))
            low, high = t.conf_int(alpha=ALPHA)[0]
            count = int((frame[ax] == value).sum())
            means.append(LevelMean(ax, value, float(t.effect[0]), float(low), float(high), count))

    family: list[tuple[Hypothesis, float, float, float]] = []  # (hypothesis, estimate, se, df)
    for paper_h in PAPER:
        # Where gate starts vary, a gated fusion is tested at each start: "add > mul/identity" is about the
        # architecture, "add > mul/half" about the official code's start as well.
        nested = paper_h.axis == "fusion" and gates_vary and paper_h.worse in GATED
        for h in ([dataclasses.replace(paper_h, worse=f"{paper_h.worse}/{g}") for g in GATE_INITS] if nested
                  else [paper_h]):  # fmt: skip
            if h.axis == "gc":
                pair = _gc_versus_baseline(by_arch, seeds)
                if pair is not None:
                    family.append((h, *pair))
            elif h.axis in axes and {h.better, h.worse} <= set(frame[h.axis]):
                t = fit.t_test(marginal(h.axis, h.better) - marginal(h.axis, h.worse))
                family.append((h, float(t.effect[0]), float(t.sd[0][0]), float(fit.df_resid)))
    hypotheses = stats.judge([(h.name, f"{h.better} better ({h.evidence})", e, se, df, ("agree", "disagree"))
                         for h, e, se, df in family], margin)  # fmt: skip

    position = []
    if "position" in axes:
        pairs = list(itertools.combinations(sorted(frame["position"].unique(), key=_order), 2))
        tests = []
        for a, b in pairs:
            t = fit.t_test(marginal("position", a) - marginal("position", b))
            est, se = float(t.effect[0]), float(t.sd[0][0])
            tests.append((f"position: {a} - {b}", "unresolved", est, se, fit.df_resid, (f"{a} better", f"{b} better")))
        position = stats.judge(tests, margin)

    within_add = _within_add(fit, full, frame, axes, margin) if "add" in set(frame.get("fusion", [])) else []
    seed_sd = _within_sd(by_arch, seeds)
    # The control on every seed both references have (a recording gives them more than the others), as the
    # family's gc row, so the two always agree.
    default = _recorded_default(by_arch)
    references = (by_arch.get(default) if default is not None else None, by_arch.get(ArchConfig()))
    return Analysis(
        configurations=len(gc),
        seeds=seeds,
        residual_sd=math.sqrt(fit.scale),
        seed_sd=seed_sd,
        df=float(fit.df_resid),
        interactions_fitted=tuple(fitted),
        margin=margin,
        hypotheses=hypotheses,
        position=position,
        means=means,
        interactions=_interactions(frame, axes, formula, fit, fitted),
        control=control(*references),
        within_add=within_add,
    )


def _within_add(fit: Any, full: Any, frame: Any, axes: Sequence[str], margin: float) -> list[Contrast]:
    """The paper's claims on the other axes, and position's pairs, at fusion = add (the paper's fusion): the
    model's simple effects, averaged over the full factorial of the remaining axes; Holm over this family."""
    add = full[full["fusion"] == "add"]

    def mean(axis: str, value: str) -> Any:
        return _design_rows(fit, add[add[axis] == value]).mean(axis=0)

    tests = []
    for h in PAPER:
        if h.axis in ("fusion", "gc") or h.axis not in axes or not {h.better, h.worse} <= set(frame[h.axis]):
            continue
        t = fit.t_test(mean(h.axis, h.better) - mean(h.axis, h.worse))
        tests.append((f"{h.name}, at add", f"{h.better} better ({h.evidence})", float(t.effect[0]), float(t.sd[0][0]),
                      float(fit.df_resid), ("agree", "disagree")))  # fmt: skip
    if "position" in axes:
        for a, b in itertools.combinations(sorted(frame["position"].unique(), key=_order), 2):
            t = fit.t_test(mean("position", a) - mean("position", b))
            tests.append((f"position: {a} - {b}, at add", "unresolved", float(t.effect[0]), float(t.sd[0][0]),
                          float(fit.df_resid), (f"{a} better", f"{b} better")))  # fmt: skip
    return stats.judge(tests, margin)


def _order(value: str) -> tuple[int, str]:
    """Levels in a readable order: ratios by size, the paper's default first otherwise."""
    if value.startswith("1/"):  # a ratio ("mul/half" is a fusion with its gate start)
        return (int(value.split("/")[1]), value)
    return (0 if value in {PAPER_DEFAULT.value_text(axis) for axis in FACTORS} else 1, value)


def _full_factorial(frame: Any, axes: Sequence[str]) -> Any:
    import pandas as pd

    levels = {ax: sorted(frame[ax].unique()) for ax in FACTORS}
    combos = itertools.product(*(levels[ax] for ax in FACTORS))
    full = pd.DataFrame([dict(zip(FACTORS, c, strict=True)) for c in combos])
    full["score"] = 0.0
    return full


def _design_rows(fit: Any, frame: Any) -> Any:
    """The model's design matrix for new rows, columns in the order of its parameters (statsmodels builds
    formulas with patsy, or with formulaic where patsy is missing)."""
    data = fit.model.data
    spec = getattr(data, "model_spec", None) or data.design_info
    if hasattr(spec, "get_model_matrix"):  # formulaic
        matrix = spec.get_model_matrix(frame)
    else:  # patsy
        import patsy

        matrix = patsy.dmatrix(spec, frame, return_type="dataframe")
    return matrix.reindex(columns=fit.params.index).to_numpy(dtype=float)


def _recorded_default(by_arch: dict[ArchConfig, dict[int, float]]) -> ArchConfig | None:
    """The paper default as the recording holds it: a point of the recorded levels (a recording of a 3-stage
    backbone holds it at c3,c4), as ``SearchSpace.reference`` picks it."""
    gc = [a for a in by_arch if not a.is_baseline]
    levels = {ax: sorted({getattr(a, ax) for a in gc}) for ax in FACTORS}
    levels["gate_init"] = sorted({a.gate_init for a in gc if a.gate_init})
    return paper_default_in(levels, sorted({s for a in gc for s in a.stages})) if gc else None


def _gc_versus_baseline(
    by_arch: dict[ArchConfig, dict[int, float]], seeds: Sequence[int]
) -> tuple[float, float, float] | None:
    """Paper default - baseline, paired by seed over every seed both have (``seeds`` at least): (mean, its
    standard error, df); None unless both were recorded."""
    default, baseline = _recorded_default(by_arch), ArchConfig()
    if default is None or default not in by_arch or baseline not in by_arch:
        return None
    diffs = stats.paired(by_arch[default], by_arch[baseline])
    return statistics.mean(diffs), statistics.stdev(diffs) / math.sqrt(len(diffs)), float(len(diffs) - 1)


def _within_sd(by_arch: dict[ArchConfig, dict[int, float]], seeds: Sequence[int]) -> float:
    """The sd of one training once configuration and seed are removed (two-way ANOVA residual)."""
    archs = list(by_arch)
    grand = statistics.mean(by_arch[a][s] for a in archs for s in seeds)
    arch_mean = {a: statistics.mean(by_arch[a][s] for s in seeds) for a in archs}
    seed_mean = {s: statistics.mean(by_arch[a][s] for a in archs) for s in seeds}
    ss = sum((by_arch[a][s] - arch_mean[a] - seed_mean[s] + grand) ** 2 for a in archs for s in seeds)
    df = (len(archs) - 1) * (len(seeds) - 1)
    return math.sqrt(ss / df) if df > 0 else math.nan


def _interactions(frame: Any, axes: Sequence[str], formula: str, fit: Any,
                  fitted: Sequence[tuple[str, str]]) -> list[Interaction]:  # fmt: skip
    """The model's interactions (their F tests), and every other two-way interaction screened one at a time
    against the model (F test of adding it), Holm over all of them."""
    import statsmodels.api as sm
    import statsmodels.formula.api as smf

    found: list[tuple[tuple[str, str], float, float]] = []
    table = sm.stats.anova_lm(fit, typ=2)
    for a, b in fitted:
        key = f"C({a}):C({b})"
        if key in table.index:
            found.append(((a, b), float(table.loc[key, "F"]), float(table.loc[key, "PR(>F)"])))
    for a, b in itertools.combinations(axes, 2):
        if (a, b) in fitted or (b, a) in fitted:
            continue
        with warnings.catch_warnings():  # a design that cannot carry it is rank-deficient: skipped below
            warnings.simplefilter("ignore")
            bigger = smf.ols(f"{formula} + C({a}):C({b})", frame).fit()
        if bigger.df_resid < 2 or bigger.df_model <= fit.df_model or bigger.model.rank < bigger.model.exog.shape[1]:
            continue
        f, p, _ = bigger.compare_f_test(fit)
        found.append(((a, b), float(f), float(p)))
    adjusted = stats.holm([p for _, _, p in found])
    return [Interaction(ax, f, p, pa) for (ax, f, p), pa in zip(found, adjusted, strict=True)]


def report(analysis: Analysis, source: str) -> str:
    """``ablation.md``: one row per hypothesis, the level means, the interactions."""
    a = analysis
    lines = [
        f"# Factorial ablation of {source}",
        "",
        f"{a.configurations} GC configurations x {len(a.seeds)} seeds {a.seeds}, plus the baseline. Model: OLS "
        "over configuration seed-means, score ~ "
        + " + ".join([*FACTORS, *(f"{x}:{y}" for x, y in a.interactions_fitted)])
        + " (categorical); residual "
        f"sd of a configuration's mean {a.residual_sd:.4f} on {a.df:.0f} df, of which misfit (what the model leaves "
        f"unexplained) {a.misfit_sd:.4f} and seed noise {a.seed_sd / math.sqrt(len(a.seeds)):.4f} (one training's "
        f"sd after removing configuration and seed, {a.seed_sd:.4f}, over {len(a.seeds)} seeds). Each hypothesis: "
        "two-sided t test of its contrast (marginal "
        f"means over the full factorial), Holm over the {len(a.hypotheses)} hypotheses; 'equivalent' = TOST at "
        f"+-{a.margin:g}, Holm-adjusted; 'detectable' = the effect found with {POWER:.0%} power at the strictest "
        f"Holm step. GC vs baseline: paired t over seeds of the paper default against the baseline.",
        "",
        f"**{a.control.sentence()}**",
        "",
        "| hypothesis | paper (evidence) | estimate [95% interval] | Holm p | TOST p | detectable | verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    # Without the control only the control's own row keeps its verdict: the rest describe this recording only.
    shown = lambda c: a.control.holds or c.name == CONTROL.name  # noqa: E731
    lines += [_row(c, shown(c)) for c in a.hypotheses]
    if a.position:
        lines += ["", "Position (the paper left it unresolved), pairwise, Holm over its pairs:", ""]
        lines += ["| contrast | paper | estimate [95% interval] | Holm p | TOST p | detectable | verdict |",
                  "|---|---|---|---|---|---|---|"]  # fmt: skip
        lines += [_row(c, shown(c)) for c in a.position]
    if a.within_add:
        lines += ["", "Within the paper's fusion (add): each claim as the model's simple effect at fusion = add, "
                  "averaged over the other axes; Holm over this family:", "",
                  "| contrast | paper | estimate [95% interval] | Holm p | TOST p | detectable | verdict |",
                  "|---|---|---|---|---|---|---|"]  # fmt: skip
        lines += [_row(c, shown(c)) for c in a.within_add]
    lines += ["", "Marginal means (95% interval), averaged over the full factorial of the other axes:", "",
              "| axis | level | mean [95% interval] | configurations |", "|---|---|---|---|"]  # fmt: skip
    lines += [
        f"| {m.axis} | {m.level} | {m.mean:.4f} [{m.low:.4f}, {m.high:.4f}] | {m.configurations} |" for m in a.means
    ]
    if a.interactions:
        lines += ["", "Two-way interactions: those in the model (their F tests), every other pair added to it "
                  "one at a time (F test), Holm over all:", "", "| axes | F | p | Holm p |",
                  "|---|---|---|---|"]  # fmt: skip
        lines += [f"| {x.axes[0]} x {x.axes[1]} | {x.f:.2f} | {x.p:.3g} | {x.p_adjusted:.3g} |" for x in a.interactions]
    return "\n".join(lines) + "\n"


def _row(c: Contrast, verdict: bool = True) -> str:
    return (f"| {c.name} | {c.paper} | {c.estimate:+.4f} [{c.low:+.4f}, {c.high:+.4f}] | {c.p_adjusted:.3g} | "
            f"{c.p_tost:.3g} | {c.detectable:.4f} | {c.verdict if verdict else 'withheld (no control)'} |")  # fmt: skip


def run(
    space: SearchSpace | None,
    curves_file: str | None = None,
    *,
    seeds: int | None = None,
    configs: int = 40,
    margin: float = MARGIN,
    name: str | None = None,
    address: str | None = None,
    stream: TextIO | None = None,
) -> Path:
    """`gcsearch ablate --design balanced`: main effects on a balanced design, recorded now (``bench record``,
    ``configs`` configurations x ``seeds`` seeds, default 5) or read from ``curves_file``; writes the report
    (``<run>/ablation.md``, or beside the curves file) and returns its path."""
    from gcsearch.bench import curves, record
    from gcsearch.search import rundir

    if curves_file:
        source = Path(curves_file)
        if not source.is_file():
            raise ConfigError("--curves", "must name a curves file made by `gcsearch bench record`", curves_file)
        out = source.with_suffix(".ablation.md")
    else:
        if space is None:
            raise ConfigError("space", "is needed to record a balanced design (or give --curves FILE)", None)
        seeds = 5 if seeds is None else seeds
        if seeds < 2:
            raise ConfigError("--seeds", "must be >= 2: seed is the blocking factor", seeds)
        run_dir = rundir.new_run_dir(space, name, "factorial")
        source = record.record(space, run_dir, seeds, configs, address=address, stream=stream)
        out = run_dir / "ablation.md"
    recorded = curves.Curves.of(curves.read(source), str(source))
    text = report(analyse(observations(recorded), margin, str(source)), str(source))
    write_atomic(out, text)
    (stream or sys.stdout).write(f"{text}\nwrote {out}\n")
    return out
