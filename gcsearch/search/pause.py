"""Ctrl-C is a pause, not a failure (``Pause``): the search stops, what finished is kept, the trials cut short stay
resumable, and one line (``paused_line``) says what finished and how to continue. Used by ``tune.py``."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Any, TextIO

from optuna.trial import TrialState
from ray import tune

from gcsearch.errors import ConfigError
from gcsearch.search import rundir


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
