"""`gcsearch bench replay`: a search replayed against recorded curves, in seconds, without training.

The replay drives the real ``Decider`` (``decider.py``): the same sampler factory, pruners, duplicate
handling and reference trials as ``gcsearch run``, over an in-memory Optuna storage. Only the trainings
are replaced: a trial "trains" by reading its configuration's recorded curve under one recorded seed
(chosen per replay seed), epoch by epoch, on a simulated clock with ``workers`` parallel workers driven
by the recorded seconds, so pruners see trials reach their rungs in the order they would for real.

When the curves hold a sample of a large grid, the search may only train recorded configurations
(``Decider(within=...)``): a proposal outside the recording is told FAIL and replaced by the recorded
configuration nearest to it (fewest differing axes, then the first in label order), so the sampler
learns only from what was read. The grid strategy walks the recorded set. The metrics below are
computed against the truth of the recorded set: each configuration's final accuracy averaged over all
recorded seeds.

Per replay: the epochs spent until a top-3 configuration has been trained to the end; the hypervolume of
the (true accuracy, MACs) front of the COMPLETE trials against epochs spent, normalised to the front of
the whole recorded set; and the final regret of the pick a user would make (the COMPLETE trial with
the best accuracy the search saw) against the best recorded configuration.
"""

from __future__ import annotations

import dataclasses
import heapq
import math
import random
import sys
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from gcsearch import stats
from gcsearch.arch import ArchConfig
from gcsearch.bench.curves import CurvePoint, Curves, read
from gcsearch.epoch import Outcome
from gcsearch.errors import ConfigError
from gcsearch.files import save_figure, write_report
from gcsearch.search import attrs
from gcsearch.search.strategy import Strategy
from gcsearch.space import SearchSpace

Costs = dict[ArchConfig, tuple[int, int]]  # (MACs, params) per configuration, as the search is told them


@dataclass(frozen=True)
class Trace:
    """One replay: after each trial ended, (epochs spent so far, normalised hypervolume); and every trial
    completed, as (epochs spent when it completed, configuration, the search's own score of it)."""

    strategy: str
    seed: int
    hv: list[tuple[int, float]]
    epochs_to_top3: float  # inf when no top-3 configuration was completed
    regret: float
    epochs: int  # epochs spent in all
    trials: int  # trials started
    proposals: int
    duplicates: int
    outside: int  # proposals outside the recording, replaced by their nearest recorded configuration
    recorded_seed: int = 0  # the recorded seed this replay read
    completed: tuple[tuple[int, ArchConfig, float], ...] = ()

    def hv_at(self, epochs: int) -> float:
        return max((h for e, h in self.hv if e <= epochs), default=0.0)


class Truth:
    """What the recorded curves say about each configuration: mean final accuracy over seeds, MACs."""

    def __init__(self, curves: Curves):
        self.curves = curves
        self.archs = curves.archs
        self.mean = {a: curves.final_mean(a) for a in self.archs}
        self.macs = {a: curves.runs[(a, curves.seeds(a)[0])][0].macs for a in self.archs}
        ranked = sorted(self.archs, key=lambda a: -self.mean[a])
        self.top3 = set(ranked[:3])
        self.best = self.mean[ranked[0]]
        accs, macs = list(self.mean.values()), list(self.macs.values())
        self.acc_lo, self.acc_hi = min(accs), max(accs)
        self.macs_lo, self.macs_hi = min(macs), max(macs)
        self.full = self.hypervolume(self.archs)

    def hypervolume(self, archs: Sequence[ArchConfig]) -> float:
        """Area dominated by the (accuracy, MACs) front, both scaled to [0, 1] over the recorded set,
        against the reference point (worst accuracy, worst MACs) pushed out by 10%."""
        points = sorted(
            {(self._x(a), self._y(a)) for a in archs}, key=lambda p: (p[1], -p[0])
        )  # by cost, cheapest first
        area, best = 0.0, 0.0
        ref_cost = 1.1
        for i, (acc, cost) in enumerate(points):
            best = max(best, acc)
            next_cost = points[i + 1][1] if i + 1 < len(points) else ref_cost
            area += best * (next_cost - cost)
        return area

    def _x(self, a: ArchConfig) -> float:  # accuracy, 0.1 at the worst recorded, 1.1 at the best
        span = self.acc_hi - self.acc_lo or 1.0
        return 0.1 + (self.mean[a] - self.acc_lo) / span

    def _y(self, a: ArchConfig) -> float:  # cost, 0 at the cheapest recorded, 1 at the dearest
        span = self.macs_hi - self.macs_lo or 1.0
        return (self.macs[a] - self.macs_lo) / span


def recorded_costs(curves: Curves) -> Costs:
    """(MACs, params) of each recorded configuration, as recorded."""
    return {a: (curves.runs[(a, curves.seeds(a)[0])][0].macs, curves.runs[(a, curves.seeds(a)[0])][0].params)
            for a in curves.archs}  # fmt: skip


def permuted_costs(curves: Curves, seed: int) -> Costs:
    """The negative control: each configuration's (MACs, params) given to another, by a seeded
    permutation, so cost no longer tells anything about accuracy."""
    archs = sorted(curves.archs, key=lambda a: a.label())
    costs = recorded_costs(curves)
    values = [costs[a] for a in archs]
    random.Random(seed).shuffle(values)
    return dict(zip(archs, values, strict=True))


def replay(
    curves: Curves,
    space: SearchSpace,
    strategy: str | Strategy,
    seed: int,
    workers: int = 2,
    budget_epochs: int | None = None,
    truth: Truth | None = None,
    costs: Costs | None = None,
    trials: int | None = None,
    reads: Mapping[ArchConfig, int] | None = None,
    latencies: Mapping[ArchConfig, float] | None = None,
) -> Trace:
    """One replay; replay seed ``seed`` reads recorded seed ``common_seeds()[seed % n]``, or with ``reads`` each
    configuration at its own recorded seed (``mixed_reads``). ``costs``: the (MACs, params) the search is told
    (default: as recorded; ``permuted_costs`` for the negative control). ``trials``: the search's budget as a user
    gives it (``--trials``; its references and start-up scale with it), default the whole recording.
    ``latencies``: each configuration's measured latency (experiments/latency_table.py), told to the search as a
    trial measures it before training, for a space whose objectives include latency."""
    import optuna

    from gcsearch.search.decider import Decider, grid_plan

    st = strategy if isinstance(strategy, Strategy) else Strategy.parse(strategy, space.search)
    truth = truth or Truth(curves)
    full = len(truth.archs) * curves.epochs
    budget_epochs = budget_epochs or full
    seeds = curves.common_seeds()
    recorded_seed = seeds[seed % len(seeds)]
    # The recording's fidelity is the replay's: its last epoch is what COMPLETE means.
    # One recorded seed per replay: the reference trials' extra seeds have nothing to read.
    # With mixed reads a reference's extra seeds read its other recorded seeds (a recording holds them deep).
    ref_seeds = space.search.reference_seeds if reads is not None else 1
    sp = dataclasses.replace(space.with_search(seed=seed, trials=trials or len(truth.archs), max_macs=None,
                                               reference_seeds=ref_seeds),
                             train=dataclasses.replace(space.train, epochs=curves.epochs))  # fmt: skip
    costs = costs or recorded_costs(curves)
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # a replay makes thousands of trials
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # experimental-feature notices of Optuna's samplers
        plan = grid_plan(sp, truth.archs, st.references) if st.sampler == "grid" else None
        decider = Decider(sp, optuna.storages.InMemoryStorage(), sp.search.trials, plan=plan, within=truth.archs,
                          coster=costs.__getitem__, strategy=st)  # fmt: skip
        return _run(decider, curves, truth, st.name, seed, recorded_seed, workers, budget_epochs, reads, latencies)


def mixed_reads(curves: Curves, seed: int) -> dict[ArchConfig, int]:
    """Replay ``seed``'s read of each configuration: one of its recorded seeds, drawn per configuration. Each
    replay is then a noise draw of its own (with two seeds per configuration, reading one seed for all gave two
    draws in all); its held-out truth is each configuration's other seeds (``heldout.truth_of``)."""
    rng = random.Random(seed)
    return {a: rng.choice(curves.seeds(a)) for a in curves.archs}


def _run(decider, curves, truth, strategy, seed, recorded_seed, workers, budget_epochs, reads=None,  # type: ignore[no-untyped-def]
         latencies=None) -> Trace:  # fmt: skip
    events: list[tuple[float, int, int, int]] = []  # (time, order, trial number, 0-based epoch)
    read: dict[int, tuple[ArchConfig, list[CurvePoint]]] = {}
    order = spent = 0
    complete: list[tuple[float, ArchConfig]] = []  # (accuracy the search saw, configuration read)
    completed: list[tuple[int, ArchConfig, float]] = []  # (epochs spent by then, configuration, score)
    hv: list[tuple[int, float]] = [(0, 0.0)]
    to_top3 = math.inf

    def start(now: float) -> bool:
        nonlocal order
        if spent >= budget_epochs:
            return False
        proposal = decider.propose()
        if proposal is None:
            return False
        arch = proposal.arch
        if reads is None:
            curve = curves.runs[(arch, recorded_seed)]
        else:  # the configuration's read seed; a reference's k-th extra seed, its k-th other recorded seed
            others = [s for s in curves.seeds(arch) if s != reads[arch]]
            k = 0 if proposal.seed is None else proposal.seed - decider.space.train.seed
            curve = curves.runs[(arch, reads[arch] if k == 0 or k > len(others) else others[k - 1])]
        read[proposal.number] = (arch, curve)
        if latencies is not None:  # measured by the trial before it trains
            decider.note(proposal.number, latency=latencies[arch])
        order += 1
        heapq.heappush(events, (now + curve[0].seconds, order, proposal.number, 0))
        return True

    for _ in range(workers):
        start(0.0)
    while events:
        now, _, number, e = heapq.heappop(events)
        arch, curve = read[number]
        p = curve[e]
        epoch = p.as_epoch()
        spent += 1
        pruned = decider.report(number, epoch)
        last = e + 1 == len(curve)
        if pruned or last:
            decider.finish(number, Outcome.ENDED, epoch)
            if last and not pruned:
                complete.append((decider.main.trials[number].user_attrs[attrs.ACCURACY], arch))
                completed.append((spent, arch, complete[-1][0]))
                if arch in truth.top3:
                    to_top3 = min(to_top3, spent)
                hv.append((spent, truth.hypervolume([a for _, a in complete]) / truth.full))
            start(now)
        else:
            order += 1
            heapq.heappush(events, (now + curve[e + 1].seconds - p.seconds, order, number, e + 1))
    pick = max(complete, key=lambda c: c[0])[1] if complete else None
    regret = truth.best - truth.mean[pick] if pick is not None else math.inf
    return Trace(strategy, seed, hv, to_top3, regret, spent, len(read), decider.proposals, decider.duplicates,
                 decider.outside, recorded_seed, tuple(completed))  # fmt: skip


_SHARED: dict[str, Any] = {}


def _init(curves: Curves, space: SearchSpace, workers: int, budget: int, costs: Costs | None = None,
          trials: int | None = None, mixed: bool = False,
          latencies: Mapping[ArchConfig, float] | None = None) -> None:  # fmt: skip
    _SHARED.update(curves=curves, space=space, workers=workers, budget=budget, truth=Truth(curves), costs=costs,
                   trials=trials, mixed=mixed, latencies=latencies)  # fmt: skip


def _one(job: tuple[str | Strategy, int]) -> Trace:
    g = _SHARED
    reads = mixed_reads(g["curves"], job[1]) if g["mixed"] else None
    return replay(g["curves"], g["space"], job[0], job[1], g["workers"], g["budget"], g["truth"], g["costs"],
                  g["trials"], reads, g["latencies"])  # fmt: skip


def replay_many(
    curves: Curves,
    space: SearchSpace,
    names: Sequence[str | Strategy],
    seeds: int,
    workers: int,
    budget: int,
    jobs: int = 1,
    costs: Costs | None = None,
    trials: int | None = None,
    mixed: bool = False,
    latencies: Mapping[ArchConfig, float] | None = None,
) -> dict[str, list[Trace]]:
    """Every strategy under replay seeds 0..seeds-1, in ``jobs`` processes; traces in seed order, keyed by
    the strategy's name. ``trials``: the searches' budget as ``--trials``; ``mixed``: each replay reads each
    configuration at a seed of its own (``mixed_reads``)."""
    todo = [(name, seed) for name in names for seed in range(seeds)]
    if jobs == 1:
        _init(curves, space, workers, budget, costs, trials, mixed, latencies)
        done = [_one(job) for job in todo]
    else:
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")
        init = (curves, space, workers, budget, costs, trials, mixed, latencies)
        with ctx.Pool(jobs, initializer=_init, initargs=init) as pool:
            done = pool.map(_one, todo, chunksize=1)
    out: dict[str, list[Trace]] = {}
    for (name, _), trace in zip(todo, done, strict=True):
        out.setdefault(name if isinstance(name, str) else name.name, []).append(trace)
    return out


# --------------------------------------------------------------------------- summaries


def quartiles(values: Sequence[float]) -> tuple[float, float, float]:
    """(25th, 50th, 75th) percentiles, interpolated between order statistics (the "inclusive" method),
    inf-aware: a search that never found a top-3 counts as inf, and so does any percentile reaching it."""
    v = sorted(values)

    def at(f: float) -> float:
        pos = f * (len(v) - 1)
        i = math.floor(pos)
        frac = pos - i
        if frac == 0 or i + 1 >= len(v):
            return v[i]
        lo, hi = v[i], v[i + 1]
        return math.inf if math.isinf(hi) else lo + (hi - lo) * frac

    return at(0.25), at(0.5), at(0.75)


def epochs_to_hv(trace: Trace, share: float) -> float:
    return next((e for e, h in trace.hv if h >= share), math.inf)


def versus(
    a: Sequence[Trace], b: Sequence[Trace], metric: Callable[[Trace], float], lower_is_better: bool = False
) -> str:
    """Strategy a against b on ``metric``, paired by replay seed (the same recorded seed is read): seeds
    won-lost (ties left out) and the exact sign test's two-sided p."""
    sign = -1 if lower_is_better else 1
    outcomes = [sign * ((metric(x) > metric(y)) - (metric(x) < metric(y))) for x, y in zip(a, b, strict=True)]
    wins, losses = outcomes.count(1), outcomes.count(-1)
    return f"{wins}-{losses} (p {stats.sign_test_p(wins, losses):.2f})"


def top3_sooner(a: Sequence[Trace], b: Sequence[Trace]) -> str:
    return versus(a, b, lambda t: t.epochs_to_top3, lower_is_better=True)


def hv_higher(a: Sequence[Trace], b: Sequence[Trace], epochs: int) -> str:
    return versus(a, b, lambda t: t.hv_at(epochs))


def check_space(curves: Curves, space: SearchSpace, where: str) -> None:
    """Curves of another space cannot be replayed: each recorded configuration must be a point of it."""
    grid = set(space.grid())
    stray = [a for a in curves.archs if a not in grid]
    if stray:
        raise ConfigError("curves", f"must hold configurations of {space.path}; {len(stray)} are not, e.g. "
                          f"{stray[0].label()}", where=where)  # fmt: skip


def table(traces: dict[str, list[Trace]], full: int, baseline: str = "random+none") -> str:
    """Per strategy over replay seeds: median [quartiles] of each metric, and sign tests against
    ``baseline`` paired by replay seed: a top-3 configuration found sooner; a higher hypervolume at 25%."""

    def q(values: Sequence[float], scale: float = 1.0, spec: str = ".0f") -> str:
        lo, mid, hi = quartiles(values)
        f = lambda x: "never" if not math.isfinite(x) else format(x * scale, spec)  # noqa: E731
        return f"{f(mid)} [{f(lo)}, {f(hi)}]"

    lines = [
        f"| strategy | epochs to a top-3 (% of {full}) | hypervolume at 10% | at 25% | at 50% | "
        "% epochs to 95% HV | to 99% HV | final regret | duplicate proposals | proposals outside the recording | "
        f"vs {baseline}: top-3 sooner, seeds won-lost (sign test) | vs {baseline}: higher HV at 25% |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    ref = traces.get(baseline)
    for name, ts in traces.items():
        dup = sum(t.duplicates for t in ts) / max(1, sum(t.proposals for t in ts))
        outside = sum(t.outside for t in ts) / max(1, sum(t.proposals for t in ts))
        sooner = hv25 = "-"
        if ref is not None and name != baseline:
            sooner, hv25 = top3_sooner(ts, ref), hv_higher(ts, ref, full // 4)
        lines.append(
            f"| {name} | {q([t.epochs_to_top3 for t in ts], 100 / full)} | "
            f"{q([t.hv_at(full // 10) for t in ts], 1, '.3f')} | {q([t.hv_at(full // 4) for t in ts], 1, '.3f')} | "
            f"{q([t.hv_at(full // 2) for t in ts], 1, '.3f')} | {q([epochs_to_hv(t, 0.95) for t in ts], 100 / full)} | "
            f"{q([epochs_to_hv(t, 0.99) for t in ts], 100 / full)} | {q([t.regret for t in ts], 1, '.4f')} | "
            f"{dup:.0%} | {outside:.0%} | {sooner} | {hv25} |"
        )
    return "\n".join(lines)


def plot(traces: dict[str, list[Trace]], full: int, out: str, budget: int) -> None:
    """Hypervolume against epochs, one line per strategy (median over seeds) with a quartile band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 5.5))
    xs = list(range(0, budget + 1, max(1, budget // 100)))
    for i, (name, ts) in enumerate(traces.items()):
        curves_ = [[t.hv_at(x) for t in ts] for x in xs]
        qs = [quartiles(c) for c in curves_]
        color = f"C{i % 10}"
        style = "-" if i < 10 else "--" if i < 20 else ":"
        ax.plot([100 * x / full for x in xs], [m for _, m, _ in qs], style, color=color, label=name, lw=1.2)
        ax.fill_between([100 * x / full for x in xs], [lo for lo, _, _ in qs], [hi for _, _, hi in qs],
                        color=color, alpha=0.08)  # fmt: skip
    ax.axhline(0.95, color="grey", lw=0.8)
    ax.axvline(25, color="grey", lw=0.8)
    ax.set(xlabel="epochs spent (% of the recorded grid's total)", ylabel="hypervolume / recorded grid's",
           title="replayed searches: median and quartiles over replay seeds")  # fmt: skip
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    save_figure(fig, out, dpi=120)
    plt.close(fig)


def run(
    curves_file: str,
    space: SearchSpace,
    strategies: Sequence[str] = ("default",),
    *,
    seeds: int = 20,
    workers: int = 2,
    budget: float = 0.5,
    jobs: int = 1,
    out: Path | None = None,
    command: str = "",
    stream: TextIO | None = None,
) -> str:
    """`gcsearch bench replay`: each strategy (``["all"]``: every name ``strategy.names()`` reads) replayed
    ``seeds`` times on the recording with ``workers`` simulated workers until ``budget`` (a share of the
    recorded grid's epochs) is spent; returns the table, and with ``out`` writes it there with its picture."""
    import time

    from gcsearch.search import strategy

    if seeds < 1 or workers < 1 or jobs < 1:
        flag, value = next((f, v) for f, v in (("--seeds", seeds), ("--workers", workers), ("--jobs", jobs)) if v < 1)
        raise ConfigError(flag, "must be >= 1", value)
    if not 0 < budget <= 1:
        raise ConfigError("--budget", "must be in (0, 1]: a share of the recorded grid's total epochs", budget)
    recorded = Curves.of(read(curves_file), curves_file)
    check_space(recorded, space, curves_file)
    names = strategy.names() if list(strategies) == ["all"] else list(strategies)
    truth = Truth(recorded)
    full = len(truth.archs) * recorded.epochs
    spend = max(1, round(budget * full))
    start = time.perf_counter()
    traces = replay_many(recorded, space, names, seeds, workers, spend, jobs)
    (stream or sys.stdout).write(f"{len(names)} strategies x {seeds} seeds replayed in "
                                 f"{time.perf_counter() - start:.1f} s ({jobs} processes)\n")  # fmt: skip
    text = table(traces, full)
    if out is not None:
        picture = out.with_suffix(".png")
        plot(traces, full, str(picture), spend)
        head = (f"{len(truth.archs)} recorded configurations x {len(recorded.common_seeds())} seeds, "
                f"{recorded.epochs} epochs (grid total {full} epochs); space {space.path}; {seeds} replay seeds, "
                f"{workers} workers, budget {spend} epochs. Median [quartiles] over replay seeds.")  # fmt: skip
        write_report(out, f"Replayed searches on {curves_file}", command, f"{head}\n\n{text}", picture)
        text += f"\nwrote {out} and {picture}"
    return text
