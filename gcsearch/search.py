"""`gcsearch run`: Ray Tune runs the proxy trainings, Optuna decides. The only place the two meet.

- ``OptunaSearcher`` (a Tune Searcher) asks the main Optuna study for each configuration (define-by-run
  through ``SearchSpace.suggest``), records MACs and params on the trial before it trains, and tells
  Optuna the outcome: COMPLETE with (accuracy, MACs[, params]) only after the last epoch, PRUNED for a
  stopped trial, FAIL for an error or a diverged loss. Ray's own OptunaSearch can do neither (it
  hard-codes NopPruner and tells stopped trials COMPLETE with partial values).
- ``PruningScheduler`` (a Tune scheduler on the driver) hands every epoch's accuracy to the twin
  study's Optuna pruner and stops the trials it prunes (see ``pruning.py``).
- Each invocation runs a fresh Tune experiment in ``<run>/tune/``; Optuna's journal is the one source
  of truth. A resume reruns the trials the journal shows RUNNING (from their checkpoint files) and asks
  for new ones up to the budget. Tune's own restore is not used: its experiment snapshot is written
  periodically and after a SIGKILL can disagree with the journal, which would rerun or lose trials.
"""

from __future__ import annotations

import datetime
import logging
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import optuna
from optuna.trial import Trial, TrialState
from ray import tune
from ray.tune.experiment import Trial as TuneTrial
from ray.tune.schedulers import FIFOScheduler, TrialScheduler
from ray.tune.search import Searcher

from gcsearch import rundir
from gcsearch.arch import ArchConfig
from gcsearch.errors import ConfigError, TrainingDiverged
from gcsearch.flops import SpaceCoster
from gcsearch.pareto import TrialRecord
from gcsearch.pruning import make_pruner
from gcsearch.space import SearchSpace

CURVE_KEYS = ("epoch", "accuracy", "loss", "train_loss", "seconds", "ema_accuracy", "ema_loss")
MAX_ASKS = 200  # consecutive duplicate/over-budget proposals before the space counts as exhausted


def make_sampler(space: SearchSpace) -> optuna.samplers.BaseSampler:
    s = space.search
    if s.sampler == "tpe":
        # multivariate + constant liar: joint modelling of the axes, and running trials count as
        # pending so parallel workers do not all get the same proposal.
        return optuna.samplers.TPESampler(seed=s.seed, multivariate=True, constant_liar=True, n_startup_trials=8)
    if s.sampler == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=s.seed)
    if s.sampler == "grid":
        return optuna.samplers.BruteForceSampler(seed=s.seed)  # handles the conditional space
    if s.sampler == "gp":
        return optuna.samplers.GPSampler(seed=s.seed)
    return optuna.samplers.RandomSampler(seed=s.seed)


@dataclass
class _Live:
    main: Trial
    twin: Trial
    arch: ArchConfig
    macs: int
    params: int


class OptunaSearcher(Searcher):
    """Proposes configurations from the main study and tells it what became of them."""

    def __init__(
        self,
        space: SearchSpace,
        run_dir: Path,
        new_trials: int,
        rerun: list[int],
        plan: list[tuple[ArchConfig, int]] | None = None,
    ):
        super().__init__(metric="accuracy", mode="max")
        self.space, self.run_dir = space, run_dir
        self.new_trials, self.rerun = new_trials, list(rerun)
        self.plan = list(plan) if plan is not None else None  # fixed (arch, seed) trials, e.g. an ablation
        self.coster = SpaceCoster(space.backbone)
        store = rundir.storage(run_dir)
        pruner = make_pruner(space.search, space.train.epochs)
        self.main = optuna.create_study(
            study_name=rundir.MAIN_STUDY, storage=store, directions=space.search.directions,  # type: ignore[arg-type]
            sampler=make_sampler(space), load_if_exists=True,
        )  # fmt: skip
        self.twin = optuna.create_study(
            study_name=rundir.TWIN_STUDY,
            storage=store,
            direction="maximize",
            pruner=pruner,
            load_if_exists=True,
        )
        self.live: dict[str, _Live] = {}
        self.pruned: set[str] = set()
        self.asked = 0
        self.exhausted = False

    # ---------------------------------------------------------------- proposals

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        live = self._resume_one() if self.rerun else self._ask_new()
        if live is None:
            return Searcher.FINISHED  # type: ignore[return-value]  # Tune's documented sentinel
        self.live[trial_id] = live
        seed = live.main.user_attrs.get("seed")
        return {"number": live.main.number, "arch": live.arch.to_dict(), "seed": seed}

    def _resume_one(self) -> _Live:
        number = self.rerun.pop(0)
        frozen = self.main.get_trials(deepcopy=False)[number]
        twin_frozen = self.twin.get_trials(deepcopy=False)[frozen.user_attrs["twin"]]
        # Optuna has no public handle for re-attaching to a RUNNING trial; Trial(study, id) is the one.
        main = Trial(self.main, frozen._trial_id)
        twin = Trial(self.twin, twin_frozen._trial_id)
        return _Live(main, twin, ArchConfig.from_dict(frozen.user_attrs["arch"]),
                     int(frozen.user_attrs["macs"]), int(frozen.user_attrs["params"]))  # fmt: skip

    def _new_trial(self, trial: Trial, arch: ArchConfig, seed: int | None = None) -> tuple[int, int]:
        """Record what is known before training on a freshly asked trial; returns (MACs, params)."""
        macs, params = self.coster(arch)
        attrs: dict[str, Any] = {"arch": arch.to_dict(), "label": arch.label(), "macs": macs, "params": params}
        if seed is not None:
            attrs["seed"] = seed
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        return macs, params

    def _pair(self, trial: Trial, arch: ArchConfig, macs: int, params: int) -> _Live:
        """Give a trial that will train its twin in the accuracy study, where the pruner acts."""
        twin = self.twin.ask()
        twin.set_user_attr("macs", macs)
        twin.set_user_attr("main", trial.number)
        trial.set_user_attr("twin", twin.number)
        return _Live(trial, twin, arch, macs, params)

    def _ask_planned(self) -> _Live | None:
        assert self.plan is not None
        if not self.plan:
            return None
        arch, seed = self.plan.pop(0)
        self.main.enqueue_trial(self.space.params_of(arch))
        trial = self.main.ask()
        assert self.space.suggest(trial) == arch
        return self._pair(trial, arch, *self._new_trial(trial, arch, seed))

    def _ask_new(self) -> _Live | None:
        if self.plan is not None:
            return self._ask_planned()
        if self.asked >= self.new_trials or self.exhausted:
            return None
        max_macs = self.space.search.max_macs
        for _ in range(MAX_ASKS):
            trial = self.main.ask()
            arch = self.space.suggest(trial)
            macs, params = self._new_trial(trial, arch)
            if max_macs is not None:
                trial.set_constraint("macs", macs - max_macs)
                if macs > max_macs:
                    # Known before training: no need to spend a trial to learn it is over budget.
                    trial.set_user_attr("skipped", "over MAC budget")
                    trial.set_user_attr("reason", f"{macs:,d} MACs over the budget of {max_macs:,.0f}")
                    self.main.tell(trial, state=TrialState.PRUNED)
                    continue
            twin_of = self._same_arch(arch, trial.number)
            if twin_of is not None:
                self._answer_duplicate(trial, twin_of)
                continue
            self.asked += 1
            return self._pair(trial, arch, macs, params)
        self.exhausted = True  # the sampler keeps proposing configurations already tried
        return None

    def _same_arch(self, arch: ArchConfig, number: int) -> optuna.trial.FrozenTrial | None:
        for t in self.main.get_trials(deepcopy=False):
            if t.number != number and rundir.was_trained(t) and t.user_attrs.get("arch") == arch.to_dict():
                return t
        return None

    def _answer_duplicate(self, trial: Trial, original: optuna.trial.FrozenTrial) -> None:
        """Training is seeded, so a configuration already tried would give the same numbers again:
        answer from the original instead of spending the compute (not counted in the budget)."""
        trial.set_user_attr("duplicate_of", original.number)
        trial.set_user_attr("reason", f"same configuration as trial {original.number}")
        for key in ("epochs", "accuracy", "seconds"):
            if key in original.user_attrs:
                trial.set_user_attr(key, original.user_attrs[key])
        if original.state == TrialState.COMPLETE:
            self.main.tell(trial, original.values)
        else:
            self.main.tell(trial, state=TrialState.PRUNED if original.state != TrialState.FAIL else TrialState.FAIL)

    # ---------------------------------------------------------------- outcomes

    def record(self, trial_id: str, result: dict[str, Any]) -> bool:
        """Record one epoch (called by the scheduler before it decides); True = prune this trial."""
        live = self.live.get(trial_id)
        if live is None or "diverged" in result or "accuracy" not in result:
            return False
        epoch, accuracy = int(result["epoch"]), float(result["accuracy"])
        live.twin.report(accuracy, epoch)
        for key in ("node", "setup_seconds"):
            if key in result and key not in live.main.user_attrs:
                live.main.set_user_attr(key, result[key])
        start = int(result.get("start_epoch", 0))
        if start > 0 and epoch == min(start, self.space.train.epochs - 1):
            # First report after a restart (a retry or a resumed search) that continued from a checkpoint.
            resumed = [*live.main.user_attrs.get("resumed_at_epochs", []), start]
            live.main.set_user_attr("resumed_at_epochs", resumed)
        for key, value in (
            ("epochs", epoch + 1),
            ("accuracy", accuracy),
            ("seconds", float(result["seconds"])),
        ):
            live.main.set_user_attr(key, value)
        # The learning curve, for `gcsearch bench` (curves.csv): one entry per epoch, a rerun epoch replaced.
        point = {k: result.get(k) for k in CURVE_KEYS}
        curve = [p for p in live.main.user_attrs.get("curve", []) if p["epoch"] < epoch]
        live.main.set_user_attr("curve", [*curve, point])
        if epoch + 1 < self.space.train.epochs and live.twin.should_prune():
            self.pruned.add(trial_id)
            live.main.set_user_attr("reason", f"pruned after epoch {epoch + 1} at accuracy {accuracy:.4f}")
            return True
        return False

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        live = self.live.pop(trial_id, None)
        if live is None:
            return
        result = result or {}
        epochs = int(result.get("epoch", -1)) + 1
        if error or "diverged" in result:
            reason = result.get("diverged") or "the trial raised an error (see the Tune logs under tune/)"
            live.main.set_user_attr("reason", str(reason))
            self.main.tell(live.main, state=TrialState.FAIL)
            self.twin.tell(live.twin, state=TrialState.FAIL)
        elif trial_id in self.pruned or epochs < self.space.train.epochs:
            if trial_id not in self.pruned:
                live.main.set_user_attr("reason", f"stopped after epoch {epochs} (time budget)")
            self.main.tell(live.main, state=TrialState.PRUNED)
            self.twin.tell(live.twin, state=TrialState.PRUNED)
        else:
            accuracy = float(result["accuracy"])
            values = {"accuracy": accuracy, "macs": live.macs, "params": live.params}
            self.main.tell(live.main, [values[o] for o in self.space.search.objectives])
            self.twin.tell(live.twin, accuracy)


class PruningScheduler(FIFOScheduler):
    """Hands each epoch to the searcher, which records it and consults the Optuna pruner, first:
    Tune calls the scheduler before the searcher and skips the searcher once the scheduler says STOP."""

    def __init__(self, searcher: OptunaSearcher):
        super().__init__()
        self.searcher = searcher

    def on_trial_result(self, tune_controller: Any, trial: TuneTrial, result: dict[str, Any]) -> str:
        if self.searcher.record(trial.trial_id, result):
            return TrialScheduler.STOP
        return TrialScheduler.CONTINUE


# --------------------------------------------------------------------------- the trainable


def make_trainable(space: SearchSpace, run_dir: Path, threads: int):
    ckpt_dir = str(run_dir / "checkpoints")  # the validated space travels as it is: no re-parsing

    def gcsearch_trial(config: dict[str, Any]) -> None:
        started = time.perf_counter()
        import ray
        import torch

        from gcsearch.train import train

        torch.set_num_threads(threads)
        ckpt = Path(ckpt_dir) / f"trial-{config['number']:04d}.pt"

        node = ray.get_runtime_context().get_node_id()

        def report(metrics: dict[str, Any]) -> None:
            extra: dict[str, Any] = {"node": node}
            if "setup_seconds" not in extra_once:
                # Imports, data load and model build before the first epoch: per-trial overhead.
                extra_once["setup_seconds"] = time.perf_counter() - started - metrics["epoch_seconds"]
                extra["setup_seconds"] = extra_once["setup_seconds"]
            tune.report({**{k: v for k, v in metrics.items() if v is not None}, **extra})

        extra_once: dict[str, float] = {}

        try:
            # Resumes from the checkpoint file when a retry or a resumed search reruns this trial.
            train(ArchConfig.from_dict(config["arch"]), space, report, checkpoint=ckpt, seed=config.get("seed"))
        except TrainingDiverged as err:
            # Reported, not raised: a retry would diverge the same way.
            tune.report({"diverged": str(err), "epoch": -1, "accuracy": float("nan")})

    return gcsearch_trial


# --------------------------------------------------------------------------- live view


class LiveView(tune.Callback):
    """One compact status line instead of Ray's tables."""

    def __init__(self, searcher: OptunaSearcher, budget: int, stream: TextIO):
        self.searcher, self.budget, self.stream = searcher, budget, stream
        self.start = time.monotonic()
        self.tty = stream.isatty()
        self.last = 0.0

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles its run config; an open stream (pytest's capture, a pipe) cannot travel.
        return {**self.__dict__, "stream": None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, stream=sys.stdout)

    def line(self) -> str:
        recs = rundir.trained(rundir.records(self.searcher.main))
        count = {s: sum(r.state == s for r in recs) for s in ("COMPLETE", "PRUNED", "FAIL", "RUNNING")}
        best = max((r.accuracy for r in recs if r.accuracy is not None and r.state == "COMPLETE"), default=None)
        front = rundir.pareto_front(self.searcher.space, recs)
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
        self.draw(force=True)


# --------------------------------------------------------------------------- ray


def start_ray(address: str | None, stream: TextIO) -> bool:
    """Join a cluster (address or RAY_ADDRESS) or start a local Ray; True if we started it."""
    import ray

    address = address or os.environ.get("RAY_ADDRESS")
    if ray.is_initialized():
        return False
    if address:
        ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False)
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        res = ray.cluster_resources()
        stream.write(
            f"joined Ray cluster at {address}: {len(nodes)} nodes, {res.get('CPU', 0):g} CPUs, "
            f"{res.get('GPU', 0):g} GPUs\n"
        )
        return False
    # Local: no dashboard (nothing listens beyond this process tree), no token-auth files.
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray.init(include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
    return True


def plan(
    space: SearchSpace, run_dir: Path, fixed: list[tuple[ArchConfig, int]] | None = None
) -> tuple[int, list[int], list[tuple[ArchConfig, int]] | None]:
    """(new trials to ask for, numbers of interrupted trials to rerun, fixed trials still to run)
    from what the journal holds."""
    try:
        study = rundir.load_main_study(run_dir)
    except ConfigError:
        return (space.search.trials if fixed is None else len(fixed)), [], fixed
    trials = [t for t in study.get_trials(deepcopy=False) if rundir.was_trained(t)]
    rerun = [t.number for t in trials if t.state == TrialState.RUNNING]
    if fixed is not None:
        done = {(repr(t.user_attrs["arch"]), t.user_attrs.get("seed")) for t in trials}
        todo = [(a, s) for a, s in fixed if (repr(a.to_dict()), s) not in done]
        return len(todo), rerun, todo
    return max(0, space.search.trials - len(trials)), rerun, None


def run(
    space: SearchSpace,
    run_dir: Path,
    *,
    address: str | None = None,
    stream: TextIO | None = None,
    fixed: list[tuple[ArchConfig, int]] | None = None,
) -> list[TrialRecord]:
    """Run (or continue) the search in ``run_dir``; returns every trial's record. ``fixed`` replaces
    the sampler with a list of (architecture, seed) trials to run, as ``gcsearch ablate`` does."""
    run_dir = run_dir.resolve()  # Ray workers run in other working directories
    run_dir.mkdir(parents=True, exist_ok=True)
    with rundir.RunLock(run_dir):
        # sys.stdout looked up now, not at import: it may have been replaced since (pytest, notebooks).
        return _run_locked(space, run_dir, address, stream or sys.stdout, fixed)


def _run_locked(
    space: SearchSpace,
    run_dir: Path,
    address: str | None,
    stream: TextIO,
    fixed: list[tuple[ArchConfig, int]] | None,
) -> list[TrialRecord]:
    (run_dir / "checkpoints").mkdir(exist_ok=True)
    dropped = rundir.repair_journal(run_dir)
    if dropped:
        stream.write(
            f"optuna.log ended in a half-written record ({dropped} bytes, from a kill mid-write): dropped it; "
            "every complete record is kept, and a trial it left unfinished is rerun from its checkpoint\n"
        )
    rundir.save_space(run_dir, space)
    new, rerun, todo = plan(space, run_dir, fixed)
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the live view says what matters
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")  # Optuna's journal is the record
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    started = start_ray(address, stream)
    try:
        searcher = OptunaSearcher(space, run_dir, new, rerun, plan=todo)
        if new or rerun:
            budget = space.search.trials if fixed is None else len(fixed)
            _tune(space, run_dir, searcher, new + len(rerun), stream, budget)
        recs = rundir.records(searcher.main)
        rundir.write_tables(run_dir, space, recs)
        return recs
    finally:
        if started:
            import ray

            ray.shutdown()


def _tune(space: SearchSpace, run_dir: Path, searcher: OptunaSearcher, count: int, stream: TextIO, budget: int) -> None:
    import ray

    s = space.search
    cpu_total = ray.cluster_resources().get("CPU", 1)
    concurrency = s.concurrency or max(1, math.floor(cpu_total / s.cpu))
    threads = space.train.threads or max(1, int(s.cpu))
    trainable = tune.with_resources(make_trainable(space, run_dir, threads), {"cpu": s.cpu, "gpu": s.gpu})
    tune_dir = run_dir / "tune"
    name = f"run-{len(list(tune_dir.glob('run-*'))) if tune_dir.exists() else 0}"
    view = LiveView(searcher, budget, stream)
    tuner = tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            search_alg=searcher,
            scheduler=PruningScheduler(searcher),
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
        ),
    )
    tuner.fit()
    if view.tty:
        stream.write("\n")
    view.draw(force=True)


def new_run_dir(space: SearchSpace, name: str | None) -> Path:
    stem = name or f"{Path(space.path).stem}-{datetime.datetime.now():%Y%m%d-%H%M%S}"
    return Path(space.output_dir) / stem
