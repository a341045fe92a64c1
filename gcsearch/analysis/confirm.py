"""`gcsearch confirm RUN`: retrain the front's candidates with more seeds, and say which differ.

A search trains each configuration once, under one seed: the front it reports mixes real differences
with seed luck. ``confirm`` takes the top ``K`` points of the front (by accuracy; the best runner-ups off
the front fill a shorter one), retrains each with ``S`` fresh seeds (the same seeds for all, so they are
paired) through ``search.run`` in ``<run>/confirm``, and compares every pair of candidates by their
per-seed differences (paired t-test, Holm-Bonferroni over all pairs), and calls two tied only when
an equivalence test (TOST at stats.MARGIN) shows it.

Fresh seeds only: the search's accuracies chose the candidates, so counting them again would add a
winner's-curse term to every mean (the best of many noisy draws is biased upwards). No seed the run trained
with (``train.seed`` for a search's trials, a planned trial's own seed for an ``ablate`` or ``bench record``
run) is trained again, and no search accuracy enters a candidate's mean. ``confirm.json`` holds the result;
``pareto`` draws its intervals and ``export --pick`` chooses among confirmed points.
"""

from __future__ import annotations

import itertools
import json
import math
import statistics
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from gcsearch import stats
from gcsearch.arch import ArchConfig
from gcsearch.errors import ConfigError
from gcsearch.files import write_atomic
from gcsearch.pareto import TrialRecord, trained
from gcsearch.space import SearchSpace

FILE = "confirm.json"
ALPHA = 0.05


@dataclass(frozen=True)
class Candidate:
    number: int  # the search's trial
    arch: ArchConfig
    macs: int
    accuracies: dict[int, float]  # seed -> final accuracy

    @property
    def mean(self) -> float:
        return statistics.fmean(self.accuracies.values())

    @property
    def half_width(self) -> float:
        """Half the 95% t interval of the mean over seeds."""
        n = len(self.accuracies)
        if n < 2:
            return math.nan
        return stats.t_quantile(1 - ALPHA / 2, n - 1) * statistics.stdev(self.accuracies.values()) / math.sqrt(n)


@dataclass(frozen=True)
class Pair:
    """Two candidates compared on their common fresh seeds: the paired interval of a - b, its p Holm-adjusted
    over all pairs, and the equivalence (TOST at stats.MARGIN) p Holm-adjusted the same way."""

    interval: stats.Interval
    p: float
    p_tost: float


@dataclass(frozen=True)
class Confirmation:
    candidates: list[Candidate]
    pairs: dict[tuple[int, int], Pair]  # (trial a, trial b) -> a - b

    def pair(self, a: int, b: int) -> Pair:
        return self.pairs[(a, b)] if (a, b) in self.pairs else self.pairs[(b, a)]

    def distinguishable(self, a: int, b: int) -> bool:
        return self.pair(a, b).p <= ALPHA

    def equivalent(self, a: int, b: int) -> bool:
        """Tied: shown within +-stats.MARGIN of each other, not merely not told apart."""
        return self.pair(a, b).p_tost <= ALPHA

    def tied_with(self, number: int) -> list[int]:
        return [c.number for c in self.others(number) if self.equivalent(number, c.number)]

    def unresolved_with(self, number: int) -> list[int]:
        """Neither told apart nor shown equivalent: more seeds would say which."""
        return [c.number for c in self.others(number)
                if not self.distinguishable(number, c.number) and not self.equivalent(number, c.number)]  # fmt: skip

    def others(self, number: int) -> list[Candidate]:
        return [c for c in self.candidates if c.number != number]

    def by_number(self, number: int) -> Candidate | None:
        return next((c for c in self.candidates if c.number == number), None)


def candidates(front: list[TrialRecord], complete: list[TrialRecord], top: int) -> list[TrialRecord]:
    """The top ``top`` points of the front by accuracy (the front is what a user picks from).

    A front shorter than ``top`` is filled with the most accurate COMPLETE trials off it: a point that
    dominates the rest under one seed may owe that to the seed, and only retraining its runner-ups says so.
    """
    by_accuracy = sorted(front, key=lambda r: -(r.accuracy or 0.0))
    seen = {r.arch for r in by_accuracy}
    for r in sorted(complete, key=lambda r: -(r.accuracy or 0.0)):
        if r.arch not in seen and r.accuracy is not None:
            by_accuracy.append(r)
            seen.add(r.arch)
    return by_accuracy[:top]


def compare(cands: list[Candidate]) -> Confirmation:
    keys, intervals = [], []
    for a, b in itertools.combinations(cands, 2):
        diffs = stats.paired(a.accuracies, b.accuracies)
        if len(diffs) < 2:
            raise ConfigError("--seeds", "must give every candidate at least 2 common seeds", len(diffs))
        # With fewer than stats.MIN_PAIRS (a failed seed) the pair is compared but not resolved (p = 1).
        keys.append((a.number, b.number))
        intervals.append(stats.t_interval(diffs))
    adjusted = stats.holm([i.p for i in intervals])
    adjusted_tost = stats.holm([stats.tost_p(i) for i in intervals])
    pairs = zip(keys, intervals, adjusted, adjusted_tost, strict=True)
    return Confirmation(cands, {k: Pair(i, p, pt) for k, i, p, pt in pairs})


def check_seeds(seeds: int) -> None:
    if seeds < stats.MIN_PAIRS:
        raise ConfigError("--seeds", f"must be >= {stats.MIN_PAIRS} fresh seeds: fewer cannot tell candidates "
                          "apart", seeds)  # fmt: skip


def searched_seeds(space: SearchSpace, records: Iterable[TrialRecord]) -> set[int]:
    """The seeds the run's trials trained with: a planned trial's own, else the space's ``train.seed``."""
    return {r.seed if r.seed is not None else space.train.seed for r in records}


def fresh_seeds(space: SearchSpace, used: Iterable[int], count: int) -> list[int]:
    """``count`` seeds none of ``used``: train.seed + 1, + 2, ... skipping the used ones (for a plain
    search, whose only seed is train.seed, the same seeds as before, so an earlier confirm resumes)."""
    taken, seed = set(used), space.train.seed + 1
    out: list[int] = []
    while len(out) < count:
        if seed not in taken:
            out.append(seed)
        seed += 1
    return out


def confirm(
    space: SearchSpace,
    run_dir: Path,
    chosen: list[TrialRecord],
    seeds: int,
    *,
    searched: Iterable[int] = (),
    address: str | None = None,
    stream: TextIO | None = None,
) -> Confirmation:
    """Retrain the ``chosen`` candidates (``candidates()``) with ``seeds`` fresh seeds in ``<run>/confirm``
    (resumable), then compare on those seeds only. ``searched``: every seed the run trained with
    (``searched_seeds`` of its records); the candidates' own seeds are avoided whether given or not."""
    from gcsearch.search import tune

    check_seeds(seeds)
    if len(chosen) < 2:
        raise ConfigError("run", "needs at least 2 COMPLETE configurations to compare", len(chosen))
    fresh = fresh_seeds(space, {*searched, *searched_seeds(space, chosen)}, seeds)
    plan: list[tuple[ArchConfig, int | None]] = [(r.arch, s) for r in chosen for s in fresh]
    records = tune.run(space, run_dir / "confirm", address=address, stream=stream, plan=plan,
                       resume=f"the same command (it continues {run_dir / 'confirm'})")  # fmt: skip
    cands = []
    for r in chosen:
        # The fresh seeds only: never the search's accuracy, which picked the candidate.
        accs = {}
        for x in trained(records):
            if x.arch == r.arch and x.state == "COMPLETE" and x.accuracy is not None and x.seed in fresh:
                accs[x.seed] = x.accuracy
        cands.append(Candidate(r.number, r.arch, r.macs, accs))
    result = compare(cands)
    save(run_dir, result)
    return result


def save(run_dir: Path, c: Confirmation) -> None:
    data = {
        "candidates": [{"number": x.number, "arch": x.arch.to_dict(), "macs": x.macs,
                        "accuracies": {str(k): v for k, v in x.accuracies.items()}} for x in c.candidates],
    }  # fmt: skip
    write_atomic(run_dir / FILE, json.dumps(data, indent=1))


def load(run_dir: Path) -> Confirmation | None:
    path = run_dir / FILE
    if not path.is_file():
        return None
    data: dict[str, Any] = json.loads(path.read_text())
    cands = [Candidate(d["number"], ArchConfig.from_dict(d["arch"]), int(d["macs"]),
                       {int(k): float(v) for k, v in d["accuracies"].items()}) for d in data["candidates"]]  # fmt: skip
    return compare(cands)


def table(c: Confirmation) -> str:
    lines = ["| trial | configuration | MACs | seeds | accuracy mean [95% interval] | tied with (equivalent) "
             "| not resolved against |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for x in sorted(c.candidates, key=lambda x: -x.mean):
        tied = ", ".join(str(n) for n in c.tied_with(x.number)) or "none"
        unresolved = ", ".join(str(n) for n in c.unresolved_with(x.number)) or "none"
        interval = f"{x.mean:.4f} [{x.mean - x.half_width:.4f}, {x.mean + x.half_width:.4f}]"
        lines.append(f"| {x.number} | {x.arch.label()} | {x.macs:,d} | {len(x.accuracies)} | {interval} "
                     f"| {tied} | {unresolved} |")  # fmt: skip
    lines += ["", "Pairs compared by their per-seed differences on fresh seeds (paired t-test), Holm-Bonferroni "
              f"over all {len(c.pairs)} pairs: different = Holm p <= {ALPHA}; tied = equivalent within "
              f"+-{stats.MARGIN} (two one-sided tests, Holm p <= {ALPHA}); otherwise not resolved.", "",
              "| a | b | a - b [95% interval] | p | Holm p | equivalence Holm p | verdict |",
              "|---|---|---|---|---|---|---|"]  # fmt: skip
    for (a, b), pair in c.pairs.items():
        verdict = "different" if c.distinguishable(a, b) else "tied" if c.equivalent(a, b) else "not resolved"
        lines.append(f"| {a} | {b} | {pair.interval.text()} | {pair.interval.p:.3f} | {pair.p:.3f} "
                     f"| {pair.p_tost:.3f} | {verdict} |")  # fmt: skip
    return "\n".join(lines)


def run(run_dir: Path, top: int = 5, seeds: int = 4, *, address: str | None = None,
        stream: TextIO | None = None) -> Confirmation:  # fmt: skip
    """`gcsearch confirm RUN`: the ``top`` candidates of a run's front (runner-ups off it fill a short one)
    retrained with ``seeds`` fresh seeds each, compared; written to ``<run>/confirm.json``."""
    from gcsearch.search import rundir

    check_seeds(seeds)
    if top < 2:
        raise ConfigError("--top", "must be >= 2: confirming compares candidates", top)
    run_dir, space, study = rundir.open_run(run_dir)
    records = rundir.records(study)
    front = [r for r in rundir.pareto_front(space, records) if r.state == "COMPLETE"]
    if not front:
        raise ConfigError("run", "has no COMPLETE trial to confirm", str(run_dir))
    done = trained(records)
    chosen = candidates(front, [r for r in done if r.state == "COMPLETE"], top)
    on_front = sum(r in front for r in chosen)
    runner_ups = f" and {len(chosen) - on_front} runner-up(s) off it" if len(chosen) > on_front else ""
    searched = searched_seeds(space, done)
    fresh = fresh_seeds(space, searched, seeds)
    stream = stream or sys.stdout
    stream.write(f"confirming {on_front} front point(s){runner_ups} of {run_dir} with {seeds} fresh seeds each "
                 f"({', '.join(map(str, fresh))}; the search's own, {', '.join(map(str, sorted(searched)))}, not "
                 f"reused) -> {run_dir}/confirm/\n")  # fmt: skip
    stream.flush()
    result = confirm(space, run_dir.resolve(), chosen, seeds, searched=searched, address=address, stream=stream)
    stream.write(f"{table(result)}\n\nwrote {run_dir}/{FILE}: `gcsearch pareto` draws its intervals, "
                 "`gcsearch export` picks from it\n")  # fmt: skip
    return result
