"""Named points where a fault campaign (experiments/faults.py) cuts the power to a search. Pure Python.

``GCSEARCH_FAILPOINT=POINT[@GLOB]:N`` arms one point: the N-th time this process passes POINT (with a path that
matches GLOB, when given), it SIGKILLs the process group named by ``GCSEARCH_FAILPOINT_PGID`` (the driver's: the
driver, the local Ray it started and their trial workers) and then itself, as a node that loses power would. A
worker that hits a point kills the driver with it, so a kill lands inside the worker's write. Unset, ``hit``
costs one comparison.

The points (each named where it is passed):
    replaced@GLOB   files.replace_with: a file was renamed into place (checkpoint, pretrained weights, space.yaml,
                    trials.csv, a latency or cache manifest ...)
    written@GLOB    files.replace_with: a file was written whole under its temporary name, not yet renamed
    journal         rundir.storage: a record was appended to the run's Optuna journal
    journal-torn    rundir.storage: half of a record was appended (a write the power cut tore)
    cache-chunk     cache: a chunk of images was decoded into the cache being built
    report          a trial's report of an epoch, before Tune hears of it (in the worker)
    result          the driver heard an epoch's result, before the decider writes it
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import signal
import sys
from pathlib import Path

ENV, PGID_ENV = "GCSEARCH_FAILPOINT", "GCSEARCH_FAILPOINT_PGID"


def _parse(spec: str | None) -> tuple[str, str | None, int] | None:
    if not spec:
        return None
    point, _, count = spec.rpartition(":")
    name, _, glob = point.partition("@")
    if not name or not count.isdigit() or int(count) < 1:
        print(f"{ENV}={spec!r}: expected POINT[@GLOB]:N with N >= 1 (gcsearch/failpoints.py)", file=sys.stderr)
        raise SystemExit(2)
    return name, glob or None, int(count)


_ARMED = _parse(os.environ.get(ENV))
_passed = 0


def due(point: str, path: str | Path | None = None) -> bool:
    """Pass ``point``: True at the armed count (for a caller with work of its own before ``cut``)."""
    global _passed
    if _ARMED is None:
        return False
    name, glob, count = _ARMED
    if point != name or (glob is not None and (path is None or not fnmatch.fnmatch(str(path), glob))):
        return False
    _passed += 1
    return _passed == count


def hit(point: str, path: str | Path | None = None) -> None:
    """Pass ``point``; at the armed count, cut the power."""
    if _ARMED is not None and due(point, path):
        cut()


def cut() -> None:
    group = os.environ.get(PGID_ENV)
    if group:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(int(group), signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)
