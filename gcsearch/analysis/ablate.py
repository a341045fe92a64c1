"""The paper's one-factor-at-a-time ablation, on the user's space. Pure Python: no torch, no ray.

Around a reference configuration (the paper default: c3-c5, att + add, ratio 1/16, LayerNorm,
after_1x1, or the nearest point of the space when it lacks one of those values) each axis of the space
is varied alone; the baseline without GC is added. Every point is trained to full fidelity with the same
seeds (``search.run`` with a fixed plan, no pruning). A seed gives every point the same initial backbone
weights and batch order, so points are compared by their per-seed differences: per axis, each value
against the axis's best with a paired t interval, an exact sign-flip p-value, and a Holm-Bonferroni
correction over all comparisons of the ablation ("separable" = Holm-adjusted p <= 0.05). A point
whose every seed failed has no mean: it ranks last on its axis and is shown as failed.

The default number of seeds is powered for that correction: Holm tests the smallest of the m p-values at
0.05 / m, so the seeds are those a paired t-test at 0.05 / m needs to detect ``EFFECT`` with 80% power.
"""

from __future__ import annotations

import itertools
import math
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TextIO

from gcsearch import stats
from gcsearch.analysis.claims import PAPER
from gcsearch.analysis.control import control
from gcsearch.arch import AXES, GATED, ArchConfig
from gcsearch.errors import ConfigError
from gcsearch.files import write_atomic
from gcsearch.pareto import TrialRecord, trained
from gcsearch.space import SearchSpace

# The standard deviation of the same-seed difference in final accuracy between two configurations,
# measured on the from-scratch proxy (gc-scratch.yaml, 60 configurations x 3 seeds:
# experiments/results/recipes-noise.md; the fine-tuning recipe of gc.yaml measures 0.0010 there, so this
# is the conservative figure), and the smallest effect worth finding: the default number of seeds detects
# it with 80% power by a paired t-test at the level Holm applies to the smallest p-value of the ablation
# (0.05 / m over its m comparisons), and is never below 5.
PAIRED_SD = 0.0055
EFFECT = 0.005
MIN_SEEDS = 5
ALPHA = 0.05


def comparisons(space: SearchSpace) -> int:
    """How many comparisons the ablation of ``space`` makes (the Holm family): each point but the
    reference and the baseline against its axis's best."""
    return max(1, len(points(space)) - 2)


def default_seeds(effect: float = EFFECT, sd: float = PAIRED_SD, comparisons: int = 1) -> int:
    """Seeds for 80% power to detect ``effect`` at Holm's first step over ``comparisons`` tests (a paired
    t-test at ALPHA / comparisons), and at least MIN_SEEDS."""
    if comparisons < 1:
        raise ValueError("comparisons must be >= 1")
    return max(MIN_SEEDS, stats.seeds_needed(sd, effect, alpha=ALPHA / comparisons))


@dataclass(frozen=True)
class Point:
    axis: str  # one of AXES, or "reference" / "baseline"
    value: str
    arch: ArchConfig


def run(
    space: SearchSpace,
    seeds: int | None = None,
    *,
    effect: float | None = None,
    epochs: int | None = None,
    name: str | None = None,
    address: str | None = None,
    stream: TextIO | None = None,
    margin: float = stats.MARGIN,
) -> Path:
    """Train every point of the ablation with ``seeds`` seeds (default: powered for ``effect``, see
    ``default_seeds``), each for ``epochs`` (default: the file's), no pruning, in ``<output>/<name>`` (rerun
    the same name to continue it); writes ``ablation.md`` there and returns the run directory."""
    from gcsearch.search import rundir, tune

    stream = stream or sys.stdout
    if effect is not None and not 0 < effect < 1:
        raise ConfigError("--effect", "must be an accuracy difference in (0, 1)", effect)
    if seeds is None:
        m = comparisons(space)
        seeds = default_seeds(effect or EFFECT, comparisons=m)
        stream.write(f"--seeds {seeds}: a paired t-test then detects a difference of {effect or EFFECT:g} with "
                     f"80% power at Holm's first step over the ablation's {m} comparisons (alpha 0.05 / {m}), "
                     f"given the paired seed noise {PAIRED_SD:g} measured on the from-scratch proxy "
                     "(gc-scratch.yaml)\n")  # fmt: skip
    if seeds < stats.MIN_PAIRS:
        raise ConfigError("--seeds", f"must be >= {stats.MIN_PAIRS}: a paired comparison resolves nothing with "
                          "fewer seeds", seeds)  # fmt: skip
    if epochs is not None:
        space = replace(space, train=replace(space.train, epochs=epochs))
    run_dir = rundir.new_run_dir(space, name, "ablate")
    points_ = points(space)
    plan = [(p.arch, seed) for p in points_ for seed in range(seeds)]
    stream.write(f"ablation of {space.path}: {len(points_)} points x {seeds} seeds = {len(plan)} trainings of "
                 f"{space.train.epochs} epochs -> {run_dir}/ (rerun the same --name to continue)\n")  # fmt: skip
    stream.flush()
    records = tune.run(space, run_dir, address=address, stream=stream, plan=plan)
    text = table(rows(points_, records), margin)
    write_atomic(run_dir.resolve() / "ablation.md", f"# Ablation of {space.path}\n\n{text}\n")
    stream.write(f"{text}\n\nwrote {run_dir}/ablation.md\n")
    return run_dir


def points(space: SearchSpace, reference: ArchConfig | None = None) -> list[Point]:
    """The reference (the paper default as a point of the space: an ablation varies one axis of the space at a
    time, so its centre must be one), each axis's other values around it, and the baseline."""
    ref = reference or space.reference()
    if ref is None:
        raise ConfigError("stages", "must offer a stage set with GC blocks to ablate around", [], space.path)
    out = [Point("reference", "reference", ref)]
    for axis in AXES:
        choices: Sequence[Any] = getattr(space.axes, axis)
        for choice in choices:
            if axis == "stages" and not choice:
                continue  # the baseline is its own point
            # A gated fusion comes with each of the space's gate starts (the gate is part of the fusion).
            gates = space.axes.gate_init if axis == "fusion" and choice in GATED and ref.fusion not in GATED else [None]
            for gate in gates:
                arch = replace(ref, **{axis: choice, **({"gate_init": gate} if gate else {})})
                if arch != ref and all(arch != p.arch for p in out):
                    value = arch.value_text(axis) + (f" ({gate} gate)" if gate and len(gates) > 1 else "")
                    out.append(Point(axis, value, arch))
    out.append(Point("baseline", "no GC", ArchConfig()))
    return out


@dataclass(frozen=True)
class Row:
    point: Point
    accuracies: dict[int, float]  # seed -> final accuracy: seeds pair the comparisons
    macs: int
    params: int

    @property
    def failed(self) -> bool:
        """Every seed failed (or none finished): no mean to rank by."""
        return not self.accuracies

    @property
    def mean(self) -> float:
        return statistics.fmean(self.accuracies.values()) if self.accuracies else math.nan

    @property
    def std(self) -> float:
        return statistics.stdev(self.accuracies.values()) if len(self.accuracies) > 1 else math.nan


def best_first(rows: Sequence[Row]) -> list[Row]:
    """Rows by mean accuracy, best first; failed rows (no mean: NaN, which sorts nowhere) last, in the
    order given."""
    return sorted(rows, key=lambda r: (r.failed, -r.mean if not r.failed else 0.0))


@dataclass(frozen=True)
class Comparison:
    """The axis's best value against one other value, paired by seed."""

    value: str
    interval: stats.Interval | None  # best - value: mean, 95% t interval, p (None with < 2 common seeds)
    holm_p: float  # the p-value adjusted over every comparison of the ablation
    sign_p: float  # exact sign-flip p-value, for few seeds
    failed: bool = False  # every seed of this value failed: nothing to compare

    @property
    def separable(self) -> bool:
        return self.interval is not None and self.holm_p <= ALPHA


@dataclass(frozen=True)
class AxisResult:
    axis: str
    ranking: tuple[str, ...]  # values, best first (reference value included), failed values last
    best: str  # "" when every value of the axis failed
    comparisons: tuple[Comparison, ...]  # best against each other value, runner-up first, failed ones last
    failed: tuple[str, ...] = ()  # values whose every seed failed

    @property
    def runner_up(self) -> str | None:
        return self.comparisons[0].value if self.comparisons else None

    @property
    def lead(self) -> float:
        c = self.comparisons[0] if self.comparisons else None
        return c.interval.mean if c is not None and c.interval is not None else math.nan

    @property
    def separable(self) -> bool:
        """The best leads its runner-up beyond seed noise (paired t-test, Holm-adjusted over the ablation)."""
        return bool(self.comparisons) and self.comparisons[0].separable


def axis_results(rows: Sequence[Row]) -> list[AxisResult]:
    """Per axis: its variants plus the reference (the reference's value on that axis), best first; each
    value compared with the best, paired by seed; Holm-Bonferroni over all comparisons of the ablation."""
    ref = next(r for r in rows if r.point.axis == "reference")
    ranked_axes = []
    for axis in AXES:
        candidates = [r for r in rows if r.point.axis == axis]
        if not candidates:
            continue
        ref_row = Row(Point(axis, ref.point.arch.value_text(axis), ref.point.arch), ref.accuracies, ref.macs,
                      ref.params)  # fmt: skip
        ranked_axes.append((axis, best_first([ref_row, *candidates])))
    # (axis, value, interval, sign p, failed); a failed value stays in the family with p = 1 (conservative)
    pending: list[tuple[str, str, stats.Interval | None, float, bool]] = []
    for axis, ranked in ranked_axes:
        best = ranked[0]
        if best.failed:
            continue  # every value of the axis failed: no best to compare with
        for other in ranked[1:]:
            diffs = stats.paired(best.accuracies, other.accuracies)
            interval = stats.t_interval(diffs) if len(diffs) >= 2 else None
            sign = stats.sign_flip_p(diffs) if 1 <= len(diffs) <= 20 else math.nan
            pending.append((axis, other.point.value, interval, sign, other.failed))
    adjusted = stats.holm([i.p if i is not None else 1.0 for _, _, i, _, _ in pending])
    out = []
    for axis, ranked in ranked_axes:
        comps = tuple(
            Comparison(value, interval, p, sign, failed)
            for (a, value, interval, sign, failed), p in zip(pending, adjusted, strict=True)
            if a == axis
        )
        failed_values = tuple(r.point.value for r in ranked if r.failed)
        best_value = "" if ranked[0].failed else ranked[0].point.value
        out.append(AxisResult(axis, tuple(r.point.value for r in ranked), best_value, comps, failed_values))
    return out


def claims(rows: Sequence[Row], margin: float = stats.MARGIN) -> tuple[list[stats.Contrast], list[stats.Contrast]]:
    """The paper's claims as it tested them, one factor at a time from its default: each claim (``claims.PAPER``)
    is the default against the neighbour that changes that one axis (or the two neighbours, for a claim on a
    value the default does not hold: ratio 1/4 against 1/16 is the 1/4 neighbour against the default), paired by
    seed; a gated fusion at each of the space's gate starts. Holm over the family; equivalent only by TOST at
    ``margin``; each with the effect it detects with 80% power at Holm's strictest step. Position, which the
    paper left open, pairwise in a family of its own. Returns (claims, position)."""
    ref = next((r for r in rows if r.point.axis == "reference"), None)
    base = next((r for r in rows if r.point.axis == "baseline"), None)
    if ref is None:
        return [], []

    def on(axis: str, text: str, gate: str | None = None) -> Row | None:
        """The row holding ``text`` on ``axis`` and the reference's values elsewhere (the reference itself)."""
        for r in [ref, *(r for r in rows if r.point.axis == axis)]:
            if r.point.arch.value_text(axis) == text and (gate is None or r.point.arch.gate_init == gate):
                return r
        return None

    def test(name: str, paper: str, better: Row | None, worse: Row | None,
             words: tuple[str, str]) -> tuple[str, str, float, float, float, tuple[str, str]] | None:  # fmt: skip
        if better is None or worse is None or better.failed or worse.failed:
            return None
        diffs = stats.paired(better.accuracies, worse.accuracies)
        if len(diffs) < 2:
            return None
        return (name, paper, statistics.fmean(diffs), statistics.stdev(diffs) / math.sqrt(len(diffs)),
                float(len(diffs) - 1), words)  # fmt: skip

    family = []
    for h in PAPER:
        paper = f"{h.better} better ({h.evidence})"
        if h.axis == "gc":
            family.append(test(h.name, paper, ref, base, ("agree", "disagree")))
            continue
        gates = sorted({r.point.arch.gate_init for r in rows if r.point.axis == h.axis and r.point.arch.gate_init})
        for gate in gates if h.axis == "fusion" and h.worse in GATED and gates else [None]:
            name = h.name if gate is None else f"{h.name}/{gate}"
            family.append(test(name, paper, on(h.axis, h.better), on(h.axis, h.worse, gate), ("agree", "disagree")))
    positions = [r for r in [ref, *(r for r in rows if r.point.axis == "position")] if not r.failed]
    position = [test(f"position: {a.point.arch.position} - {b.point.arch.position}", "unresolved", a, b,
                     (f"{a.point.arch.position} better", f"{b.point.arch.position} better"))
                for a, b in itertools.combinations(positions, 2)]  # fmt: skip
    return (stats.judge([t for t in family if t is not None], margin),
            stats.judge([t for t in position if t is not None], margin))  # fmt: skip


def claims_table(rows: Sequence[Row], holds: bool, margin: float = stats.MARGIN) -> list[str]:
    """The paper's claims, one factor at a time, as report lines."""
    family, position = claims(rows, margin)
    if not family:
        return []
    lines = ["", "The paper's claims as it tested them, one factor at a time from its default: the default against the "
             "neighbour that changes one axis, paired by seed; two-sided t, Holm over the claims; 'equivalent' = "
             f"TOST at +-{margin:g}; 'detectable' = the effect found with 80% power at Holm's strictest step.", "",
             "| claim | paper (evidence) | estimate [95% interval] | Holm p | TOST p | detectable | verdict |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip

    def row(c: stats.Contrast) -> str:
        verdict = c.verdict if holds or c.name.startswith("gc") else "withheld (no control)"
        return (f"| {c.name} | {c.paper} | {c.estimate:+.4f} [{c.low:+.4f}, {c.high:+.4f}] | {c.p_adjusted:.3g} | "
                f"{c.p_tost:.3g} | {c.detectable:.4f} | {verdict} |")  # fmt: skip

    lines += [row(c) for c in family]
    if position:
        lines += ["", "Position (the paper left it unresolved), pairwise, Holm over its pairs:", "",
                  "| contrast | paper | estimate [95% interval] | Holm p | TOST p | detectable | verdict |",
                  "|---|---|---|---|---|---|---|", *(row(c) for c in position)]  # fmt: skip
    return lines


def paired_sd(rows: Sequence[Row]) -> float:
    """Standard deviation of same-seed differences between two points, pooled over all pairs of points."""
    variances = []
    for i, a in enumerate(rows):
        for b in rows[i + 1 :]:
            diffs = stats.paired(a.accuracies, b.accuracies)
            if len(diffs) >= 2:
                variances.append(statistics.variance(diffs))
    return math.sqrt(statistics.fmean(variances)) if variances else math.nan


def table(rows: Sequence[Row], margin: float = stats.MARGIN) -> str:
    by_axis = {r.point.axis: r for r in rows if r.point.axis in ("reference", "baseline")}
    ref, base = by_axis.get("reference"), by_axis.get("baseline")
    check = control(ref.accuracies if ref else None, base.accuracies if base else None)
    lines = [
        f"**{check.sentence()}**",
        "",
        "| axis | value | accuracy mean | std | seeds | MACs | params |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        mean = "failed (no seed completed)" if r.failed else f"{r.mean:.4f}"
        std = f"{r.std:.4f}" if math.isfinite(r.std) else "-"
        lines.append(
            f"| {r.point.axis} | {r.point.value} | {mean} | {std} | {len(r.accuracies)} | {r.macs:,d} | {r.params:,d} |"
        )
    results = axis_results(rows)
    m = sum(len(a.comparisons) for a in results)
    lines += ["", "Each value against its axis's best, paired by seed: mean difference (best - value) with its 95% "
              f"Student-t interval, p-value, Holm-adjusted p over the {m} comparisons of this ablation, exact "
              "sign-flip p. Separable: Holm-adjusted p <= 0.05.", "",
              "| axis | best | value | difference [95% interval] | p | Holm p | sign-flip p | separable |",
              "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for a in results:
        if not a.best:
            lines.append(f"| {a.axis} | - | {', '.join(a.failed)} | - (every value failed) | - | - | - | no |")
            continue
        for c in a.comparisons:
            if c.failed:
                lines.append(f"| {a.axis} | {a.best} | {c.value} | failed (no seed completed) | - | - | - | no |")
                continue
            if c.interval is None:
                lines.append(f"| {a.axis} | {a.best} | {c.value} | - (fewer than 2 paired seeds) | - | - | - | no |")
                continue
            lines.append(
                f"| {a.axis} | {a.best} | {c.value} | {c.interval.text()} | {c.interval.p:.3f} | {c.holm_p:.3f} | "
                f"{c.sign_p:.3f} | {('yes' if c.separable else 'no') if check.holds else 'withheld (no control)'} |"
            )
    lines += claims_table(rows, check.holds, margin)
    seeds = min((len(r.accuracies) for r in rows if not r.failed), default=0)
    sd = paired_sd(rows)
    if seeds >= 2 and math.isfinite(sd):
        first = ALPHA / max(1, m)
        lines += ["", f"Power: with {seeds} seeds and the paired standard deviation seen here ({sd:.4f}), a paired "
                  f"t-test detects with 80% power a difference of {stats.detectable(sd, seeds, first):.4f} at "
                  f"Holm's first step over the {m} comparisons (alpha 0.05 / {m} = {first:.4f}), "
                  f"{stats.detectable(sd, seeds):.4f} at 5% alone."]  # fmt: skip
    return "\n".join(lines)


def rows(points_: Sequence[Point], records: Sequence[TrialRecord]) -> list[Row]:
    """Each point's COMPLETE accuracies (one per seed) from a run's records."""
    out, runs = [], trained(records)
    for p in points_:
        mine = [r for r in runs if r.arch == p.arch]
        accs = {r.seed or 0: r.accuracy for r in mine if r.state == "COMPLETE" and r.accuracy is not None}
        macs, params = (mine[0].macs, mine[0].params) if mine else (0, 0)
        out.append(Row(p, accs, macs, params))
    return out
