"""The image caches an image folder has left behind: each change of the folder (or of the cache's settings) gets a
cache of its own (``nn/cache.py``), and the older ones stay, since a run directory may still train from one.
``gcsearch prepare`` lists them with their sizes; ``gcsearch prepare --prune`` removes those no run directory under
``output.dir`` refers to (its space.yaml pins the cache it trained from). Pure Python."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import yaml

from gcsearch.space import SearchSpace


@dataclass(frozen=True)
class Cache:
    path: Path
    bytes: int
    runs: tuple[str, ...]  # run directories that train from it


def older(space: SearchSpace, current: str) -> list[Cache]:
    """The caches of ``space``'s folder other than the one keyed ``current`` (a test split's cache goes with the
    cache it was made for), oldest first."""
    base = Path(space.data.cache_dir or "")
    if not base.is_dir():
        return []
    source = str(Path(space.data.root or "") / "train")
    users = _runs_by_key(Path(space.output_dir))
    found = []
    for manifest in sorted(base.glob("*/manifest.json"), key=lambda p: p.stat().st_mtime):
        key = manifest.parent.name
        if "-test-" in key or key == current:
            continue
        try:
            if json.loads(manifest.read_text()).get("source") != source:
                continue
        except (OSError, ValueError):
            continue
        size = sum(f.stat().st_size for d in (manifest.parent, *base.glob(f"{key}-test-*")) for f in d.iterdir())
        found.append(Cache(manifest.parent, size, tuple(users.get(key, ()))))
    return found


def _runs_by_key(output: Path) -> dict[str, list[str]]:
    """cache key -> run directories (under ``output``) whose space.yaml pins it."""
    users: dict[str, list[str]] = {}
    for pinned in output.glob("*/space.yaml"):
        try:
            key = (yaml.safe_load(pinned.read_text()) or {}).get("data", {}).get("cache_key")
        except (OSError, yaml.YAMLError, AttributeError):
            continue
        if key:
            users.setdefault(key, []).append(pinned.parent.name)
    return users


def describe(caches: list[Cache], space_path: str) -> str:
    if not caches:
        return ""
    listed = "; ".join(f"{c.path.name} ({c.bytes / 2**20:,.1f} MiB{', used by ' + ', '.join(c.runs) if c.runs else ''})"
                       for c in caches)  # fmt: skip
    free = sum(c.bytes for c in caches if not c.runs) / 2**20
    return (f"older caches of this folder: {listed}; `gcsearch prepare --prune {space_path}` removes those no run "
            f"uses ({free:,.1f} MiB)")  # fmt: skip


def prune(caches: list[Cache]) -> list[Cache]:
    """Remove the caches no run uses (with their test splits'); returns them."""
    gone = [c for c in caches if not c.runs]
    for c in gone:
        for d in (c.path, *c.path.parent.glob(f"{c.path.name}-test-*")):
            shutil.rmtree(d, ignore_errors=True)
    return gone
