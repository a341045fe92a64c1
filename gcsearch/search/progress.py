"""What a search says while it runs, instead of Ray's tables (a Tune callback on the driver):

- a line per finished epoch of each trial: trial, epoch, its score, time since the search started, and the
  search's ETA (the epochs left at the pace so far; pruning makes it an upper bound);
- a status line: a bar redrawn in place on a terminal, every 30 s otherwise;
- a trial that raised or whose worker died, in one line (the trial's log under logs/ holds the traceback);
- at the end, a summary: wall time, and the CPU-seconds the trials and the driver spent.
"""

from __future__ import annotations

import datetime
import sys
import time
from typing import Any, TextIO

from ray import tune
from ray.tune.experiment import Trial as TuneTrial

from gcsearch.pareto import trained
from gcsearch.search import rundir
from gcsearch.search.decider import Decider
from gcsearch.search.pause import Pause


def clock(seconds: float) -> str:
    return str(datetime.timedelta(seconds=int(seconds)))


class LiveView(tune.Callback):
    def __init__(self, decider: Decider, budget: int, stream: TextIO, pause: Pause | None = None,
                 started: float | None = None):  # fmt: skip
        self.decider, self.budget, self.stream, self.pause = decider, budget, stream, pause
        self.start = time.monotonic() if started is None else started  # the command's start: Ray's start counts
        self.driver_cpu = time.process_time()
        self.tty = stream.isatty()
        self.last = 0.0
        self.cpu: dict[str, float] = {}  # Tune trial id -> CPU-seconds its worker has spent on it
        self.epochs_done = 0  # trained by this invocation (replayed epochs are not)
        self.epochs_budget = budget * decider.space.train.epochs

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
        best_text = f"{best:.4f}" if best is not None else "-"
        return (
            f"[{'#' * filled}{'.' * (width - filled)}] {finished}/{self.budget} trials | "
            f"{count['COMPLETE']} done {count['PRUNED']} pruned {count['FAIL']} failed {count['RUNNING']} running"
            f" | best acc {best_text} | front {len(front)} | {clock(time.monotonic() - self.start)}"
        )

    def eta(self) -> str:
        """The epochs the budget has left (every trial to its last epoch) at this invocation's pace."""
        spent = time.monotonic() - self.start
        done = sum(t.epochs for t in self._trials()) if self.epochs_done else 0
        if not self.epochs_done or spent <= 0:
            return "-"
        left = max(0, self.epochs_budget - done)
        return clock(left * spent / self.epochs_done)

    def _trials(self) -> list[Any]:
        return [r for r in trained(rundir.records(self.decider.main)) if r.epochs is not None]

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

    def write(self, text: str) -> None:
        """A line of its own (above the bar on a terminal)."""
        self.stream.write(("\r\033[K" if self.tty else "") + text + "\n")
        self.stream.flush()

    def on_trial_result(self, iteration: int, trials: list, trial: TuneTrial, result: dict, **info: Any) -> None:
        if "cpu_seconds" in result:
            self.cpu[trial.trial_id] = result["cpu_seconds"]
        if "accuracy" in result and "diverged" not in result and not result.get("replayed"):
            self.epochs_done += 1
            self.write(f"trial {trial.config.get('number', '?'):>3}  epoch {result['epoch'] + 1}/"
                       f"{self.decider.space.train.epochs}  acc {result['accuracy']:.4f}  "
                       f"{clock(time.monotonic() - self.start)}  ETA {self.eta()}")  # fmt: skip
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
        logs (silenced in tune.py; the trial's log holds it)."""
        number = trial.config.get("number", "?")
        self.write(f"trial {number} ({what}): {error_line(trial)}")

    def summary(self) -> str:
        """Wall time and CPU-seconds of this invocation: `time gcsearch run` sees only the driver's."""
        trials_cpu = sum(self.cpu.values())
        driver = time.process_time() - self.driver_cpu
        return (f"wall {clock(time.monotonic() - self.start)}; CPU {trials_cpu:,.0f} s in {len(self.cpu)} trials' "
                f"workers ({trials_cpu / 3600:.2f} CPU-h), {driver:,.0f} s in this driver")  # fmt: skip


def error_line(trial: TuneTrial) -> str:
    """What a failed trial raised, as one line: the trainable's own exception, not Ray's wrapper with its
    traceback (the trial's log under logs/ and the Tune logs under tune/ hold the whole of it)."""
    try:
        err = trial.get_pickled_error() or trial.get_error()
    except Exception:  # an unreadable error file: say where to look instead
        err = None
    cause = getattr(err, "cause", None) or err
    number = trial.config.get("number")
    where = rundir.LOG.format(number) if isinstance(number, int) else "the Tune logs under tune/"
    if cause is None:
        return f"the trial raised an error (see {where})"
    text = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {text[0] if text else ''} ({where} holds its traceback)"
