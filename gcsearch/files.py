"""Writing files so that a kill never leaves half of one. Pure Python."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any


def temporary(path: Path) -> Path:
    """A temporary name beside ``path``, unique to this process on this host: two workers writing the same
    file (a retried trial whose first attempt still runs, on a run directory shared by a cluster) never
    write into one temporary file."""
    return path.with_name(f".{path.name}.tmp-{socket.gethostname()}-{os.getpid()}")


def replace_with(path: Path, write: Callable[[Path], None]) -> None:
    """``write`` a temporary file, then rename it over ``path``: a kill never leaves a half-written file,
    and a failed write leaves the previous file and no temporary one."""
    tmp = temporary(path)
    try:
        write(tmp)
        os.replace(tmp, path)
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
