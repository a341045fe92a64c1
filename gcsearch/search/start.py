"""`gcsearch run`'s entry: which run directory (a new one, or one to resume) with which settings, said at once,
before Ray and torch load; then the search (``tune.run``)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

from gcsearch.errors import ConfigError
from gcsearch.pareto import TrialRecord
from gcsearch.search import rundir
from gcsearch.search.strategy import Strategy, budget_of
from gcsearch.space import SearchSpace


def run_or_resume(
    space_file: str | None,
    *,
    resume: str | None = None,
    name: str | None = None,
    trials: int | None = None,
    address: str | None = None,
    dashboard: bool = False,
    stream: TextIO | None = None,
) -> tuple[Path, SearchSpace, list[TrialRecord]]:
    """`gcsearch run`: a new search of ``space_file`` in a new run directory (``name``, default
    <space>-<time>), or the search in ``resume`` continued with the settings its space.yaml holds;
    ``trials`` overrides the budget. Returns (run directory, space as run, every trial's record)."""
    from gcsearch.spacefile import load_space

    if resume:
        if space_file or name:
            raise ConfigError("--resume", "takes a run directory alone (its space.yaml holds the settings)")
        run_dir = rundir.check_resumable(resume)
        space = load_space(run_dir / "space.yaml")
    else:
        if not space_file:
            raise ConfigError("space", "is required: gcsearch run SPACE.yaml (or --resume RUN_DIR)")
        space = load_space(space_file)
        run_dir = rundir.new_run_dir(space, name)
        if run_dir.exists():
            raise ConfigError("--name", "names a run that exists; continue it with --resume", str(run_dir))
    if trials is not None:
        if trials < 1:
            raise ConfigError("--trials", "must be >= 1", trials)
        space = space.with_search(trials=trials)
    stream = stream or sys.stdout
    budget = budget_of(space, Strategy.of(space.search))
    warning = budget.warning()
    stream.write(f"search {space.path} -> {run_dir}/: {budget.text()}; starting Ray\n" + (warning and warning + "\n"))
    stream.flush()
    from gcsearch.search.tune import run  # Ray and torch: seconds to import

    return run_dir, space, run(space, run_dir, address=address, stream=stream, dashboard=dashboard)
