"""The search space as typed values: the searched axes and the settings of a space file, Optuna sampling, the
grid, the reference pair every search and recording trains first, and the recipe hash. No YAML here
(``spacefile.py`` reads and checks a file), no torch, no ray.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from gcsearch.arch import (
    AXES,
    FUSIONS,
    GATED,
    NORMS,
    PAPER_DEFAULT,
    POOLS,
    ArchConfig,
    paper_default_in,
    ratio_text,
    stage_label,
)
from gcsearch.settings import BackboneConfig, DataConfig, SearchConfig, TrainConfig


@dataclass(frozen=True)
class Axes:
    """The searched axes; ``stages`` holds stage sets, () being the baseline without GC."""

    pool: tuple[str, ...] = POOLS
    fusion: tuple[str, ...] = FUSIONS
    ratio: tuple[float, ...] = (1 / 4, 1 / 8, 1 / 16)
    norm: tuple[str, ...] = NORMS
    stages: tuple[tuple[str, ...], ...] = (PAPER_DEFAULT.stages, ())
    position: tuple[str, ...] = ("after_1x1",)
    # How a mul or both gate starts: half by default, as the official code (and every configuration stored before
    # the axis); identity, beyond the official code, is a space file's choice (gc.yaml searches both).
    gate_init: tuple[str, ...] = ("half",)


@dataclass(frozen=True)
class SearchSpace:
    path: str
    axes: Axes
    backbone: BackboneConfig
    data: DataConfig
    train: TrainConfig
    search: SearchConfig
    output_dir: str = "runs"

    # ------------------------------------------------------------------ sampling

    def suggest(self, trial: TrialLike) -> ArchConfig:
        """Define-by-run sampling on an Optuna trial of the GC configurations; fixed axes are not
        suggested. The baseline (no stages) is no category here: it is one configuration, trained once as
        a reference trial, and a sampler that could draw it would keep returning to the cheapest point."""
        sets = [s for s in self.axes.stages if s]
        if not sets:
            return ArchConfig()
        labels = [stage_label(s) for s in sets]
        stages = sets[labels.index(_pick(trial, "stages", labels))]
        ratios = [ratio_text(r) for r in self.axes.ratio]
        pool = _pick(trial, "pool", list(self.axes.pool))
        fusion = _pick(trial, "fusion", list(self.axes.fusion))
        return ArchConfig(
            stages=stages,
            pool=pool,
            fusion=fusion,
            ratio=self.axes.ratio[ratios.index(_pick(trial, "ratio", ratios))],
            norm=_pick(trial, "norm", list(self.axes.norm)),
            position=_pick(trial, "position", list(self.axes.position)),
            # Conditional: only a gated fusion has a gate to start (define-by-run; TPE's group=True models it).
            gate_init=_pick(trial, "gate_init", list(self.axes.gate_init)) if fusion in GATED else None,
        )

    def params_of(self, arch: ArchConfig) -> dict[str, Any]:
        """The Optuna parameters ``suggest`` draws for ``arch`` (for FixedTrial and enqueue_trial)."""
        if arch.is_baseline:
            return {}  # drawn by no sampler (see suggest)
        searched = {"stages": [s for s in self.axes.stages if s], **{a: getattr(self.axes, a) for a in AXES[1:]}}
        drawn = [a for a in AXES if a != "gate_init" or arch.fusion in GATED]
        return {axis: arch.value_text(axis) for axis in drawn if len(searched[axis]) > 1}

    def grid(self) -> list[ArchConfig]:
        """Every distinct architecture of the space, the baseline once."""
        seen: dict[ArchConfig, None] = {}
        for stages in self.axes.stages:
            if not stages:
                seen.setdefault(ArchConfig(), None)
                continue
            a = self.axes
            for pool, fusion, ratio, norm, position in itertools.product(a.pool, a.fusion, a.ratio, a.norm, a.position):
                for gate in a.gate_init if fusion in GATED else (None,):
                    seen.setdefault(ArchConfig(stages, pool, fusion, ratio, norm, position, gate), None)
        return list(seen)

    # ------------------------------------------------------------------ the reference pair

    def reference(self) -> ArchConfig | None:
        """The paper default as a point of this space: its stages restricted to the backbone's, and each axis
        the space does not offer at the paper's value set to the space's first choice of that axis (so it is
        always a configuration a search could train); None when the space offers no stage set with GC."""
        choices = {"stages": [s for s in self.axes.stages if s], **{a: list(getattr(self.axes, a)) for a in AXES[1:]}}
        return paper_default_in(choices, self.backbone.stages)

    def references(self) -> tuple[ArchConfig, ...]:
        """What users compare a search against, trained first by every search and held by every recording:
        the baseline without GC (when the space holds it), then the paper default as a point of the space."""
        baseline = (ArchConfig(),) if () in self.axes.stages else ()
        reference = self.reference()
        return baseline + ((reference,) if reference is not None else ())

    # ------------------------------------------------------------------ the recipe

    def recipe(self) -> str:
        """Hash of the recipe (``recipe_of``): what must match for two trainings to be comparable."""
        blob = json.dumps(recipe_of(self), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    def with_search(self, **changes: Any) -> SearchSpace:
        """This space with some settings of its search section changed."""
        return dataclasses.replace(self, search=dataclasses.replace(self.search, **changes))


class TrialLike(Protocol):
    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any: ...


def _pick(trial: TrialLike, name: str, choices: list[Any]) -> Any:
    return choices[0] if len(choices) == 1 else trial.suggest_categorical(name, choices)


# The recipe: the backbone, data and train sections, but not where or how fast a trial runs (device, threads), a
# weights file by its path (its hash is in it), or the image cache by its place (its key, its content, is in it).
# One definition for the hash (``SearchSpace.recipe``) and the resume check (``rundir.check_same_recipe``).
RECIPE_SECTIONS = ("backbone", "data", "train")
NOT_RECIPE = {"backbone": ("weights",), "data": ("cache_dir",), "train": ("device", "threads")}


def recipe_of(space: SearchSpace) -> dict[str, dict[str, Any]]:
    """The recipe's sections as the space file writes them."""
    d = space_to_dict(space)
    return {sec: {k: v for k, v in d[sec].items() if k not in NOT_RECIPE[sec]} for sec in RECIPE_SECTIONS}


def space_to_dict(space: SearchSpace) -> dict[str, Any]:
    """The fully resolved file (defaults filled in), for the run directory; loads back identically."""
    b, d, t, s = space.backbone, space.data, space.train, space.search
    backbone: dict[str, Any] = {
        "name": b.name,
        "input_size": list(b.input_size),
        "num_classes": b.num_classes,
    }
    if b.name == "proxy_resnet":
        backbone.update(width=b.width, depth=list(b.depth), block=b.block)
    # Written only when set, so the recipe hash of a from-scratch space is what it was before fine-tuning existed.
    if b.weights:
        backbone.update(weights=b.weights, weights_sha256=b.weights_sha256)
    if b.pretrain:
        backbone["pretrain"] = dataclasses.asdict(b.pretrain)
    augment: dict[str, Any] = {"flip": d.flip, "crop_padding": d.crop_padding}
    if d.resized_crop:
        augment["resized_crop"] = d.resized_crop
    data: dict[str, Any] = {"dataset": d.dataset, "root": d.root, "train_subset": d.train_subset,
                            "val_size": d.val_size, "augment": augment, "download": d.download,
                            "synthetic_size": d.synthetic_size}  # fmt: skip
    # The image folder's settings only where they mean something, so other spaces keep their recipe hash.
    if d.dataset == "farcue":
        data["farcue"] = {**dataclasses.asdict(d.farcue), "shapes": list(d.farcue.shapes)}
        if d.farcue.contrast == 1.0:  # written only when graded, so the earlier recordings keep their recipe hash
            del data["farcue"]["contrast"]
    if d.dataset == "imagefolder":
        data.update(cache_dir=d.cache_dir, skip_bad=d.skip_bad)
        if d.cache_key:
            data["cache_key"] = d.cache_key
    return {
        "space": {
            "pool": list(space.axes.pool),
            "fusion": list(space.axes.fusion),
            "ratio": [ratio_text(r) for r in space.axes.ratio],
            "norm": list(space.axes.norm),
            "stages": [list(st) for st in space.axes.stages],
            "position": list(space.axes.position),
            "gate_init": list(space.axes.gate_init),
        },
        "backbone": backbone,
        "data": data,
        "train": dict(t.__dict__),
        "search": {
            "objectives": list(s.objectives),
            "trials": s.trials,
            "sampler": s.sampler,
            "pruner": s.pruner,
            "pruner_settings": dict(s.pruner_settings),
            "resources": {"cpu": s.cpu, "gpu": s.gpu},
            "concurrency": s.concurrency,
            "max_macs": s.max_macs,
            "seed": s.seed,
            "time_budget_s": s.time_budget_s,
            "retries": s.retries,
            "reference_seeds": s.reference_seeds,
            "latency": dataclasses.asdict(s.latency),
        },
        "output": {"dir": space.output_dir},
    }
