"""`gcsearch bench`: ground truth for the search.

- ``record``: trains a fixed plan of (configuration, seed) pairs to the last epoch, no pruning, through
  ``search.run`` (the same Ray Tune machinery, progress line, resources and resume rules as ``run`` and
  ``ablate``), and writes every trial's learning curve to ``<run>/curves.csv`` (``curves.py``), the final
  weights' per-image predictions to ``<run>/curves.outcomes.npz`` (``outcomes.py``) and where the trainings ran
  (torch and its build, threads, CPU, code) to ``<run>/curves.env.json``.

Where the variance is decides the plan: when configurations differ far more than seeds do (the far-cue task:
configuration 88% of the variance), a recording is wide (many configurations x few seeds), with deeper
references (``reference_seeds``) for the paired control, paper default against baseline.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from gcsearch.arch import ArchConfig
from gcsearch.bench import curves, design, outcomes
from gcsearch.epoch import Epoch
from gcsearch.errors import ConfigError
from gcsearch.files import write_atomic
from gcsearch.search import attrs
from gcsearch.space import SearchSpace


def plan(
    space: SearchSpace, seeds: int, sample: int | None, reference_seeds: int | None = None
) -> list[tuple[ArchConfig, int]]:
    """Every (configuration, seed) to record, configuration-major so a partial recording holds whole
    configurations. The baseline and the paper default are always in it, first, with ``reference_seeds`` seeds
    (default: ``seeds``); the others with ``seeds`` (0, 1, ...: every configuration shares the first ones)."""
    grid = space.grid()
    refs = set(space.references())
    archs = design.balanced(grid, sample or len(grid), space.references())
    deep = max(seeds, reference_seeds or seeds)
    return [(a, s) for a in archs for s in range(deep if a in refs else seeds)]


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
    reference_seeds: int | None = None,
    address: str | None = None,
    stream: TextIO | None = None,
) -> Path:
    """Record (or continue recording) the plan into ``run_dir``; returns the curves.csv path."""
    from gcsearch.search import tune

    if seeds < 1:
        raise ConfigError("--seeds", "must be >= 1", seeds)
    if reference_seeds is not None and reference_seeds < seeds:
        raise ConfigError("--reference-seeds", f"must be >= --seeds ({seeds})", reference_seeds)
    pairs = plan(space, seeds, sample, reference_seeds)
    configs = len(dict.fromkeys(a for a, _ in pairs))
    deep = f", the baseline and the paper default x {reference_seeds}" if (reference_seeds or seeds) > seeds else ""
    stream = stream or sys.stdout
    stream.write(f"recording {space.path}: {configs} configurations x {seeds} seeds{deep} = {len(pairs)} "
                 f"trainings of {space.train.epochs} epochs, no pruning -> {run_dir}/ (rerun the same --name to "
                 "continue)\n")  # fmt: skip
    stream.flush()
    tune.run(space, run_dir, address=address, stream=stream, plan=pairs)
    return export(run_dir, run_dir / "curves.csv")


def export(run_dir: Path, out: Path) -> Path:
    """A recording's run directory (finished, or still recording: its journal is read, never locked) as
    ``out`` (curves.csv), with its per-image outcomes and its environments beside it."""
    from gcsearch.search import rundir

    space = rundir.load_run_space(run_dir)  # as run: a fine-tuning recipe's hash names its weights file's
    study = rundir.load_main_study(run_dir.resolve())
    curves.write(out, curve_points(space, study))
    write_outcomes(run_dir, study, outcomes.path_for(out))
    write_atomic(out.with_suffix(".env.json"), json.dumps(environments(study), indent=1) + "\n")
    return out


def recorded(study: Any) -> list[Any]:
    """The COMPLETE trained trials of a run's main study: what a recording holds."""
    from gcsearch.search import rundir

    return [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE" and rundir.was_trained(t)]


def write_outcomes(run_dir: Path, study: Any, path: Path) -> None:
    """Each recorded training's per-image predictions (its trial's outcomes file), in one file."""
    from gcsearch.search import rundir

    rows, labels = [], None
    for t in recorded(study):
        f = run_dir / rundir.OUTCOMES.format(t.number)
        if not f.exists():  # a trial of a recording made before trials kept their outcomes
            continue
        with np.load(f) as z:
            labels = z["val_labels"] if labels is None else labels
            rows.append((ArchConfig.from_dict(t.user_attrs[attrs.ARCH]), int(t.user_attrs.get(attrs.SEED, 0)),
                         z["val"]))  # fmt: skip
    if labels is not None:
        outcomes.write(path, labels, rows)


def environments(study: Any) -> dict[str, Any]:
    """Where the recorded trainings ran: each distinct environment (torch and its build, threads, CPU, code) with
    how many trainings it made. One training reproduces exactly only in the same environment."""
    counts: dict[str, int] = {}
    for t in recorded(study):
        key = t.user_attrs.get(attrs.ENV, "null")  # null: a trial recorded before trials stated it
        counts[key] = counts.get(key, 0) + 1
    return {"environments": [{**(json.loads(k) or {"unknown": True}), "trainings": n}
                             for k, n in sorted(counts.items(), key=lambda kv: -kv[1])]}  # fmt: skip
