"""Rank fidelity of recorded curves: does an early epoch rank configurations as the last one does?

For each epoch e and each pruning metric (validation accuracy, validation loss, and their EMA-weight
versions when recorded), the metric of every configuration under one seed (what a pruner sees at that
rung) is compared with the configurations' final accuracy averaged over all recorded seeds (the best
estimate of the truth; the final accuracy is the one a search reports, of the EMA weights when kept):
Spearman's rho, Kendall's tau-b and the overlap of the top 10%, averaged over seeds. Because the mean
over all seeds contains the seed being scored, the last epoch would look better than it is;
``held_out`` repeats Spearman against the mean final accuracy of the *other* seeds.

Seed noise: the standard deviation of final accuracy across seeds (pooled over configurations) and
the standard deviation of the paired difference between two configurations trained with the same seed
(pooled over all pairs); and how many configurations a paired t-test cannot separate from the best.
Each Spearman comes with a 95% percentile-bootstrap interval over configurations (24 or even 60 of them
leave a wide one), and two recipes recorded on the same design are compared paired: the same bootstrap
draw of configurations scores both (``spearman_difference``). Pure Python.
"""

from __future__ import annotations

import itertools
import math
import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from gcsearch import stats
from gcsearch.arch import ArchConfig
from gcsearch.bench.curves import Curves, read
from gcsearch.files import save_figure, write_report

METRICS = ("accuracy", "-loss", "ema_accuracy", "-ema_loss")
BOOTSTRAP = 1000  # resamples of configurations for each interval
METRIC_NAMES = {"accuracy": "val accuracy", "-loss": "val loss", "ema_accuracy": "EMA val accuracy",
                "-ema_loss": "EMA val loss"}  # fmt: skip


@dataclass(frozen=True)
class EpochFidelity:
    metric: str
    epoch: int
    spearman: float
    kendall: float
    top10: float
    held_out: float  # Spearman against the other seeds' mean final accuracy (nan with one seed)
    low: float  # 95% bootstrap interval of spearman, resampling configurations
    high: float


@dataclass(frozen=True)
class Noise:
    seeds: int
    configs: int
    seed_std: float  # std of final accuracy across seeds, pooled over configurations
    paired_std: float  # std of the same-seed difference between two configurations, pooled over pairs
    best: ArchConfig
    not_separated_from_best: int  # configurations whose paired 95% interval against the best contains 0
    seconds_per_trial: float  # mean training seconds of a full curve


@dataclass(frozen=True)
class Report:
    rows: list[EpochFidelity]
    noise: Noise

    def at(self, metric: str, epoch: int) -> EpochFidelity:
        return next(r for r in self.rows if r.metric == metric and r.epoch == epoch)


def metrics_of(curves: Curves) -> list[str]:
    has_ema = next(iter(curves.runs.values()))[0].ema_accuracy is not None
    return [m for m in METRICS if has_ema or "ema" not in m]


def _shared(curves: Curves) -> tuple[list[ArchConfig], list[int]]:
    seeds = curves.common_seeds()
    return [a for a in curves.archs if all((a, s) in curves.runs for s in seeds)], seeds


def _rung(
    curves: Curves, archs: Sequence[ArchConfig], seeds: Sequence[int], metric: str, epoch: int
) -> list[list[float]]:
    """What a pruner sees at the rung: the metric of every configuration, one list per seed."""
    return [[curves.runs[(a, s)][epoch - 1].metric(metric) for a in archs] for s in seeds]


def _truth(curves: Curves, archs: Sequence[ArchConfig], seeds: Sequence[int]) -> list[float]:
    return [statistics.fmean(curves.final(a, s) for s in seeds) for a in archs]


def _mean_spearman(per_seed: Sequence[Sequence[float]], truth: Sequence[float], idx: Sequence[int]) -> float:
    y = [truth[i] for i in idx]
    return statistics.fmean(stats.spearman([x[i] for i in idx], y) for x in per_seed)


def _draws(n: int, resamples: int, seed: int) -> list[list[int]]:
    rng = random.Random(seed)  # seeded: a report is reproducible
    return [[rng.randrange(n) for _ in range(n)] for _ in range(resamples)]


def _percentiles(values: Sequence[float]) -> tuple[float, float]:
    ok = sorted(v for v in values if not math.isnan(v))  # a draw whose truth is all ties has no rank
    if not ok:
        return math.nan, math.nan
    return ok[int(0.025 * (len(ok) - 1))], ok[math.ceil(0.975 * (len(ok) - 1))]


def fidelity(curves: Curves, resamples: int = BOOTSTRAP, seed: int = 0) -> Report:
    archs, seeds = _shared(curves)
    truth = _truth(curves, archs, seeds)
    draws = _draws(len(archs), resamples, seed)
    rows = []
    for metric in metrics_of(curves):
        for epoch in range(1, curves.epochs + 1):
            xs = _rung(curves, archs, seeds, metric, epoch)
            per_seed = []
            for x, s in zip(xs, seeds, strict=True):
                others = [t for t in seeds if t != s]
                held = (
                    stats.spearman(x, [statistics.fmean(curves.final(a, t) for t in others) for a in archs])
                    if others
                    else math.nan
                )
                per_seed.append((stats.spearman(x, truth), stats.kendall(x, truth), stats.top_overlap(x, truth), held))
            rho, tau, top, held = (statistics.fmean(col) for col in zip(*per_seed, strict=True))
            low, high = _percentiles([_mean_spearman(xs, truth, d) for d in draws])
            rows.append(EpochFidelity(metric, epoch, rho, tau, top, held, low, high))
    return Report(rows, noise(curves, archs, seeds))


@dataclass(frozen=True)
class Difference:
    """Spearman of file a minus that of file b at one rung and metric, on the configurations and seeds both
    recorded, with a paired 95% bootstrap interval (each draw of configurations scores both files)."""

    metric: str
    epoch: int
    configs: int
    seeds: int
    diff: float
    low: float
    high: float


def spearman_difference(a: Curves, b: Curves, metric: str, epoch: int, resamples: int = BOOTSTRAP,
                        seed: int = 0) -> Difference:  # fmt: skip
    seeds = sorted(set(a.common_seeds()) & set(b.common_seeds()))
    archs = [x for x in a.archs if all((x, s) in a.runs and (x, s) in b.runs for s in seeds)]
    if len(archs) < 3 or not seeds:
        raise ValueError("the two curves files share fewer than 3 configurations with a common seed")
    xa, xb = _rung(a, archs, seeds, metric, epoch), _rung(b, archs, seeds, metric, epoch)
    ta, tb = _truth(a, archs, seeds), _truth(b, archs, seeds)
    every = list(range(len(archs)))
    diff = _mean_spearman(xa, ta, every) - _mean_spearman(xb, tb, every)
    low, high = _percentiles(
        [_mean_spearman(xa, ta, d) - _mean_spearman(xb, tb, d) for d in _draws(len(archs), resamples, seed)]
    )
    return Difference(metric, epoch, len(archs), len(seeds), diff, low, high)


def noise(curves: Curves, archs: Sequence[ArchConfig], seeds: Sequence[int]) -> Noise:
    finals = {a: {s: curves.final(a, s) for s in seeds} for a in archs}
    seconds = statistics.fmean(c[-1].seconds for c in curves.runs.values())
    best = max(archs, key=lambda a: statistics.fmean(finals[a].values()))
    if len(seeds) < 2:
        return Noise(len(seeds), len(archs), math.nan, math.nan, best, -1, seconds)  # -1: one seed cannot tell
    seed_var = statistics.fmean(statistics.variance(finals[a].values()) for a in archs)
    pair_var = statistics.fmean(
        statistics.variance(stats.paired(finals[a], finals[b])) for a, b in itertools.combinations(archs, 2)
    )
    unresolved = sum(
        not stats.t_interval(stats.paired(finals[best], finals[a])).excludes_zero for a in archs if a != best
    )
    return Noise(len(seeds), len(archs), math.sqrt(seed_var), math.sqrt(pair_var), best, unresolved, seconds)


# --------------------------------------------------------------------------- report


def _ci(low: float, high: float) -> str:
    return "-" if math.isnan(low) else f"[{low:+.2f}, {high:+.2f}]"


def ceiling(report: Report) -> float:
    """Held-out Spearman of the final score itself: how well one seed's full training ranks the other
    seeds' mean. A rung is not expected to rank better than a rerun of the whole training does."""
    last = max(r.epoch for r in report.rows)
    scored = "ema_accuracy" if any(r.metric == "ema_accuracy" for r in report.rows) else "accuracy"
    return report.at(scored, last).held_out


def table(report: Report) -> str:
    lines = [
        "| metric at the rung | epoch | Spearman | 95% interval | Kendall tau | top-10% overlap | "
        "Spearman vs other seeds |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in report.rows:
        lines.append(
            f"| {METRIC_NAMES[r.metric]} | {r.epoch} | {r.spearman:+.3f} | {_ci(r.low, r.high)} | {r.kendall:+.3f} | "
            f"{r.top10:.2f} | {_fmt(r.held_out)} |"
        )
    n = report.noise
    lines += [
        "",
        f"{n.configs} configurations x {n.seeds} seeds; {n.seconds_per_trial:.1f} training seconds per full curve. "
        f"Intervals: percentile bootstrap over configurations ({BOOTSTRAP} draws).",
        f"Seed noise of final accuracy: std across seeds {_fmt(n.seed_std, '.4f')}, std of the same-seed "
        f"difference between two configurations {_fmt(n.paired_std, '.4f')}.",
        f"Noise ceiling: one seed's final score ranks the other seeds' mean final score at Spearman "
        f"{_fmt(ceiling(report))}; no rung is expected to beat a rerun of the whole training.",
        f"Best by mean final accuracy: {n.best.label()}; "
        + (
            f"{n.not_separated_from_best} of the other {n.configs - 1} configurations cannot be told from it "
            "(paired t-test, 95% interval of the difference contains 0; not an equivalence claim: with fewer "
            "than 3 seeds no interval is bounded)."
            if n.not_separated_from_best >= 0
            else "with one seed, which others can be told from it cannot be said."
        ),
    ]
    return "\n".join(lines)


def rung_table(named: Sequence[tuple[str, Curves, Report]], epoch: int) -> str:
    """Each file's Spearman at one rung (with its interval), per metric, with its cost: recipes side by side."""
    metrics = list(dict.fromkeys(r.metric for _, _, rep in named for r in rep.rows))
    head = " | ".join(f"{METRIC_NAMES[m]}" for m in metrics)
    lines = [f"| curves | epochs | {head} | seconds to the rung | seconds per trial | final accuracy of the best |",
             "|---|---|" + "---|" * len(metrics) + "---|---|---|"]  # fmt: skip
    for name, c, rep in named:
        if epoch > c.epochs:
            continue
        cells = []
        for m in metrics:
            row = next((r for r in rep.rows if r.metric == m and r.epoch == epoch), None)
            cells.append("-" if row is None else f"{row.spearman:+.2f} {_ci(row.low, row.high)}")
        best = statistics.fmean(c.final(rep.noise.best, s) for s in c.common_seeds())
        # Recipes differ in images per epoch: the same rung number is not the same cost.
        to_rung = statistics.fmean(run[epoch - 1].seconds for run in c.runs.values())
        cost = f"{to_rung:.1f} | {rep.noise.seconds_per_trial:.1f}"
        lines.append(f"| {name} | {c.epochs} | {' | '.join(cells)} | {cost} | {best:.4f} |")
    return "\n".join(lines)


def difference_table(named: Sequence[tuple[str, Curves, Report]], epoch: int) -> str:
    """Every file after the first against the first at one rung, per metric: paired bootstrap."""
    base_name, base, _ = named[0]
    metrics = [m for m in METRICS if all(m in metrics_of(c) for _, c, _ in named)]
    head = " | ".join(METRIC_NAMES[m] for m in metrics)
    lines = [f"| curves - {base_name} | configurations x seeds | {head} |", "|---|---|" + "---|" * len(metrics)]
    for name, c, _ in named[1:]:
        if epoch > c.epochs:
            continue
        try:
            diffs = [spearman_difference(c, base, m, epoch) for m in metrics]
        except ValueError:
            continue  # nothing shared to pair on
        cells = [f"{d.diff:+.2f} {_ci(d.low, d.high)}" for d in diffs]
        lines.append(f"| {name} | {diffs[0].configs} x {diffs[0].seeds} | {' | '.join(cells)} |")
    return "\n".join(lines)


def _fmt(x: float, spec: str = "+.3f") -> str:
    return "-" if math.isnan(x) else format(x, spec)


def plot(named: Sequence[tuple[str, Curves, Report]], out: str) -> None:
    """Left: Spearman against epoch, per file and metric. Right: each configuration's mean final accuracy
    with its 95% seed interval, sorted, per file."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    styles = {"accuracy": "-", "-loss": "--", "ema_accuracy": ":", "-ema_loss": "-."}
    for i, (name, curves, report) in enumerate(named):
        color = f"C{i}"
        for metric in dict.fromkeys(r.metric for r in report.rows):
            rows = [r for r in report.rows if r.metric == metric]
            left.plot([r.epoch for r in rows], [r.spearman for r in rows], styles[metric], color=color,
                      marker="o", label=f"{name}: {METRIC_NAMES[metric]}")  # fmt: skip
        seeds = curves.common_seeds()
        finals = sorted(
            (statistics.fmean(curves.final(a, s) for s in seeds), _half_width([curves.final(a, s) for s in seeds]))
            for a in curves.archs
        )
        xs = [j + i * 0.25 for j in range(len(finals))]
        right.errorbar(xs, [m for m, _ in finals], yerr=[h for _, h in finals], fmt="o", ms=3, color=color,
                       label=f"{name} ({len(seeds)} seeds)")  # fmt: skip
    left.axhline(0.7, color="grey", lw=0.8)
    left.set(xlabel="epoch (rung)", ylabel="Spearman vs mean final accuracy", title="rank fidelity per epoch")
    left.legend(fontsize=7)
    right.set(xlabel="configuration (sorted)", ylabel="final validation accuracy",
              title="final accuracy, 95% seed interval")  # fmt: skip
    right.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, out, dpi=120)
    plt.close(fig)


def _half_width(values: Sequence[float]) -> float:
    if len(values) < 2:
        return 0.0
    return stats.t_quantile(0.975, len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))


def fidelity_report(paths: Sequence[str | Path], out: Path | None = None, command: str = "") -> str:
    """The fidelity table of each curves file (several files side by side) and its picture (beside ``out``, or
    beside the first curves file); with ``out``, the report is written there too. Returns what it says."""
    picture = out.with_suffix(".png") if out else Path(paths[0]).with_suffix(".fidelity.png")
    named = []
    for path in paths:
        c = Curves.of(read(path), str(path))
        named.append((Path(path).stem, c, fidelity(c)))
    parts = []
    for (name, _, report), path in zip(named, paths, strict=True):
        parts += [f"## {name} ({path})", "", table(report), ""]
    if len(named) > 1:
        for epoch in (1, 2):
            parts += [f"## Side by side: the rung after epoch {epoch}", "", rung_table(named, epoch), "",
                      f"Paired against {named[0][0]} on the configurations and seeds both recorded (the same "
                      "bootstrap draw scores both): difference in Spearman, 95% interval.", "",
                      difference_table(named, epoch), ""]  # fmt: skip
    plot(named, str(picture))
    text = "\n".join(parts)
    if out is not None:
        write_report(out, "Rank fidelity", command, text, picture)
    return "\n".join([text, *([f"wrote {out}"] if out else []), f"wrote {picture}"])
