"""The project's exceptions.

Every error a user can cause is a ``GcsearchError``; the CLI prints its message on one line and exits
with code 2. Messages follow Optuna's style: what, the rule, what was given, and where it came from,
e.g. "`ratio` must be in (0, 1], but got 1.5 (search_spaces/gc.yaml: space.ratio[2])".
"""

from __future__ import annotations


class GcsearchError(Exception):
    """Base class: a problem the user can fix; reported without a traceback."""


NOTHING = object()  # ConfigError's "no value to show" (None is a value a user can write)


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


class DataError(GcsearchError):
    """A dataset that cannot be found or read."""


class TrainingDiverged(GcsearchError):
    """The loss became NaN or infinite: the trial fails, the search goes on."""
