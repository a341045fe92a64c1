"""Which configurations to record: a balanced sample of a space's grid. Pure Python.

N random draws leave some values of an axis rare and many pairs of values never seen together. Instead,
``balanced`` builds the sample greedily, like a pairwise (all-pairs) covering design: it starts from the
baseline and the paper default, then repeatedly adds the grid point whose values have been used least,
scored as (sum over axes of how often its value is already in the sample) + (sum over pairs of axes of
how often its pair of values is already in the sample). Ties are broken by a seeded shuffle. The result:
each value of each axis appears about equally often (counts differ by at most a few), and every pair of
values of two axes is covered as soon as N reaches the number of such pairs.
"""

from __future__ import annotations

import itertools
import random
from collections import Counter
from collections.abc import Sequence

from gcsearch.arch import AXES, ArchConfig


def balanced(grid: Sequence[ArchConfig], n: int, references: Sequence[ArchConfig], seed: int = 0) -> list[ArchConfig]:
    """``n`` configurations of ``grid`` (all of it when n >= len(grid)): ``references`` first, then a
    greedy pairwise-balanced choice among the GC configurations."""
    chosen = list(dict.fromkeys(r for r in references if r in grid))
    pool = [a for a in grid if a not in chosen and not a.is_baseline]
    random.Random(seed).shuffle(pool)
    single: Counter[tuple[str, object]] = Counter()
    pairs: Counter[tuple[str, object, str, object]] = Counter()

    def values(a: ArchConfig) -> list[tuple[str, object]]:
        return [(axis, getattr(a, axis)) for axis in AXES]

    def add(a: ArchConfig) -> None:
        if a.is_baseline:
            return  # the baseline has no values on the GC axes
        vals = values(a)
        single.update(vals)
        pairs.update((x[0], x[1], y[0], y[1]) for x, y in itertools.combinations(vals, 2))

    for a in chosen:
        add(a)
    while len(chosen) < n and pool:

        def cost(a: ArchConfig) -> int:
            vals = values(a)
            return sum(single[v] for v in vals) + sum(
                pairs[(x[0], x[1], y[0], y[1])] for x, y in itertools.combinations(vals, 2)
            )

        best = min(pool, key=cost)  # min keeps the first of equals: the seeded shuffle breaks ties
        pool.remove(best)
        chosen.append(best)
        add(best)
    return chosen[:n] if n < len(chosen) else chosen
