"""Helpers the tests and the experiments share (as Optuna ships ``optuna.testing``), so neither imports the
other. Pure Python."""

from __future__ import annotations

from pathlib import Path


def descendants(root: int) -> dict[int, str]:
    """pid -> command line of every process below ``root`` (Linux /proc): other searches on the machine are
    left out."""
    parent, cmd = {}, {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                cmd[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            parent[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])

    def descends(pid: int) -> bool:
        while pid > 1:
            if pid == root:
                return True
            pid = parent.get(pid, 0)
        return False

    return {pid: c for pid, c in cmd.items() if descends(pid)}


def trial_workers(root: int) -> list[int]:
    """PIDs of Ray workers running a gcsearch trial (Ray sets their process title) below process ``root``."""
    return [pid for pid, title in descendants(root).items()
            if title.startswith("ray::") and ("ImplicitFunc" in title or "gcsearch_trial" in title)]  # fmt: skip
