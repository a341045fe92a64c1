"""`gcsearch run`: Ray Tune runs the proxy trainings; the decider (``decider.py``) decides. The only
place Ray Tune and Optuna meet.

- ``DeciderSearcher`` (a Tune Searcher) turns the decider's proposals into Tune trials and tells it how
  each ended. Ray's own OptunaSearch cannot serve: it hard-codes NopPruner and tells stopped trials
  COMPLETE with partial values.
- ``PruneOnReport`` (a Tune scheduler on the driver) hands every epoch to the decider, whose Optuna pruner
  says whether to stop the trial.
- Each invocation runs a fresh Tune experiment in ``<run>/tune/``; Optuna's journal is the one source
  of truth. A resume reruns the trials the journal shows RUNNING (from their checkpoint files) and asks
  for new ones up to the budget. Tune's own restore is not used: its experiment snapshot is written
  periodically and after a SIGKILL can disagree with the journal, which would rerun or lose trials.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import optuna
from optuna.trial import TrialState
from ray import tune
from ray.tune.experiment import Trial as TuneTrial
from ray.tune.schedulers import FIFOScheduler, TrialScheduler
from ray.tune.search import Searcher

from gcsearch import failpoints
from gcsearch.arch import ArchConfig
from gcsearch.epoch import Epoch, Outcome
from gcsearch.errors import ConfigError, Interrupted
from gcsearch.files import sweep_temporaries
from gcsearch.pareto import TrialRecord
from gcsearch.search import attrs, rundir
from gcsearch.search.cluster import start_ray
from gcsearch.search.decider import Decider, grid_plan
from gcsearch.search.pause import Pause, StopOnPause, paused_line
from gcsearch.search.progress import LiveView, error_line
from gcsearch.search.trial import make_trainable
from gcsearch.space import SearchSpace


class DeciderSearcher(Searcher):
    """Tune's side of the decider: a Tune trial id names a decider trial number."""

    def __init__(self, decider: Decider, pause: Pause | None = None):
        super().__init__(metric="accuracy", mode="max")
        self.decider = decider
        self.pause = pause
        self.numbers: dict[str, int] = {}
        self.errors: dict[str, str] = {}  # trial id -> what it raised, in one line (the scheduler hears it first)

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        proposal = self.decider.propose()
        if proposal is None:
            return Searcher.FINISHED  # type: ignore[return-value]  # Tune's documented sentinel
        self.numbers[trial_id] = proposal.number
        return {"number": proposal.number, "arch": proposal.arch.to_dict(), "seed": proposal.seed}

    def record(self, trial_id: str, result: dict[str, Any]) -> bool:
        """One Tune result as the decider's Epoch; True = stop the trial."""
        number = self.numbers.get(trial_id)
        if number is None or "diverged" in result or "accuracy" not in result:
            return False
        failpoints.hit("result")
        epoch = Epoch.from_dict(result)
        if "latency" in result:  # measured before the trial trained; a resumed trial reports it with its replays
            self.decider.note(number, latency=result["latency"])
        if not epoch.replayed:
            facts = ("node", "setup_seconds", attrs.ENV, attrs.PREPROCESS)
            self.decider.note(number, **{k: result[k] for k in facts if k in result})
        return self.decider.report(number, epoch)

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        number = self.numbers.pop(trial_id, None)
        if number is None or (self.pause is not None and self.pause.pressed):
            return  # after Ctrl-C Optuna hears nothing: the trial stays RUNNING and a resume continues it
        if error:
            self.decider.finish(number, Outcome.ERROR, reason=self.errors.pop(trial_id, ""))
        elif result and "diverged" in result:
            self.decider.finish(number, Outcome.DIVERGED, reason=str(result["diverged"]))
        else:
            last = Epoch.from_dict(result) if result and "accuracy" in result else None
            self.decider.finish(number, Outcome.ENDED, last)


class PruneOnReport(FIFOScheduler):
    """Stops the trials the decider's pruner prunes. It hands each epoch to the decider itself: Tune calls
    the scheduler before the searcher and skips the searcher once the scheduler says STOP."""

    def __init__(self, searcher: DeciderSearcher):
        super().__init__()
        self.searcher = searcher

    def on_trial_result(self, tune_controller: Any, trial: TuneTrial, result: dict[str, Any]) -> str:
        if self.searcher.record(trial.trial_id, result):
            return TrialScheduler.STOP
        return TrialScheduler.CONTINUE

    def on_trial_error(self, tune_controller: Any, trial: TuneTrial) -> None:
        self.searcher.errors[trial.trial_id] = error_line(trial)


def what_is_left(
    space: SearchSpace, run_dir: Path, plan: Sequence[tuple[ArchConfig, int | None]] | None = None
) -> tuple[int, list[int], list[tuple[ArchConfig, int | None]] | None]:
    """(new trials to ask for, numbers of interrupted trials to rerun, the plan's pairs still to train)
    from what the journal holds."""
    try:
        study = rundir.load_main_study(run_dir)
    except ConfigError:
        return (space.search.trials if plan is None else len(plan)), [], None if plan is None else list(plan)
    trials = [t for t in study.get_trials(deepcopy=False) if rundir.was_trained(t)]
    rerun = [t.number for t in trials if t.state == TrialState.RUNNING]
    if plan is not None:
        done = {(repr(t.user_attrs[attrs.ARCH]), t.user_attrs.get(attrs.SEED)) for t in trials}
        left = [(a, s) for a, s in plan if (repr(a.to_dict()), s) not in done]
        return len(left), rerun, left
    return max(0, space.search.trials - len(trials)), rerun, None


def run(
    space: SearchSpace,
    run_dir: Path,
    *,
    address: str | None = None,
    stream: TextIO | None = None,
    plan: Sequence[tuple[ArchConfig, int | None]] | None = None,
    dashboard: bool = False,
    resume: str | None = None,
) -> list[TrialRecord]:
    """Run (or continue) the search in ``run_dir``; returns every trial's record. ``plan`` replaces the
    sampler with a list of (architecture, seed) trainings, each to its last epoch: a planned run (ablate,
    bench record, confirm) prunes nothing and its budget is the plan. ``dashboard`` asks a local Ray for its
    dashboard. Ctrl-C raises Interrupted, whose line says what finished and how to continue (``resume``, by
    default `gcsearch run --resume`, or for a plan the same command with --name)."""
    from gcsearch.nn import cache

    if plan is not None:
        space = space.with_search(sampler="random", pruner="none", pruner_settings={}, trials=len(plan))
    stream = stream or sys.stdout  # looked up now, not at import: it may have been replaced (pytest, notebooks)
    run_dir = run_dir.resolve()  # Ray workers run in other working directories
    began = time.monotonic()
    created = False  # by this call: only then is a run refused at start removed (never another search's)
    try:
        space = cache.prepare(space, stream)  # an image folder decoded once, before the first trial; its key pinned
        if "latency" in space.search.objectives:
            from gcsearch.nn.latency import check

            check(space.search.latency)  # a device this machine cannot measure on: one line, before any trial
        if not run_dir.exists():
            rundir.create_run_dir(run_dir, space)
            created = True
        with rundir.RunLock(run_dir):
            records = _run_locked(space, run_dir, address, stream, plan, dashboard, began)
    except BaseException as err:
        if created and not rundir.holds_trials(run_dir):  # refused at start: nothing to keep, the name stays free
            shutil.rmtree(run_dir, ignore_errors=True)
        if isinstance(err, (KeyboardInterrupt, Interrupted)):  # Ctrl-C, once (a pause) or twice (at once)
            if resume is None:
                again = f"the same command with --name {run_dir.name}"
                resume = f"gcsearch run --resume {run_dir}" if plan is None else again
            budget = space.search.trials if plan is None else len(plan)
            raise Interrupted(paused_line(run_dir, budget, resume)) from None
        raise
    rundir.check_some_trained(records)
    return records


def _run_locked(
    space: SearchSpace,
    run_dir: Path,
    address: str | None,
    stream: TextIO,
    plan: Sequence[tuple[ArchConfig, int | None]] | None,
    dashboard: bool,
    began: float,
) -> list[TrialRecord]:
    (run_dir / "checkpoints").mkdir(exist_ok=True)
    rundir.clear_stale_journal_lock(run_dir)  # we hold the run lock: no one else can be writing
    for folder in (run_dir, run_dir / "checkpoints"):  # what writers killed mid-write left, for the same reason
        sweep_temporaries(folder, everyone=True)
    dropped = rundir.repair_journal(run_dir)
    if dropped:
        stream.write(
            f"optuna.log ended in a half-written record ({dropped} bytes, from a kill mid-write): dropped it; "
            "every complete record is kept, and a trial it left unfinished is rerun from its checkpoint\n"
        )
    if space.backbone.weights or space.backbone.pretrain:  # the trainer loads in the driver only for fine-tuning
        from gcsearch.nn import pretrain

        space = pretrain.resolve(space, stream)  # the weights made once, checked, their hash pinned
    rundir.check_same_recipe(run_dir, space)
    rundir.save_space(run_dir, space)
    if plan is None and space.search.sampler == "grid":
        plan = grid_plan(space)
    new, rerun, left = what_is_left(space, run_dir, plan)
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the live view says what matters
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")  # Optuna's journal is the record
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    started = start_ray(address, stream, dashboard)
    try:
        from gcsearch.nn.flops import SpaceCoster

        decider = Decider(space, rundir.storage(run_dir), new, coster=SpaceCoster(space.backbone), rerun=rerun,
                          plan=left)  # fmt: skip
        paused = False
        if new or decider.rerun:
            budget = space.search.trials if plan is None else len(plan)
            paused = _tune(space, run_dir, decider, new + len(decider.rerun), stream, budget, began)
            if not paused:
                decider.stop_running()  # what a time budget stopped is PRUNED, not RUNNING for ever
        recs = rundir.records(decider.main)
        rundir.write_tables(run_dir, space, recs)
        if paused:
            raise Interrupted("Ctrl-C")  # run() says what it left
        return recs
    finally:
        if started:
            import ray

            ray.shutdown()


def _tune(space: SearchSpace, run_dir: Path, decider: Decider, count: int, stream: TextIO, budget: int,
          began: float) -> bool:  # fmt: skip
    """Run ``count`` trials through Tune; True when Ctrl-C stopped them (Pause). ``began``: when the command
    began (time.monotonic), for the wall time the live view states."""
    import ray

    s = space.search
    cpu_total = ray.cluster_resources().get("CPU", 1)
    concurrency = s.concurrency or max(1, math.floor(cpu_total / s.cpu))
    threads = space.train.threads or max(1, int(s.cpu))
    paths = {"checkpoint": str(run_dir / rundir.CHECKPOINT), "outcomes": str(run_dir / rundir.OUTCOMES),
             "log": str(run_dir / rundir.LOG)}  # fmt: skip
    trainable = tune.with_resources(make_trainable(space, paths, threads), {"cpu": s.cpu, "gpu": s.gpu})
    tune_dir = run_dir / "tune"
    name = f"run-{len(list(tune_dir.glob('run-*'))) if tune_dir.exists() else 0}"
    pause = Pause(stream)
    searcher = DeciderSearcher(decider, pause)
    view = LiveView(decider, budget, stream, pause, began)
    # A retried trial's traceback, which Tune's controller logs at ERROR: LiveView says it in one line.
    logging.getLogger("ray.tune.execution.tune_controller").setLevel(logging.CRITICAL)
    tuner = tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            search_alg=searcher,
            scheduler=PruneOnReport(searcher),
            num_samples=count,
            max_concurrent_trials=concurrency,
            time_budget_s=s.time_budget_s,
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(
            name=name,
            storage_path=str(tune_dir.resolve()),
            verbose=0,
            callbacks=[view],
            failure_config=tune.FailureConfig(max_failures=s.retries),
            stop=StopOnPause(pause),
        ),
    )
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"  # Pause handles Ctrl-C
    with pause:
        tuner.fit()
    if view.tty:
        stream.write("\n")
    view.draw(force=True)
    stream.write(view.summary() + "\n")
    if decider.ended and not pause.pressed:
        stream.write(f"the search ended before its budget of {budget} trials: {decider.ended}\n")
    return pause.pressed
