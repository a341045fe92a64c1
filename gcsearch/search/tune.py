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

import contextlib
import datetime
import json
import logging
import math
import os
import secrets
import shutil
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
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
from gcsearch.errors import ConfigError, Interrupted, TrainingDiverged
from gcsearch.files import sweep_temporaries
from gcsearch.nn import pretrain
from gcsearch.pareto import TrialRecord, trained
from gcsearch.search import attrs, rundir
from gcsearch.search.decider import Decider, grid_plan
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


def error_line(trial: TuneTrial) -> str:
    """What a failed trial raised, as one line: the trainable's own exception, not Ray's wrapper with its
    traceback (the whole of it stays in the Tune logs under tune/)."""
    try:
        err = trial.get_pickled_error() or trial.get_error()
    except Exception:  # an unreadable error file: say where to look instead
        err = None
    cause = getattr(err, "cause", None) or err
    if cause is None:
        return "the trial raised an error (see the Tune logs under tune/)"
    text = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {text[0] if text else ''} (the Tune logs under tune/ hold its traceback)"


# --------------------------------------------------------------------------- the trainable


def make_trainable(space: SearchSpace, run_dir: Path, threads: int):
    # A plain string travels to the workers (no gcsearch.search.rundir, hence no Optuna, imported there); the
    # validated space travels as it is: no re-parsing.
    ckpt_template = str(run_dir / rundir.CHECKPOINT)
    outcomes_template = str(run_dir / rundir.OUTCOMES)
    # Latency as an objective: each trial measures its configuration on its own cores (or GPU) before it trains,
    # once per configuration and machine (a cache under output.dir, a lock so two never measure at once).
    latency_dir = str(Path(space.output_dir).resolve() / "latency") if "latency" in space.search.objectives else ""

    def gcsearch_trial(config: dict[str, Any]) -> None:
        started = time.perf_counter()
        import ray
        import torch

        from gcsearch.nn import data as datasets
        from gcsearch.nn import environment, preprocess
        from gcsearch.nn.train import pick_device, train

        torch.set_num_threads(threads)
        env = json.dumps(environment.describe(pick_device(space.train.device)), sort_keys=True)
        b = space.backbone
        splits = datasets.load(space.data, b.input_size, b.num_classes, seed=space.train.seed)
        facts = {attrs.ENV: env, attrs.PREPROCESS: json.dumps(preprocess.of(splits, b.input_size).to_dict())}
        ckpt = Path(ckpt_template.format(config["number"]))
        arch = ArchConfig.from_dict(config["arch"])
        measured: dict[str, float] = {}
        if latency_dir:
            from gcsearch.nn.latency import latency

            measured["latency"] = latency(arch, space.backbone, space.search.latency, Path(latency_dir)).median_ms
        node = ray.get_runtime_context().get_node_id()

        def report(epoch: Epoch) -> None:
            extra: dict[str, Any] = {"node": node, **facts, **measured}
            if "setup_seconds" not in extra_once and not epoch.replayed:
                # Imports, data load and model build before the first epoch: per-trial overhead.
                extra_once["setup_seconds"] = time.perf_counter() - started - epoch.epoch_seconds
                extra["setup_seconds"] = extra_once["setup_seconds"]
            failpoints.hit("report")
            tune.report({**{k: v for k, v in epoch.as_dict().items() if v is not None}, **extra})

        extra_once: dict[str, float] = {}

        try:
            # Resumes from the checkpoint file when a retry or a resumed search reruns this trial.
            outcomes = outcomes_template.format(config["number"])
            train(arch, space, report, checkpoint=ckpt, seed=config.get("seed"), splits=splits, outcomes=outcomes)
        except TrainingDiverged as err:
            # Reported, not raised: a retry would diverge the same way.
            tune.report({"diverged": str(err), "epoch": -1, "accuracy": float("nan")})

    return gcsearch_trial


# --------------------------------------------------------------------------- live view


class LiveView(tune.Callback):
    """One compact status line instead of Ray's tables."""

    def __init__(self, decider: Decider, budget: int, stream: TextIO, pause: Pause | None = None):
        self.decider, self.budget, self.stream, self.pause = decider, budget, stream, pause
        self.start = time.monotonic()
        self.tty = stream.isatty()
        self.last = 0.0

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles its run config; an open stream (pytest's capture, a pipe) cannot travel.
        return {**self.__dict__, "stream": None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, stream=sys.stdout)

    def line(self) -> str:
        recs = trained(rundir.records(self.decider.main))
        count = {s: sum(r.state == s for r in recs) for s in ("COMPLETE", "PRUNED", "FAIL", "RUNNING")}
        best = max((r.accuracy for r in recs if r.accuracy is not None and r.state == "COMPLETE"), default=None)
        front = rundir.pareto_front(self.decider.space, recs)
        finished = count["COMPLETE"] + count["PRUNED"] + count["FAIL"]
        width = 20
        filled = min(width, round(width * finished / max(1, self.budget)))
        elapsed = datetime.timedelta(seconds=int(time.monotonic() - self.start))
        best_text = f"{best:.4f}" if best is not None else "-"
        return (
            f"[{'#' * filled}{'.' * (width - filled)}] {finished}/{self.budget} trials | "
            f"{count['COMPLETE']} done {count['PRUNED']} pruned {count['FAIL']} failed {count['RUNNING']} running"
            f" | best acc {best_text} | front {len(front)} | {elapsed}"
        )

    def draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if self.tty:
            self.stream.write("\r" + self.line())
        elif force or now - self.last > 30:
            self.stream.write(self.line() + "\n")
        else:
            return
        self.last = now
        self.stream.flush()

    def on_trial_result(self, iteration: int, trials: list, trial: TuneTrial, result: dict, **info: Any) -> None:
        self.draw()

    def on_trial_complete(self, iteration: int, trials: list, trial: TuneTrial, **info: Any) -> None:
        self.draw(force=True)

    def on_trial_error(self, iteration: int, trials: list, trial: TuneTrial, **info: Any) -> None:
        if not self.paused():
            self.say(trial, "failed")
            self.draw(force=True)

    def on_trial_recover(self, iteration: int, trials: list, trial: TuneTrial, **info: Any) -> None:
        if not self.paused():
            self.say(trial, f"failure {trial.num_failures}, retried from its last checkpoint")

    def paused(self) -> bool:
        """A worker that Ctrl-C reached too fails its trial: that is the pause, not a failure to report."""
        return self.pause is not None and self.pause.pressed

    def say(self, trial: TuneTrial, what: str) -> None:
        """A trial that raised or whose worker died, in one line: in place of the traceback Tune's controller
        logs (silenced in _tune; the trial's error file under tune/ keeps it)."""
        self.stream.write(("\n" if self.tty else "") + f"trial {trial.config.get('number', '?')} ({what}): "
                          f"{error_line(trial)}\n")  # fmt: skip
        self.stream.flush()


# --------------------------------------------------------------------------- Ctrl-C


class Pause:
    """Ctrl-C is a pause. The first SIGINT stops the search: Tune stops every trial, and Optuna is told nothing of
    the ones cut short, so they stay RUNNING in the journal with their checkpoints, and a resume continues each
    from its last finished epoch, as after a crash. A second SIGINT stops at once (KeyboardInterrupt).

    Tune's own SIGINT handler is turned off (TUNE_DISABLE_SIGINT_HANDLER): it stops the trials without saying why,
    and what then followed (the time budget's ending, PRUNED) lost them."""

    def __init__(self, stream: TextIO | None = None):
        self.event = threading.Event()
        self.stream = stream
        self.previous: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {}  # Tune pickles its run config; a Ctrl-C belongs to the process that saw it

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__()  # type: ignore[misc]

    @property
    def pressed(self) -> bool:
        return self.event.is_set()

    def __enter__(self) -> Pause:
        if threading.current_thread() is threading.main_thread():  # only the main thread may set a handler
            self.previous = signal.signal(signal.SIGINT, self._first)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)

    def _first(self, signum: int, frame: Any) -> None:
        self.event.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        if self.stream is not None:
            self.stream.write("\nCtrl-C: stopping the trials; every finished epoch is kept (Ctrl-C again: stop at "
                              "once)\n")  # fmt: skip
            self.stream.flush()


class StopOnPause(tune.Stopper):
    """Ends the Tune experiment once Ctrl-C was pressed (Tune then stops every trial)."""

    def __init__(self, pause: Pause):
        self.pause = pause

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return False

    def stop_all(self) -> bool:
        return self.pause.pressed


def paused_line(run_dir: Path, budget: int, resume: str) -> str:
    """What a Ctrl-C left, in one line: trials finished, trials cut short (kept), how to continue."""
    try:
        trials = [t for t in rundir.load_main_study(run_dir).get_trials(deepcopy=False) if rundir.was_trained(t)]
    except ConfigError:  # stopped before its journal existed
        trials = []
    cut = sum(t.state == TrialState.RUNNING for t in trials)
    finished = len(trials) - cut
    short = f", {cut} cut short (each continues from its last finished epoch)" if cut else ""
    return f"interrupted: {finished} of {budget} trials finished{short}; continue with: {resume}"


# --------------------------------------------------------------------------- ray


def start_ray(address: str | None, stream: TextIO, dashboard: bool = False) -> bool:
    """Join a cluster (address or RAY_ADDRESS) or start a local Ray; True if we started it.

    A local Ray runs with token authentication: its GCS, raylet and workers listen on every interface
    (Ray 2.60 binds them to the node's address and resolves 127.0.0.1 to it), and an unauthenticated GCS
    runs any job whoever reaches it submits. Each local search gets its own random token, in the
    environment only (RAY_AUTH_TOKEN, inherited by Ray's processes), so nothing is written to $HOME and
    no other user's token is reused. A RAY_AUTH_MODE or RAY_AUTH_TOKEN the user set is kept (with a
    warning for "disabled"). Joining a cluster passes the user's RAY_AUTH_MODE / token through untouched.
    No dashboard unless asked (then on 127.0.0.1 only); usage stats are off."""
    import ray

    address = address or os.environ.get("RAY_ADDRESS")
    if ray.is_initialized():
        return False
    if address:
        try:
            with native_stderr_held():
                ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False)
        except ConnectionError as err:
            raise ConfigError(
                "--address",
                f"must name a Ray cluster this machine can join ({err}); one started "
                "with token authentication needs its token here too, in RAY_AUTH_TOKEN or "
                "RAY_AUTH_TOKEN_PATH (README: a token-authenticated cluster)",
                address,
            ) from None
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        res = ray.cluster_resources()
        stream.write(
            f"joined Ray cluster at {address}: {len(nodes)} nodes, {res.get('CPU', 0):g} CPUs, "
            f"{res.get('GPU', 0):g} GPUs\n"
        )
        return False
    if os.environ.get("RAY_AUTH_MODE", "").lower() == "disabled":
        stream.write("warning: RAY_AUTH_MODE=disabled: this machine's Ray accepts work from anyone who can reach "
                     "its ports; unset it to keep token authentication\n")  # fmt: skip
    else:
        if not (os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH")):
            os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(32)
        # Mode unset: ray.init then turns token authentication on itself and refreshes the config Ray
        # cached at import, which a RAY_AUTH_MODE=token set later (by us, or by an earlier ray.init of
        # this process) would not reach.
        os.environ.pop("RAY_AUTH_MODE", None)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # address="local": with no address, ray.init joins the cluster named in <tmp>/ray/ray_current_cluster
    # (the last `ray start`), and hangs for minutes when that cluster is gone (experiments/results/startup.md).
    context = ray.init(address="local", include_dashboard=dashboard, dashboard_host="127.0.0.1",
                       logging_level=logging.ERROR, log_to_driver=False)  # fmt: skip
    if dashboard:
        stream.write(f"Ray dashboard: http://{context.dashboard_url}\n")
    return True


@contextlib.contextmanager
def native_stderr_held() -> Iterator[None]:
    """File descriptor 2 pointed at /dev/null for a moment: Ray's C++ client retries a refused join (a missing
    token) for 20 s, writing a warning line to fd 2 each second, before Python hears of it; the error that
    follows is said in one line instead."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


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
            records = _run_locked(space, run_dir, address, stream, plan, dashboard)
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
    dashboard: bool = False,
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
    space = pretrain.resolve(space, stream)  # fine-tuning: the weights made once, checked, their hash pinned
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
            paused = _tune(space, run_dir, decider, new + len(decider.rerun), stream, budget)
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


def _tune(space: SearchSpace, run_dir: Path, decider: Decider, count: int, stream: TextIO, budget: int) -> bool:
    """Run ``count`` trials through Tune; True when Ctrl-C stopped them (Pause)."""
    import ray

    s = space.search
    cpu_total = ray.cluster_resources().get("CPU", 1)
    concurrency = s.concurrency or max(1, math.floor(cpu_total / s.cpu))
    threads = space.train.threads or max(1, int(s.cpu))
    trainable = tune.with_resources(make_trainable(space, run_dir, threads), {"cpu": s.cpu, "gpu": s.gpu})
    tune_dir = run_dir / "tune"
    name = f"run-{len(list(tune_dir.glob('run-*'))) if tune_dir.exists() else 0}"
    pause = Pause(stream)
    searcher = DeciderSearcher(decider, pause)
    view = LiveView(decider, budget, stream, pause)
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
    if decider.ended and not pause.pressed:
        stream.write(f"the search ended before its budget of {budget} trials: {decider.ended}\n")
    return pause.pressed


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
    stream.write(f"search {space.path} -> {run_dir}/ ({space.search.trials} trials)\n")
    stream.flush()
    return run_dir, space, run(space, run_dir, address=address, stream=stream, dashboard=dashboard)
