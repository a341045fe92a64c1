"""Writing files so that a kill never leaves half of one. Pure Python."""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gcsearch import failpoints


def temporary(path: Path) -> Path:
    """A temporary name beside ``path``, unique to this process on this host: two workers writing the same
    file (a retried trial whose first attempt still runs, on a run directory shared by a cluster) never
    write into one temporary file."""
    return path.with_name(f".{path.name}.tmp-{socket.gethostname()}-{os.getpid()}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def sweep_temporaries(folder: Path, everyone: bool = False) -> list[Path]:
    """Remove the temporary files and directories (``temporary``) in ``folder`` that a killed writer left: those
    of this host whose process is gone, or (``everyone``: the caller knows no one else writes there, such as a
    search under its run lock) all of them. Returns what was removed."""
    host, removed = socket.gethostname(), []
    for path in Path(folder).glob(".*.tmp-*"):
        writer_host, _, pid = path.name.rpartition(".tmp-")[2].rpartition("-")
        if everyone or (writer_host == host and pid.isdigit() and not _alive(int(pid))):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def replace_with(path: Path, write: Callable[[Path], None]) -> None:
    """``write`` a temporary file, then rename it over ``path``: a kill never leaves a half-written file,
    and a failed write leaves the previous file and no temporary one."""
    tmp = temporary(path)
    try:
        write(tmp)
        failpoints.hit("written", path)
        os.replace(tmp, path)
        failpoints.hit("replaced", path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_atomic(path: Path, text: str) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())

    replace_with(path, write)


def save_figure(fig: Any, out: str | Path, **savefig: Any) -> None:
    """A matplotlib figure saved atomically (no truncated PNG after a kill), in the format of its suffix."""
    path = Path(out)
    replace_with(path, lambda tmp: fig.savefig(tmp, format=path.suffix.lstrip(".") or "png", **savefig))


def write_report(out: Path, title: str, command: str, body: str, picture: Path | None = None) -> None:
    """A markdown report: its title, the command that made it, the body, and its picture (saved beside it)."""
    text = f"# {title}\n\nCommand: `{command}`\n\n{body.rstrip()}\n"
    if picture is not None:
        text += f"\n![{picture.stem}]({picture.name})\n"
    write_atomic(out, text)
