"""The run directory: its layout, its Optuna studies and the records read from them. No Ray.

    <run>/space.yaml       the resolved space file (every default filled in)
    <run>/optuna.log       Optuna journal: the study "gcsearch" (objectives) and its single-objective
                           twin "gcsearch-accuracy" (per-epoch accuracy, for the pruners);
                           `optuna-dashboard <run>/optuna.log` opens it
    <run>/checkpoints/     trial-NNNN.pt, each trial's last finished epoch (resume, retries)
    <run>/tune/            the Ray Tune experiments, one per `gcsearch run` invocation
    <run>/trials.csv       every trial: config, state, epochs, accuracy, MACs, params, seconds, reason
    <run>/pareto.csv       the non-dominated COMPLETE trials

The Optuna study is the one source of truth: trials.csv, pareto.csv and every command that inspects a
run read it, so they also work while a search is still running.
"""

from __future__ import annotations

import csv
import datetime
import io
import json
import math
import os
import shutil
import statistics
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import yaml
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial, TrialState

from gcsearch import failpoints, stats
from gcsearch.arch import AXES, ArchConfig
from gcsearch.errors import ConfigError, SearchFailed
from gcsearch.files import sweep_temporaries, temporary, write_atomic
from gcsearch.pareto import TrialRecord, front, trained
from gcsearch.search import attrs
from gcsearch.space import SearchSpace, recipe_of, space_to_dict
from gcsearch.spacefile import load_space

MAIN_STUDY = "gcsearch"
TWIN_STUDY = "gcsearch-accuracy"
TRIAL_COLUMNS = (
    "number", "state", "epochs", "accuracy", "macs", "params", "latency_ms", "latency_vs_baseline", "seconds",
    "stages", "pool", "fusion", "ratio", "norm", "position", "gate_init", "reason",
)  # fmt: skip


def new_run_dir(space: SearchSpace, name: str | None, kind: str = "") -> Path:
    """Where a new run goes: ``<output.dir>/<name>``, or ``<output.dir>/<space file's stem>[-<kind>]-<time>``
    (kind: ablate, record, factorial; none for a search)."""
    stem = name or "-".join(p for p in (Path(space.path).stem, kind, f"{datetime.datetime.now():%Y%m%d-%H%M%S}") if p)
    return Path(space.output_dir) / stem


CHECKPOINT = "checkpoints/trial-{:04d}.pt"  # inside the run directory, by trial number
OUTCOMES = "outcomes/trial-{:04d}.npz"  # the final weights' per-image predictions (nn/train.save_outcomes)
LOG = "logs/trial-{:04d}.log"  # what the trial trained, each epoch, and the traceback of what it raised


def checkpoint(run_dir: Path, number: int) -> Path:
    """Where trial ``number`` keeps its last finished epoch."""
    return Path(run_dir) / CHECKPOINT.format(number)


class _Journal(JournalFileBackend):
    """Optuna's journal file, with the fault campaign's points (failpoints): a record appended, or torn."""

    def __init__(self, path: str):
        super().__init__(path)
        self.path = path

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        if failpoints.due("journal-torn"):  # the first half of the record reached the disk, then the power went
            text = ("\n".join(json.dumps(log, separators=(",", ":")) for log in logs) + "\n").encode()
            with open(self.path, "ab") as f:
                f.write(text[: len(text) // 2])
                f.flush()
                os.fsync(f.fileno())
            failpoints.cut()
        super().append_logs(logs)
        failpoints.hit("journal")


def storage(run_dir: Path) -> JournalStorage:
    return JournalStorage(_Journal(str(run_dir / "optuna.log")))


def check_same_recipe(run_dir: Path, space: SearchSpace) -> None:
    """A run continued under another training recipe (another ``--epochs``, say) would mix fidelities in
    one table without a word: refuse it, naming the first key that differs."""
    saved = run_dir / "space.yaml"
    if not saved.is_file() or not (run_dir / "optuna.log").is_file():
        return
    # Read back through the loader, so a key added since the run started compares as its default.
    old, new = recipe_of(load_space(saved)), recipe_of(space)
    for section, now in new.items():
        before = old.get(section) or {}
        for key in sorted(set(before) | set(now)):
            if before.get(key) != now.get(key):
                raise ConfigError(
                    f"{section}.{key}",
                    f"must match the run being continued, which trained with {before.get(key)!r} ({saved}); "
                    "give another --name for another recipe",
                    now.get(key),
                )


def create_run_dir(run_dir: Path, space: SearchSpace) -> None:
    """A new run directory, whole or not at all: made under a temporary name with its space.yaml, then renamed
    into place, so that a kill never leaves a run directory that `--resume` cannot read and whose name a new
    `gcsearch run` refuses (the campaign's point written@*/space.yaml:1). A killed creator's temporary
    directory is swept by the next one."""
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    sweep_temporaries(run_dir.parent)
    tmp = temporary(run_dir)
    shutil.rmtree(tmp, ignore_errors=True)  # ours by name: left by a killed process that had our pid
    tmp.mkdir()
    try:
        save_space(tmp, space)
        os.rename(tmp, run_dir)
    except BaseException as err:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(err, OSError) and run_dir.exists():  # another search created it first
            raise ConfigError("--name", "names a run another search has just started", str(run_dir)) from None
        raise


def save_space(run_dir: Path, space: SearchSpace) -> None:
    write_atomic(run_dir / "space.yaml", yaml.safe_dump(space_to_dict(space), sort_keys=False))


def load_run_space(run_dir: Path) -> SearchSpace:
    return load_space(check_run_dir(run_dir) / "space.yaml")


def check_resumable(run_dir: str | Path) -> Path:
    """A run directory `gcsearch run --resume` can continue: its space.yaml, with which it was created, is
    enough (a search killed in its pretraining has no journal yet)."""
    path = Path(run_dir)
    if not path.is_dir():
        raise ConfigError("--resume", "must be an existing run directory", str(path))
    if not (path / "space.yaml").is_file():
        raise ConfigError("--resume", "must be a run directory holding space.yaml", str(path))
    return path


def check_run_dir(run_dir: str | Path) -> Path:
    path = Path(run_dir)
    if not path.is_dir():
        raise ConfigError("run", "must be an existing run directory", str(path))
    if not (path / "optuna.log").is_file() or not (path / "space.yaml").is_file():
        raise ConfigError("run", "must be a run directory holding optuna.log and space.yaml", str(path))
    return path


def open_run(path: str | Path) -> tuple[Path, SearchSpace, optuna.Study]:
    """A run directory someone names: (its path, its space, its main study), or one ConfigError."""
    run_dir = check_run_dir(path)
    return run_dir, load_run_space(run_dir), load_main_study(run_dir)


def load_main_study(run_dir: Path) -> optuna.Study:
    try:
        return optuna.load_study(study_name=MAIN_STUDY, storage=storage(run_dir))
    except KeyError:
        raise ConfigError("run", "holds no gcsearch study yet", str(run_dir)) from None


def accuracy_index(study: optuna.Study) -> int:
    """Where accuracy sits among a study's objectives (``search.objectives`` may list it anywhere): the
    study's metric names say; a study from before they were set has accuracy first."""
    names = study.metric_names
    return names.index("accuracy") if names and "accuracy" in names else 0


def record_of(trial: FrozenTrial, accuracy_at: int = 0) -> TrialRecord:
    a = trial.user_attrs
    arch = ArchConfig.from_dict(a.get(attrs.ARCH, {"stages": []}))
    complete = trial.state == TrialState.COMPLETE and trial.values
    accuracy = trial.values[accuracy_at] if complete else a.get(attrs.ACCURACY)
    return TrialRecord(
        number=trial.number,
        state=trial.state.name,
        arch=arch,
        accuracy=accuracy,
        macs=int(a.get(attrs.MACS, 0)),
        params=int(a.get(attrs.PARAMS, 0)),
        epochs=int(a.get(attrs.EPOCHS, 0)),
        seconds=float(a.get(attrs.SECONDS, 0.0)),
        reason=str(a.get(attrs.REASON, "")),
        seed=a.get(attrs.SEED),
        extra={k: v for k, v in a.items() if k in (attrs.DUPLICATE_OF, attrs.SKIPPED, attrs.PREPROCESS)},
        trained=was_trained(trial),
        latency=a.get(attrs.LATENCY),
    )


def records(study: optuna.Study) -> list[TrialRecord]:
    at = accuracy_index(study)
    return [record_of(t, at) for t in study.get_trials(deepcopy=False)]


def holds_trials(run_dir: Path) -> bool:
    """Whether a run directory's journal holds any trial (a run refused at start holds none)."""
    try:
        return bool(load_main_study(run_dir).get_trials(deepcopy=False))
    except (ConfigError, OSError):
        return False


def check_some_trained(records: Sequence[TrialRecord]) -> None:
    """A run whose every trained trial failed produced nothing usable: one line, the first trial's reason."""
    runs = trained(records)
    if runs and all(r.state == "FAIL" for r in runs):
        first = min(runs, key=lambda r: r.number)
        raise SearchFailed(f"every trial failed ({len(runs)}); the first, trial {first.number}: {first.reason}")


def was_trained(trial: FrozenTrial) -> bool:
    """The search pairs every trial it trains with a twin in the accuracy study; duplicates answered
    from an earlier trial and configurations skipped as over budget have none."""
    return attrs.TWIN in trial.user_attrs


def pareto_front(space: SearchSpace, records_: Sequence[TrialRecord]) -> list[TrialRecord]:
    """The non-dominated trials trained at the search's own seed (a reference trial's extra seeds measure the
    noise; the best of them on the front would flatter the baseline)."""
    own = [r for r in trained(records_) if r.seed in (None, space.train.seed)]
    return front(own, space.search.objectives, space.search.directions)


@dataclass(frozen=True)
class Noise:
    """What the run's reference trials say about its noise: the paired differences paper default - baseline over
    the seeds both were trained with, and the half-width a single paired difference must exceed to be told from
    0 (Student's t at 95%, the pairs' standard deviation)."""

    pairs: int
    sd: float
    threshold: float  # inf with fewer than 2 pairs: no estimate


def reference_noise(space: SearchSpace, records_: Sequence[TrialRecord]) -> Noise:
    reference = space.reference()
    done = [r for r in trained(records_) if r.state == "COMPLETE" and r.accuracy is not None]
    by_seed: dict[ArchConfig, dict[int, float]] = {}
    for r in done:
        if r.arch in (ArchConfig(), reference):
            by_seed.setdefault(r.arch, {})[space.train.seed if r.seed is None else r.seed] = float(r.accuracy or 0)
    diffs = stats.paired(by_seed.get(reference, {}), by_seed.get(ArchConfig(), {})) if reference else []
    if len(diffs) < 2:
        return Noise(len(diffs), math.nan, math.inf)
    sd = statistics.stdev(diffs)
    return Noise(len(diffs), sd, stats.t_quantile(0.975, len(diffs) - 1) * sd)


def baseline_marks(space: SearchSpace, records_: Sequence[TrialRecord]) -> dict[int, str]:
    """Each front point against the baseline trained at the same seed: "within noise", "above" or "below" it
    (``reference_noise``), or "noise unknown" without at least 2 reference pairs; the baseline marked itself."""
    noise = reference_noise(space, records_)
    base = next((r for r in pareto_front(space, records_) + trained(records_) if r.arch.is_baseline
                 and r.state == "COMPLETE" and r.seed in (None, space.train.seed)), None)  # fmt: skip
    marks = {}
    for r in pareto_front(space, records_):
        if r.arch.is_baseline:
            marks[r.number] = "the baseline"
        elif base is None or base.accuracy is None or r.accuracy is None or noise.pairs < 2:
            marks[r.number] = "noise unknown"
        else:
            d = r.accuracy - base.accuracy
            marks[r.number] = "within noise" if abs(d) <= noise.threshold else ("above" if d > 0 else "below")
    return marks


def _csv(rows: Sequence[TrialRecord], baseline_ms: float | None = None) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(TRIAL_COLUMNS)
    for r in rows:
        a = r.arch
        latency = f"{r.latency:.4f}" if r.latency is not None else ""
        relative = f"{r.latency / baseline_ms:.4f}" if r.latency is not None and baseline_ms else ""
        writer.writerow([
            r.number, r.state, r.epochs, "" if r.accuracy is None else f"{r.accuracy:.6f}", r.macs, r.params,
            latency, relative, f"{r.seconds:.1f}", *(a.value_text(axis) for axis in AXES), r.reason,
        ])  # fmt: skip
    return out.getvalue()


def baseline_latency(records_: Sequence[TrialRecord]) -> float | None:
    """The baseline's measured latency (ms): every latency is also reported relative to it, which cancels the
    drift between machines and runs."""
    return next((r.latency for r in records_ if r.arch.is_baseline and r.latency), None)


def write_tables(run_dir: Path, space: SearchSpace, records_: Sequence[TrialRecord]) -> None:
    base = baseline_latency(records_)
    write_atomic(run_dir / "trials.csv", _csv(records_, base))
    write_atomic(run_dir / "pareto.csv", _csv(pareto_front(space, records_), base))


MIN_FOR_IMPORTANCE = 10  # configurations (or the whole grid, if smaller): PED-ANOVA's top 10% is then one or more


def param_importances(study: optuna.Study, grid_size: int) -> dict[str, float]:
    """Which axes mattered for accuracy (Optuna's PED-ANOVA over COMPLETE trials: no scikit-learn
    needed, unlike fANOVA), largest first; refused with fewer than ``MIN_FOR_IMPORTANCE`` configurations of a
    grid of ``grid_size``."""
    complete = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if was_trained(t)]
    configs = len({repr(t.user_attrs.get(attrs.ARCH)) for t in complete})
    needed = min(MIN_FOR_IMPORTANCE, grid_size)
    if configs < needed:
        raise ConfigError("run", f"needs at least {needed} COMPLETE configurations to rank the axes (PED-ANOVA "
                          "compares the best 10% with the rest: fewer rank noise)", configs)  # fmt: skip
    evaluator = optuna.importance.PedAnovaImportanceEvaluator()
    at = accuracy_index(study)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # PED-ANOVA's reminder that it favours low targets: we negate
            importances = optuna.importance.get_param_importances(
                study, evaluator=evaluator, target=lambda t: -t.values[at], normalize=True
            )
    except (RuntimeError, ValueError) as err:  # e.g. no parameter varies across the COMPLETE trials
        raise ConfigError("run", f"has no importances to compute yet ({err})") from None
    if not importances:
        raise ConfigError("run", "has no parameter that varies across its COMPLETE trials")
    return importances


class RunLock:
    """An exclusive lock on a run directory: a second `gcsearch run` on it refuses instead of corrupting
    it. flock is released by the kernel when the holder dies, so a killed search can be resumed at once."""

    def __init__(self, run_dir: Path):
        self.path = run_dir / "lock"
        self.file: Any = None

    def __enter__(self) -> RunLock:
        import fcntl

        self.file = open(self.path, "a+")  # held open for the lock's lifetime
        try:
            fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.file.seek(0)
            holder = self.file.read().strip() or "another process"
            self.file.close()
            raise ConfigError(
                "run", f"is in use by {holder}; wait for it or stop it first", str(self.path.parent)
            ) from None
        self.file.seek(0)
        self.file.truncate()
        self.file.write(f"gcsearch pid {os.getpid()}")
        self.file.flush()
        return self

    def __exit__(self, *exc: object) -> None:
        self.file.close()


def clear_stale_journal_lock(run_dir: Path) -> bool:
    """Remove the journal's lock file (``optuna.log.lock``) left by a process killed while appending.
    Only under the run lock, which proves no other process writes: Optuna would otherwise wait out its
    30 s grace period before taking the lock by force. True if one was removed."""
    lock = run_dir / "optuna.log.lock"
    if lock.is_symlink() or lock.exists():
        lock.unlink()
        return True
    return False


def repair_journal(run_dir: Path) -> int:
    """Cut a half-written last record (a kill during a write) so new records do not glue onto it.
    Returns the bytes dropped. Complete records are never touched; a trial whose last record was cut
    is still RUNNING in the journal and is rerun from its checkpoint."""
    path = run_dir / "optuna.log"
    if not path.exists():
        return 0
    data = path.read_bytes()
    if not data or data.endswith(b"\n"):
        return 0
    keep = data.rfind(b"\n") + 1
    with open(path, "r+b") as f:
        f.truncate(keep)
        f.flush()
        os.fsync(f.fileno())
    return len(data) - keep


def serve_dashboard(run: str | Path, port: int, stream: Any = None) -> None:
    """`gcsearch dashboard RUN`: optuna-dashboard on the run's journal, on 127.0.0.1 only, until Ctrl-C."""
    run_dir = check_run_dir(run)
    try:
        import optuna_dashboard
    except ImportError:
        raise ConfigError("dashboard", "needs optuna-dashboard: pip install 'gcsearch[dashboard]'") from None
    stream = stream or sys.stdout
    stream.write(f"optuna-dashboard on {run_dir}: http://127.0.0.1:{port}/ (Ctrl-C stops it). Study {MAIN_STUDY!r} "
                 f"holds the objectives, {TWIN_STUDY!r} each trial's accuracy per epoch (its learning curves, which "
                 "a multi-objective study cannot hold)\n")  # fmt: skip
    stream.flush()
    optuna_dashboard.run_server(storage(run_dir), host="127.0.0.1", port=port)
