"""best.yaml out and back in. Pure Python: no torch, no ray (weights are models.py's business).

An export holds the architecture in the space file's vocabulary (``arch`` plus the ``backbone``, ``data``
and ``train`` sections, so ``gcsearch train best.yaml`` retrains it), what inference needs (``preprocess``: class
names, input size, the resize rule, the normalisation; ``gcsearch predict`` and ``gcsearch.preprocessing`` read it),
the trial's metrics, and where it came from (run, trial, pick rule, gcsearch version, cost convention).
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gcsearch import pareto, stats
from gcsearch.arch import ArchConfig
from gcsearch.errors import ConfigError
from gcsearch.files import write_atomic
from gcsearch.pareto import TrialRecord
from gcsearch.preprocess import Preprocess
from gcsearch.search import attrs
from gcsearch.space import SearchSpace, space_to_dict
from gcsearch.spacefile import parse_space, read_yaml

COST_CONVENTION = "MACs of conv, linear and matmul (GC attention pooling included); params = sum(numel)"
KEYS = ("arch", "backbone", "data", "train", "preprocess", "metrics", "source", "weights")


@dataclass(frozen=True)
class Export:
    path: str
    arch: ArchConfig
    space: SearchSpace  # backbone, data and train as in the run (space axes unused)
    metrics: dict[str, Any]
    source: dict[str, Any]
    weights: str | None = None  # file name next to the export
    preprocess: Preprocess | None = None  # None: an export made before exports carried it

    def weights_path(self) -> Path | None:
        return Path(self.path).parent / self.weights if self.weights else None

    def required_preprocess(self) -> Preprocess:
        """What inference needs; an export made before exports carried it is refused in one line."""
        if self.preprocess is None:
            raise ConfigError("preprocess", "must be in the export: export it again with this version of gcsearch "
                              "(its trials record their preprocessing), or retrain it with gcsearch train --out",
                              where=self.path)  # fmt: skip
        return self.preprocess


def export_dict(
    space: SearchSpace,
    arch: ArchConfig,
    metrics: dict[str, Any],
    source: dict[str, Any],
    weights: str | None,
    preprocess: Preprocess | None,
) -> dict[str, Any]:
    resolved = space_to_dict(space)
    out: dict[str, Any] = {"arch": arch.to_dict(), "backbone": resolved["backbone"], "data": resolved["data"],
                           "train": resolved["train"]}  # fmt: skip
    if preprocess is not None:
        out["preprocess"] = preprocess.to_dict()
    out["metrics"] = metrics
    out["source"] = {**source, "gcsearch_version": importlib.metadata.version("gcsearch"),
                     "cost_convention": COST_CONVENTION}  # fmt: skip
    if weights:
        out["weights"] = weights
    return out


def trial_export(space: SearchSpace, record: TrialRecord, run: str, pick: str, weights: str | None) -> dict[str, Any]:
    """A search trial's export: its metrics as the run measured them, and the preprocessing its data had."""
    metrics = {"accuracy": record.accuracy, "macs": record.macs, "params": record.params,
               "latency_ms": record.latency, "epochs": record.epochs, "state": record.state}  # fmt: skip
    facts = record.extra.get(attrs.PREPROCESS)
    pre = Preprocess.from_dict(json.loads(facts), f"{run}: trial {record.number}") if facts else None
    return export_dict(space, record.arch, metrics, {"run": run, "trial": record.number, "pick": pick}, weights, pre)


def write_export(path: Path, data: dict[str, Any]) -> None:
    made = data["source"]
    what = f"trial {made['trial']} ({made['run']})" if "trial" in made else f"a training of {made.get('trained', '')}"
    write_atomic(path, f"# gcsearch export of {what}\n" + yaml.safe_dump(data, sort_keys=False))


def export_run(
    run: str | Path,
    out: Path,
    pick: str = "knee",
    *,
    trial: int | None = None,
    max_macs: float | None = None,
    max_params: float | None = None,
    tolerance: float = 0.005,
    weights: bool = False,
    force: bool = False,
) -> tuple[Choice, str | None]:
    """`gcsearch export`: the chosen trial of a run (``choose``) written to ``out``, with its trained weights
    beside it (``<out>.pt``) when ``weights``; returns the choice and the weights file's name."""
    from gcsearch.analysis import confirm
    from gcsearch.search import rundir

    if out.exists() and not force:
        raise ConfigError("--out", "names a file that exists; pass --force to overwrite it", str(out))
    run_dir, space, study = rundir.open_run(run)
    choice = choose(rundir.records(study), pick, trial=trial, max_macs=max_macs, max_params=max_params,
                    tolerance=tolerance, confirmed=confirm.load(run_dir))  # fmt: skip
    saved = None
    if weights:
        from gcsearch.nn.weights import save_weights  # torch, only when weights are asked for

        # A duplicate proposal was answered by an earlier trial, which holds the trained weights.
        source = int(choice.record.extra.get(attrs.DUPLICATE_OF, choice.record.number))
        ckpt = rundir.checkpoint(run_dir, source)
        if not ckpt.is_file():
            raise ConfigError("--weights", "needs the trial's checkpoint, which this run does not hold", str(ckpt))
        saved = out.with_suffix(".pt").name
        save_weights(ckpt, out.with_suffix(".pt"))
    write_export(out, trial_export(space, choice.record, str(run_dir), choice.pick, saved))
    return choice, saved


def load_export(path: str | Path) -> Export:
    """Read and validate an export; an edited file with a bad value gets a one-line error."""
    return _parse_export(read_yaml(path, "export file"), str(path))


def _parse_export(data: Any, path: str) -> Export:
    if not is_export(data):
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
    pre = Preprocess.from_dict(data["preprocess"], f"{path}: preprocess") if "preprocess" in data else None
    return Export(path, arch, space, metrics, source, weights, pre)


def is_export(data: object) -> bool:
    """An export, not a space file: a mapping with an ``arch`` section."""
    return isinstance(data, dict) and "arch" in data


def load_trainable(path: str | Path) -> tuple[ArchConfig | None, SearchSpace]:
    """What ``gcsearch train`` trains: an export's (architecture, settings), or a space file's settings with no
    architecture (the caller picks one), told apart by the export's ``arch`` section."""
    data = read_yaml(path, "space file or export")
    if is_export(data):
        exp = _parse_export(data, str(path))
        return exp.arch, exp.space
    return None, parse_space(data, str(path))


@dataclass(frozen=True)
class Choice:
    record: TrialRecord
    pick: str  # how it was chosen, as the export records it
    note: str = ""  # a line for the user, e.g. which confirmed candidates it is tied with

    def describe(self, out: Path, weights: str | None = None) -> str:
        """What was exported, for the user."""
        r = self.record
        acc = f"{r.accuracy:.4f}" if r.accuracy is not None else "-"
        beside = f" (+ {weights})" if weights else ""
        done = f"exported trial {r.number} ({r.state}, accuracy {acc}, {r.macs:,d} MACs): {r.arch.label()} -> {out}"
        return "\n".join(filter(None, [self.note, done + beside]))


def choose(
    records: Sequence[TrialRecord],
    rule: str,
    *,
    trial: int | None = None,
    max_macs: float | None = None,
    max_params: float | None = None,
    tolerance: float = 0.005,
    confirmed: Any = None,
) -> Choice:
    """The trial to export: ``trial`` by number, or by a pick rule among the trained COMPLETE trials within
    the budgets (every rule honours them); with a confirmation (``gcsearch confirm``), among its candidates
    by their mean accuracy over seeds."""
    if trial is not None:
        chosen = next((r for r in records if r.number == trial), None)
        if chosen is None:
            raise ConfigError("--trial", f"must be a trial number of this run (0..{len(records) - 1})", trial)
        return Choice(chosen, f"trial {trial}")
    trained = pareto.trained(records)
    if not any(r.state == "COMPLETE" for r in trained):
        raise ConfigError("run", "has no COMPLETE trial yet")
    if confirmed is not None:
        means = {c.number: c.mean for c in confirmed.candidates}
        trained = [dataclasses.replace(r, accuracy=means[r.number]) for r in trained if r.number in means]
    within = [r for r in trained if (max_macs is None or r.macs <= max_macs)
              and (max_params is None or r.params <= max_params)]  # fmt: skip
    if rule == "max-accuracy":
        picked = pareto.pick_max_accuracy(within)
    elif rule == "min-macs":
        picked = pareto.pick_min_macs(within, tolerance)
    else:
        picked = pareto.pick_knee(within)
    if picked is None:
        budget = " and ".join(f"{flag} {v:g}" for flag, v in (("--max-macs", max_macs), ("--max-params", max_params))
                              if v is not None)  # fmt: skip
        raise ConfigError("--pick", f"selects no COMPLETE trial within {budget}", rule)
    if confirmed is None:
        return Choice(picked, rule)
    seeds = len(confirmed.by_number(picked.number).accuracies)
    tied, unresolved = confirmed.tied_with(picked.number), confirmed.unresolved_with(picked.number)
    words = [f"equivalent within {stats.MARGIN} to trials {', '.join(map(str, tied))}" if tied else "",
             f"not told apart from trials {', '.join(map(str, unresolved))} (more seeds would say)" if unresolved
             else ""]  # fmt: skip
    note = f"picked among {len(confirmed.candidates)} confirmed candidates by mean accuracy over {seeds} seeds; " + (
        "; ".join(w for w in words if w) or "distinguishable from every other"
    )
    return Choice(picked, f"{rule} among confirmed points ({seeds} seeds)", note)
