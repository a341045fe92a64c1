"""`gcsearch bench`: ground truth for the search.

- ``record``: trains a fixed plan of (configuration, seed) pairs to the last epoch, no pruning, through
  ``search.run`` (the same Ray Tune machinery, progress line, resources and resume rules as ``run`` and
  ``ablate``), and writes every trial's learning curve to ``<run>/curves.csv`` (``curves.py``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, TextIO

from gcsearch.arch import ArchConfig
from gcsearch.bench import curves, design
from gcsearch.epoch import Epoch
from gcsearch.errors import ConfigError
from gcsearch.search import attrs
from gcsearch.space import SearchSpace


def plan(space: SearchSpace, seeds: int, sample: int | None) -> list[tuple[ArchConfig, int]]:
    """Every (configuration, seed) to record, configuration-major so a partial recording holds whole
    configurations. The baseline and the paper default are always in it."""
    grid = space.grid()
    archs = design.balanced(grid, sample or len(grid), space.references())
    return [(a, s) for a in archs for s in range(seeds)]


def curve_points(space: SearchSpace, study: Any) -> list[curves.CurvePoint]:
    """The curves of the COMPLETE trained trials of a run's main study."""
    from gcsearch.search import rundir

    recipe = space.recipe()
    out = []
    for t in study.get_trials(deepcopy=False):
        if t.state.name != "COMPLETE" or not rundir.was_trained(t) or attrs.CURVE not in t.user_attrs:
            continue
        a = t.user_attrs
        arch, seed = ArchConfig.from_dict(a[attrs.ARCH]), int(a.get(attrs.SEED, space.train.seed))
        for e in map(Epoch.from_dict, a[attrs.CURVE]):
            out.append(curves.CurvePoint(arch, seed, e.done, e.accuracy, e.loss, e.train_loss, e.seconds,
                                         int(a[attrs.MACS]), int(a[attrs.PARAMS]), recipe, e.ema_accuracy,
                                         e.ema_loss))  # fmt: skip
    return out


def record(
    space: SearchSpace,
    run_dir: Path,
    seeds: int,
    sample: int | None = None,
    *,
    address: str | None = None,
    stream: TextIO | None = None,
) -> Path:
    """Record (or continue recording) the plan into ``run_dir``; returns the curves.csv path."""
    from gcsearch.search import rundir, tune

    if seeds < 1:
        raise ConfigError("--seeds", "must be >= 1", seeds)
    pairs = plan(space, seeds, sample)
    stream = stream or sys.stdout
    stream.write(f"recording {space.path}: {len(pairs) // seeds} configurations x {seeds} seeds = {len(pairs)} "
                 f"trainings of {space.train.epochs} epochs, no pruning -> {run_dir}/ (rerun the same --name to "
                 "continue)\n")  # fmt: skip
    stream.flush()
    tune.run(space, run_dir, address=address, stream=stream, plan=pairs)
    space = rundir.load_run_space(run_dir)  # as run: a fine-tuning recipe's hash names its weights file's
    points = curve_points(space, rundir.load_main_study(run_dir.resolve()))
    out = run_dir / "curves.csv"
    curves.write(out, points)
    return out
