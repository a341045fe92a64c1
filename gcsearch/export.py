"""best.yaml out and back in. Pure Python: no torch, no ray (weights are models.py's business).

An export holds the architecture in the space file's vocabulary (``arch`` plus the ``backbone``, ``data``
and ``train`` sections, so ``gcsearch train best.yaml`` retrains it), the trial's metrics, and where it
came from (run, trial, pick rule, gcsearch version, cost convention).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gcsearch import __version__
from gcsearch.arch import ArchConfig
from gcsearch.errors import ConfigError
from gcsearch.files import write_atomic
from gcsearch.pareto import TrialRecord
from gcsearch.space import SearchSpace, parse_space, space_to_dict

COST_CONVENTION = "MACs of conv, linear and matmul (GC attention pooling included); params = sum(numel)"
KEYS = ("arch", "backbone", "data", "train", "metrics", "source", "weights")


@dataclass(frozen=True)
class Export:
    path: str
    arch: ArchConfig
    space: SearchSpace  # backbone, data and train as in the run (space axes unused)
    metrics: dict[str, Any]
    source: dict[str, Any]
    weights: str | None = None  # file name next to the export

    def weights_path(self) -> Path | None:
        return Path(self.path).parent / self.weights if self.weights else None


def export_dict(space: SearchSpace, record: TrialRecord, run: str, pick: str, weights: str | None) -> dict[str, Any]:
    resolved = space_to_dict(space)
    out: dict[str, Any] = {
        "arch": record.arch.to_dict(),
        "backbone": resolved["backbone"],
        "data": resolved["data"],
        "train": resolved["train"],
        "metrics": {
            "accuracy": record.accuracy,
            "macs": record.macs,
            "params": record.params,
            "epochs": record.epochs,
            "state": record.state,
        },
        "source": {
            "run": run,
            "trial": record.number,
            "pick": pick,
            "gcsearch_version": __version__,
            "cost_convention": COST_CONVENTION,
        },
    }
    if weights:
        out["weights"] = weights
    return out


def write_export(path: Path, data: dict[str, Any], force: bool) -> None:
    if path.exists() and not force:
        raise ConfigError("--out", "names a file that exists; pass --force to overwrite it", str(path))
    text = f"# gcsearch export of trial {data['source']['trial']} ({data['source']['run']})\n"
    write_atomic(path, text + yaml.safe_dump(data, sort_keys=False))


def load_export(path: str | Path) -> Export:
    """Read and validate an export; an edited file with a bad value gets a one-line error."""
    path = str(path)
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("path", "must name an existing export file", path) from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError("<yaml>", f"must be valid YAML{line}", where=path) from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError("path", f"must be a readable export file ({type(err).__name__})", path) from None
    if not isinstance(data, dict) or "arch" not in data:
        raise ConfigError("<top level>", "must be a mapping with an `arch` section (a gcsearch export)", where=path)
    for key in data:
        if key not in KEYS:
            raise ConfigError(str(key), f"is not a key of an export; expected one of {list(KEYS)}", where=path)
    space = parse_space({k: data.get(k) for k in ("backbone", "data", "train")}, path)
    arch = ArchConfig.from_dict(data["arch"], where=f"{path}: arch")
    for stage in arch.stages:
        if stage not in space.backbone.stages:
            rule = f"must hold stages of backbone {space.backbone.name}: {list(space.backbone.stages)}"
            raise ConfigError("stages", rule, stage, f"{path}: arch.stages")
    if arch.position and arch.position not in space.backbone.positions:
        raise ConfigError(
            "position", f"must be one of {list(space.backbone.positions)}", arch.position, f"{path}: arch.position"
        )
    metrics, source, weights = data.get("metrics") or {}, data.get("source") or {}, data.get("weights")
    if not isinstance(metrics, dict) or not isinstance(source, dict):
        raise ConfigError("metrics", "must be a mapping", where=path)
    if weights is not None and (not isinstance(weights, str) or "/" in weights or weights.startswith(".")):
        raise ConfigError("weights", "must be a file name next to the export", weights, f"{path}: weights")
    return Export(path, arch, space, metrics, source, weights)
