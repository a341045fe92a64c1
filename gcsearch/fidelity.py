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
Pure Python.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from gcsearch import stats
from gcsearch.arch import ArchConfig
from gcsearch.curves import Curves
from gcsearch.files import save_figure

METRICS = ("accuracy", "-loss", "ema_accuracy", "-ema_loss")
METRIC_NAMES = {"accuracy": "val accuracy", "-loss": "val loss", "ema_accuracy": "EMA val accuracy",
                "-ema_loss": "EMA val loss"}  # fmt: skip


def ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks, ties given their average rank."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    out = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            out[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return out


def pearson(x: Sequence[float], y: Sequence[float]) -> float:
    mx, my = statistics.fmean(x), statistics.fmean(y)
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y, strict=True))
    sxx = sum((a - mx) ** 2 for a in x)
    syy = sum((b - my) ** 2 for b in y)
    return sxy / math.sqrt(sxx * syy) if sxx > 0 and syy > 0 else math.nan


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    return pearson(ranks(x), ranks(y))


def kendall(x: Sequence[float], y: Sequence[float]) -> float:
    """Kendall's tau-b (ties in either variable accounted for)."""
    conc = disc = tx = ty = 0
    for i, j in itertools.combinations(range(len(x)), 2):
        dx, dy = x[i] - x[j], y[i] - y[j]
        if dx == 0 and dy == 0:
            continue
        if dx == 0:
            tx += 1
        elif dy == 0:
            ty += 1
        elif (dx > 0) == (dy > 0):
            conc += 1
        else:
            disc += 1
    denom = math.sqrt((conc + disc + tx) * (conc + disc + ty))
    return (conc - disc) / denom if denom else math.nan


def top_overlap(x: Sequence[float], y: Sequence[float], share: float = 0.1) -> float:
    """|top k by x  intersect  top k by y| / k, with k = ceil(share * n)."""
    k = max(1, math.ceil(share * len(x)))
    top_x = set(sorted(range(len(x)), key=lambda i: -x[i])[:k])
    top_y = set(sorted(range(len(y)), key=lambda i: -y[i])[:k])
    return len(top_x & top_y) / k


@dataclass(frozen=True)
class EpochFidelity:
    metric: str
    epoch: int
    spearman: float
    kendall: float
    top10: float
    held_out: float  # Spearman against the other seeds' mean final accuracy (nan with one seed)


@dataclass(frozen=True)
class Noise:
    seeds: int
    configs: int
    seed_std: float  # std of final accuracy across seeds, pooled over configurations
    paired_std: float  # std of the same-seed difference between two configurations, pooled over pairs
    best: ArchConfig
    tied_with_best: int  # configurations whose paired 95% interval against the best contains 0
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


def fidelity(curves: Curves) -> Report:
    archs = curves.archs
    seeds = curves.common_seeds()
    archs = [a for a in archs if all((a, s) in curves.runs for s in seeds)]
    truth = [statistics.fmean(curves.final(a, s) for s in seeds) for a in archs]
    rows = []
    for metric in metrics_of(curves):
        for epoch in range(1, curves.epochs + 1):
            per_seed = []
            for s in seeds:
                x = [curves.runs[(a, s)][epoch - 1].metric(metric) for a in archs]
                others = [t for t in seeds if t != s]
                held = (
                    spearman(x, [statistics.fmean(curves.final(a, t) for t in others) for a in archs])
                    if others
                    else math.nan
                )
                per_seed.append((spearman(x, truth), kendall(x, truth), top_overlap(x, truth), held))
            means = [statistics.fmean(col) for col in zip(*per_seed, strict=True)]
            rows.append(EpochFidelity(metric, epoch, *means))
    return Report(rows, noise(curves, archs, seeds))


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
    tied = sum(not stats.t_interval(stats.paired(finals[best], finals[a])).excludes_zero for a in archs if a != best)
    return Noise(len(seeds), len(archs), math.sqrt(seed_var), math.sqrt(pair_var), best, tied, seconds)


# --------------------------------------------------------------------------- report


def table(report: Report) -> str:
    lines = [
        "| metric at the rung | epoch | Spearman | Kendall tau | top-10% overlap | Spearman vs other seeds |",
        "|---|---|---|---|---|---|",
    ]
    for r in report.rows:
        lines.append(
            f"| {METRIC_NAMES[r.metric]} | {r.epoch} | {r.spearman:+.3f} | {r.kendall:+.3f} | {r.top10:.2f} | "
            f"{_fmt(r.held_out)} |"
        )
    n = report.noise
    lines += [
        "",
        f"{n.configs} configurations x {n.seeds} seeds; {n.seconds_per_trial:.1f} training seconds per full curve.",
        f"Seed noise of final accuracy: std across seeds {_fmt(n.seed_std, '.4f')}, std of the same-seed "
        f"difference between two configurations {_fmt(n.paired_std, '.4f')}.",
        f"Best by mean final accuracy: {n.best.label()}; "
        + (
            f"{n.tied_with_best} of the other {n.configs - 1} configurations are tied with it (paired t-test, "
            "95% interval of the difference contains 0)."
            if n.tied_with_best >= 0
            else "with one seed, which others are tied with it cannot be told."
        ),
    ]
    return "\n".join(lines)


def rung_table(named: Sequence[tuple[str, Curves, Report]], epoch: int) -> str:
    """Each file's Spearman at one rung, per metric, with its cost: recipes side by side."""
    metrics = list(dict.fromkeys(r.metric for _, _, rep in named for r in rep.rows))
    head = " | ".join(f"{METRIC_NAMES[m]}" for m in metrics)
    lines = [f"| curves | epochs | {head} | seconds per trial | final accuracy of the best |",
             "|---|---|" + "---|" * len(metrics) + "---|---|"]  # fmt: skip
    for name, c, rep in named:
        cells = []
        for m in metrics:
            row = next((r for r in rep.rows if r.metric == m and r.epoch == epoch), None)
            cells.append("-" if row is None else f"{row.spearman:+.3f}")
        best = statistics.fmean(c.final(rep.noise.best, s) for s in c.common_seeds())
        lines.append(f"| {name} | {c.epochs} | {' | '.join(cells)} | {rep.noise.seconds_per_trial:.1f} | {best:.4f} |")
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
