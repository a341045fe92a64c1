"""What decides a training's numbers besides its seed: torch's version and build, the threads it ran on, the CPU
(or GPU), and the code. One training is deterministic on one machine and not across machines (the far-cue default at
seed 0 gave 0.629 on the machine that recorded it and 0.704 on another, with the same commit), so every trial records
where it ran and a recording states it (``bench record`` writes a sidecar).
"""

from __future__ import annotations

import functools
import platform
import subprocess
from pathlib import Path

import torch


@functools.cache
def code_version() -> str:
    """The gcsearch commit this process runs (with "-dirty" when its files differ from it), or "unknown" outside a
    git checkout (an installed wheel)."""
    here = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()  # fmt: skip
        dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--", "."], capture_output=True,
                               text=True, timeout=10, check=True).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return commit + ("-dirty" if dirty else "")


@functools.cache
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe(device: torch.device) -> dict[str, str | int]:
    """This process's environment for a training on ``device`` (call it after the trial set its threads)."""
    env: dict[str, str | int] = {
        "torch": torch.__version__,
        "build": f"cuda {torch.version.cuda}" if torch.version.cuda else "cpu",
        "threads": torch.get_num_threads(),
        "cpu": cpu_model(),
        "python": platform.python_version(),
        "code": code_version(),
    }
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
    return env
