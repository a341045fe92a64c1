"""The project's exceptions.

Every error a user can cause is a ``GcsearchError``; the CLI prints its message on one line and exits
with code 2. Messages follow Optuna's style: what, the rule, what was given, and where it came from,
e.g. "`ratio` must be in (0, 1], but got 1.5 (search_spaces/gc.yaml: space.ratio[2])".
"""

from __future__ import annotations


class GcsearchError(Exception):
    """Base class: a problem the user can fix; reported without a traceback."""

    exit_code = 2  # bad input


class _Nothing:
    """ConfigError's "no value to show" (None is a value a user can write); one object, even after
    pickling (Ray ships errors between processes)."""

    def __reduce__(self) -> str:
        return "NOTHING"

    def __repr__(self) -> str:
        return "NOTHING"


NOTHING = _Nothing()


class ConfigError(GcsearchError, ValueError):
    """A bad argument or a bad value in a space, export or CLI input."""

    def __init__(self, key: str, rule: str, got: object = NOTHING, where: str | None = None):
        self.key, self.rule, self.got, self.where = key, rule, got, where
        msg = f"`{key}` {rule}"
        if got is not NOTHING:
            msg += f", but got {got!r}"
        if where:
            msg += f" ({where})"
        super().__init__(msg)

    def __reduce__(self) -> tuple[type, tuple[str, str, object, str | None]]:
        # Rebuilt from its parts, so copy.copy and pickle (Ray does both) keep the message.
        return (type(self), (self.key, self.rule, self.got, self.where))


class DataError(GcsearchError):
    """A dataset that cannot be found or read."""


class TrainingDiverged(GcsearchError):
    """The loss became NaN or infinite: the trial fails, the search goes on."""


class SearchFailed(GcsearchError):
    """A search, ablation or recording whose every trial failed: nothing usable was produced."""

    exit_code = 1


class Interrupted(GcsearchError):
    """Ctrl-C: a pause, not a failure. What finished is kept; the message says how to continue."""

    exit_code = 130  # the shell's code for a process ended by SIGINT
