"""Space files: YAML -> ``SearchSpace``, validated once; the project's one YAML reader.

Every mistake raises ``ConfigError`` naming the file, the key path (``space.ratio[2]``), the rule and the value
given. File layout (README documents every key):

    space:    the searched axes: pool, fusion, ratio, norm, stages, position (one value = fixed)
    backbone: name, width, depth, block, input_size, num_classes, weights (or pretrain), weights_sha256
    data:     dataset, root, train_subset, val_size, augment, download, synthetic_size
    train:    epochs, batch_size, optimizer, lr, momentum, weight_decay, schedule, label_smoothing, ...
    search:   objectives, trials, sampler, pruner, pruner_settings, resources, concurrency, ...
    output:   dir
"""

from __future__ import annotations

import difflib
import itertools
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml

from gcsearch.arch import (
    AXES,
    BACKBONES,
    FUSIONS,
    GATE_INITS,
    NORMS,
    PAPER_DEFAULT,
    POOLS,
    POSITIONS,
    STAGES,
    check_choice,
    parse_ratio,
)
from gcsearch.errors import ConfigError
from gcsearch.objectives import OBJECTIVES
from gcsearch.settings import (
    DATASET_SHAPES,
    DATASETS,
    DEVICES,
    DTYPES,
    LATENCY_DEVICES,
    OPTIMIZERS,
    PRUNER_SETTINGS,
    PRUNERS,
    SAMPLERS,
    SCHEDULES,
    BackboneConfig,
    DataConfig,
    FarCueConfig,
    LatencyConfig,
    PretrainConfig,
    SearchConfig,
    TrainConfig,
)
from gcsearch.space import Axes, SearchSpace

SECTIONS = ("space", "backbone", "data", "train", "search", "output")


def read_yaml(path: str | Path, what: str = "space file") -> Any:
    """A YAML file's top level (``yaml.safe_load`` only); a missing, unreadable or malformed file is one
    ConfigError naming it (and the line and column of a syntax error)."""
    path = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("path", f"must name an existing {what}", path) from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError, OSError) as err:
        raise ConfigError("path", f"must be a readable UTF-8 YAML {what} ({type(err).__name__})", path) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown line"
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError("<yaml>", f"must be valid YAML: {problem} at {line}", where=path) from None


T = TypeVar("T")
_MISSING = object()


class _Section:
    """One mapping of the file: typed getters that raise ConfigError with the key path."""

    def __init__(self, path: str, name: str, data: object, known: Sequence[str]):
        self.path, self.name, self.known = path, name, tuple(known)
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ConfigError(name, "must be a mapping", data, path)
        self.data: dict[Any, Any] = data
        for key in data:
            if key not in self.known:
                raise _unknown_key(key, self.known, f"{path}: {self.where(str(key))}")

    def where(self, key: str) -> str:
        return f"{self.name}.{key}" if self.name else key

    def at(self, key: str) -> str:
        return f"{self.path}: {self.where(key)}"

    def get(self, key: str, default: Any, check: Callable[[Any, str, str], T]) -> T:
        value = self.data.get(key, _MISSING)
        if value is _MISSING:
            return default  # type: ignore[no-any-return]
        return check(value, key, self.at(key))


def _unknown_key(key: object, known: Sequence[str], where: str) -> ConfigError:
    close = difflib.get_close_matches(str(key), known, n=1)
    hint = f"; did you mean `{close[0]}`?" if close else f"; expected one of {list(known)}"
    return ConfigError(str(key), f"is not a known key{hint}", where=where)


def _int(minimum: int, allow_none: bool = False) -> Callable[[Any, str, str], Any]:
    def check(value: Any, key: str, where: str) -> int | None:
        if value is None and allow_none:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(key, "must be an integer", value, where)
        if value < minimum:
            raise ConfigError(key, f"must be >= {minimum}", value, where)
        return value

    return check


def _float(low: float, high: float | None = None, allow_none: bool = False, open_low: bool = False):
    def check(value: Any, key: str, where: str) -> float | None:
        if value is None and allow_none:
            return None
        if isinstance(value, str):
            try:
                value = float(value)  # YAML reads 5e-4 as a string
            except ValueError:
                raise ConfigError(key, "must be a number", value, where) from None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
            raise ConfigError(key, "must be a number", value, where)
        too_low = value <= low if open_low else value < low
        if too_low or (high is not None and value > high):
            lo = f"({low}" if open_low else f"[{low}"
            rule = f"must be in {lo}, {high}]" if high is not None else f"must be {'>' if open_low else '>='} {low}"
            raise ConfigError(key, rule, value, where)
        return float(value)

    return check


def _bool(value: Any, key: str, where: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(key, "must be true or false", value, where)
    return value


def _choice(allowed: Sequence[str]):
    def check(value: Any, key: str, where: str) -> str:
        return check_choice(key, value, tuple(allowed), where)

    return check


def _opt_str(value: Any, key: str, where: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ConfigError(key, "must be a path (a string)", value, where)
    return value


def _choices(section: _Section, key: str, check: Callable[[Any, str, str], T]) -> tuple[T, ...] | None:
    """A list of choices (a scalar means one fixed value); None when the key is absent."""
    value = section.data.get(key, _MISSING)
    if value is _MISSING:
        return None
    values = value if isinstance(value, list) else [value]
    if not values:
        raise ConfigError(key, "must list at least one choice", value, section.at(key))
    out = [check(v, key, f"{section.at(key)}[{i}]") for i, v in enumerate(values)]
    return tuple(dict.fromkeys(out))  # duplicates dropped, order kept


def _read_axes(section: _Section, backbone: BackboneConfig) -> Axes:
    def stage_set(value: Any, key: str, where: str) -> tuple[str, ...]:
        if value is None or value == "none":
            return ()
        if isinstance(value, str):
            value = [s.strip() for s in value.split(",") if s.strip()]
        if not isinstance(value, list):
            raise ConfigError(key, "must be a list of stage sets such as [[c3, c4, c5], []]", value, where)
        for i, stage in enumerate(value):
            if stage not in backbone.stages:
                rule = f"must hold stages of backbone {backbone.name}: {list(backbone.stages)}"
                raise ConfigError(key, rule, stage, f"{where}[{i}]")
        return tuple(s for s in STAGES if s in value)

    def ratio(value: Any, key: str, where: str) -> float:
        return parse_ratio(value, key, where)

    def position(value: Any, key: str, where: str) -> str:
        check_choice(key, value, POSITIONS, where)
        if value not in backbone.positions:
            rule = f"must be one of {list(backbone.positions)} for {backbone.name}'s {backbone.block} blocks"
            if backbone.name != "proxy_resnet":
                rule = f"must be one of {list(backbone.positions)} for {backbone.name}"
            raise ConfigError(key, rule, value, where)
        return str(value)

    raw_stages = section.data.get("stages", _MISSING)
    if isinstance(raw_stages, dict):
        stages = _per_stage(section, raw_stages, backbone)
    elif isinstance(raw_stages, list) and raw_stages and all(_plain_stage(v) for v in raw_stages):
        # [c3, c4, c5] is one stage set, not three single-stage sets.
        stages = (stage_set(raw_stages, "stages", section.at("stages")),)
    else:
        reference = PAPER_DEFAULT.within(backbone.stages).stages
        stages = _choices(section, "stages", stage_set) or (reference, ())
    defaults = Axes()
    return Axes(
        pool=_choices(section, "pool", _choice(POOLS)) or defaults.pool,
        fusion=_choices(section, "fusion", _choice(FUSIONS)) or defaults.fusion,
        ratio=_choices(section, "ratio", ratio) or defaults.ratio,
        norm=_choices(section, "norm", _choice(NORMS)) or defaults.norm,
        stages=stages,
        position=_choices(section, "position", position) or defaults.position,
        gate_init=_choices(section, "gate_init", _choice(GATE_INITS)) or defaults.gate_init,
    )


def _plain_stage(value: Any) -> bool:
    return isinstance(value, str) and "," not in value and value != "none"


def _per_stage(section: _Section, raw: dict[Any, Any], backbone: BackboneConfig) -> tuple[tuple[str, ...], ...]:
    """``stages: {c3: [on, off], c4: [on, off], c5: on}`` -> every combination of on/off per stage."""
    options: list[list[bool]] = []
    names: list[str] = []
    for stage, value in raw.items():
        where = f"{section.at('stages')}.{stage}"
        if stage not in backbone.stages:
            raise ConfigError(
                "stages",
                f"must name stages of backbone {backbone.name}: {list(backbone.stages)}",
                stage,
                where,
            )
        values = value if isinstance(value, list) else [value]
        if not values:
            raise ConfigError(str(stage), "must list at least one of true/false", value, where)
        options.append([_bool(v, str(stage), where) for v in values])
        names.append(str(stage))
    if not names:
        raise ConfigError("stages", "must name at least one stage", raw, section.at("stages"))
    sets = {tuple(s for s, on in zip(names, combo, strict=True) if on) for combo in itertools.product(*options)}
    return tuple(sorted((tuple(sorted(s, key=STAGES.index)) for s in sets), key=lambda s: (-len(s), s)))


def _read_backbone(path: str, raw: object, dataset: str) -> BackboneConfig:
    sec = _Section(
        path,
        "backbone",
        raw,
        ("name", "width", "depth", "block", "input_size", "num_classes", "weights", "weights_sha256", "pretrain"),
    )
    name = sec.get("name", "proxy_resnet", _choice(BACKBONES))

    def depth(value: Any, key: str, where: str) -> tuple[int, ...]:
        if not isinstance(value, list) or not 1 <= len(value) <= 4:
            raise ConfigError(key, "must list 1 to 4 block counts, for stages c2..c5", value, where)
        return tuple(_int(1)(v, key, f"{where}[{i}]") for i, v in enumerate(value))

    def input_size(value: Any, key: str, where: str) -> tuple[int, int, int]:
        if not isinstance(value, list) or len(value) != 3:
            raise ConfigError(key, "must be [channels, height, width]", value, where)
        c, h, w = (_int(1)(v, key, f"{where}[{i}]") for i, v in enumerate(value))
        return (c, h, w)

    (shape, classes) = DATASET_SHAPES[dataset]
    size = sec.get("input_size", shape, input_size)
    num_classes = sec.get("num_classes", classes, _int(2))
    if num_classes is None:
        raise ConfigError("num_classes", f"must be given for dataset {dataset}", where=sec.at("num_classes"))
    if name != "proxy_resnet":
        for key in ("width", "depth", "block"):
            if key in sec.data:
                raise ConfigError(key, "applies to backbone proxy_resnet only", sec.data[key], sec.at(key))
    weights = sec.get("weights", None, _opt_str)
    pretrain = _read_pretrain(path, sec.data.get("pretrain"))
    # Both only in a run's space.yaml, where weights names the file pretrain made and its hash is pinned.
    if weights and pretrain and "weights_sha256" not in sec.data:
        raise ConfigError(
            "pretrain", "must be left out when backbone.weights names a file (one or the other)", None,
            sec.at("pretrain"),
        )  # fmt: skip
    return BackboneConfig(
        name=name,
        width=sec.get("width", 16, _int(1)),
        depth=sec.get("depth", (1, 1, 1, 1), depth),
        block=sec.get("block", "basic", _choice(("basic", "bottleneck"))),
        input_size=size,
        num_classes=num_classes,
        weights=weights,
        weights_sha256=sec.get("weights_sha256", None, _opt_str),
        pretrain=pretrain,
    )


def _read_pretrain(path: str, raw: object) -> PretrainConfig | None:
    if raw is None:
        return None
    sec = _Section(path, "backbone.pretrain", raw, tuple(PretrainConfig.__dataclass_fields__))
    d = PretrainConfig()
    return PretrainConfig(
        epochs=sec.get("epochs", d.epochs, _int(1)),
        train_subset=sec.get("train_subset", None, _int(1, allow_none=True)),
        lr=sec.get("lr", None, _float(0, open_low=True, allow_none=True)),
        schedule=sec.get("schedule", None, _choice(SCHEDULES)) if sec.data.get("schedule") is not None else None,
        batch_size=sec.get("batch_size", None, _int(1, allow_none=True)),
        seed=sec.get("seed", d.seed, _int(0)),
    )


def _read_data(path: str, raw: object, output_dir: str) -> DataConfig:
    sec = _Section(
        path,
        "data",
        raw,
        ("dataset", "root", "train_subset", "val_size", "augment", "download", "synthetic_size", "cache_dir",
         "cache_key", "skip_bad", "farcue"),
    )  # fmt: skip
    aug = _Section(path, "data.augment", sec.data.get("augment"), ("flip", "crop_padding", "resized_crop"))
    d = DataConfig()
    dataset = sec.get("dataset", d.dataset, _choice(DATASETS))
    root = sec.get("root", None, _opt_str)
    cache_dir = sec.get("cache_dir", None, _opt_str)
    if dataset == "imagefolder" and not root:
        raise ConfigError("root", "must name the image folder (with train/ and optionally val/)", None,
                          f"{path}: data.root")  # fmt: skip
    return DataConfig(
        dataset=dataset,
        # Workers run in other directories (and on other nodes): paths are made absolute once, here.
        root=os.path.abspath(os.path.expanduser(root)) if root else None,
        train_subset=sec.get("train_subset", None, _int(1, allow_none=True)),
        val_size=sec.get("val_size", d.val_size, _int(1)),
        flip=aug.get("flip", d.flip, _bool),
        crop_padding=aug.get("crop_padding", d.crop_padding, _int(0)),
        resized_crop=aug.get("resized_crop", d.resized_crop, _float(0, 1)),
        download=sec.get("download", d.download, _bool),
        synthetic_size=sec.get("synthetic_size", d.synthetic_size, _int(16)),
        cache_dir=os.path.abspath(os.path.expanduser(cache_dir or os.path.join(output_dir, "cache"))),
        cache_key=sec.get("cache_key", None, _opt_str),
        skip_bad=sec.get("skip_bad", d.skip_bad, _bool),
        farcue=_read_farcue(path, sec.data.get("farcue")),
    )


def _read_farcue(path: str, raw: object) -> FarCueConfig:
    sec = _Section(path, "data.farcue", raw, tuple(FarCueConfig.__dataclass_fields__))
    d = FarCueConfig()

    def shapes(value: Any, key: str, where: str) -> tuple[str, ...]:
        if not isinstance(value, list) or len(value) < 2:
            raise ConfigError(key, "must list at least two cue shapes", value, where)
        return tuple(
            _choice(("square", "ring", "blank", "cross"))(v, key, f"{where}[{i}]") for i, v in enumerate(value)
        )

    cfg = FarCueConfig(
        canvas=sec.get("canvas", d.canvas, _int(8)),
        item_size=sec.get("item_size", d.item_size, _int(4)),
        cue=sec.get("cue", d.cue, _int(1)),
        min_distance=sec.get("min_distance", d.min_distance, _int(0)),
        shapes=sec.get("shapes", d.shapes, shapes),
        shift=sec.get("shift", d.shift, _int(1)),
        seed=sec.get("seed", d.seed, _int(0)),
        contrast=sec.get("contrast", d.contrast, _float(0, 1, open_low=True)),
    )
    if cfg.canvas < cfg.item_size + cfg.min_distance + cfg.cue:
        raise ConfigError("canvas", f"must hold the item, the gap and the cue ({cfg.item_size} + {cfg.min_distance} "
                          f"+ {cfg.cue} px)", cfg.canvas, sec.at("canvas"))  # fmt: skip
    return cfg


def _read_train(path: str, raw: object) -> TrainConfig:
    sec = _Section(path, "train", raw, tuple(TrainConfig.__dataclass_fields__))
    d = TrainConfig()
    return TrainConfig(
        epochs=sec.get("epochs", d.epochs, _int(1)),
        batch_size=sec.get("batch_size", d.batch_size, _int(1)),
        optimizer=sec.get("optimizer", d.optimizer, _choice(OPTIMIZERS)),
        lr=sec.get("lr", d.lr, _float(0, open_low=True)),
        momentum=sec.get("momentum", d.momentum, _float(0, 1)),
        weight_decay=sec.get("weight_decay", d.weight_decay, _float(0)),
        schedule=sec.get("schedule", d.schedule, _choice(SCHEDULES)),
        label_smoothing=sec.get("label_smoothing", d.label_smoothing, _float(0, 1)),
        seed=sec.get("seed", d.seed, _int(0)),
        device=sec.get("device", d.device, _choice(DEVICES)),
        threads=sec.get("threads", None, _int(1, allow_none=True)),
        ema=sec.get("ema", d.ema, _float(0, 0.9999)),
    )


def _read_search(path: str, raw: object) -> SearchConfig:
    known = (
        "objectives", "trials", "sampler", "pruner", "pruner_settings", "resources", "concurrency",
        "max_macs", "seed", "time_budget_s", "retries", "reference_seeds", "latency",
    )  # fmt: skip
    sec = _Section(path, "search", raw, known)
    d = SearchConfig()
    objectives = _choices(sec, "objectives", _choice(tuple(OBJECTIVES))) or d.objectives
    if "accuracy" not in objectives:
        raise ConfigError("objectives", "must include accuracy", list(objectives), sec.at("objectives"))
    pruner = sec.get("pruner", d.pruner, _choice(PRUNERS))
    raw_settings = sec.data.get("pruner_settings")
    if pruner == "none" and raw_settings:
        where = f"{path}: search.pruner_settings"
        raise ConfigError(
            "pruner_settings", "must be empty with pruner none (nothing would use them)", raw_settings, where
        )
    settings_sec = _Section(path, "search.pruner_settings", raw_settings, PRUNER_SETTINGS[pruner])
    settings: dict[str, float] = {}
    checks = {"reduction_factor": _int(2), "min_fidelity": _float(-1, 1)}  # the rest: integers >= 1
    for key in settings_sec.data:
        settings[key] = settings_sec.get(key, None, checks.get(key, _int(1)))
    res = _Section(path, "search.resources", sec.data.get("resources"), ("cpu", "gpu"))
    return SearchConfig(
        objectives=objectives,
        trials=sec.get("trials", d.trials, _int(1)),
        sampler=sec.get("sampler", d.sampler, _choice(SAMPLERS)),
        pruner=pruner,
        pruner_settings=settings,
        cpu=res.get("cpu", d.cpu, _float(0, open_low=True)),
        gpu=res.get("gpu", d.gpu, _float(0, 1)),
        concurrency=sec.get("concurrency", None, _int(1, allow_none=True)),
        max_macs=sec.get("max_macs", None, _float(0, allow_none=True, open_low=True)),
        seed=sec.get("seed", d.seed, _int(0)),
        time_budget_s=sec.get("time_budget_s", None, _float(0, allow_none=True, open_low=True)),
        retries=sec.get("retries", d.retries, _int(0)),
        reference_seeds=sec.get("reference_seeds", d.reference_seeds, _int(1)),
        latency=_read_latency(path, sec.data.get("latency")),
    )


def _read_latency(path: str, raw: object) -> LatencyConfig:
    sec = _Section(path, "search.latency", raw, tuple(LatencyConfig.__dataclass_fields__))
    d = LatencyConfig()
    return LatencyConfig(
        device=sec.get("device", d.device, _choice(LATENCY_DEVICES)),
        batch=sec.get("batch", d.batch, _int(1)),
        threads=sec.get("threads", d.threads, _int(1)),
        dtype=sec.get("dtype", d.dtype, _choice(DTYPES)),
        resolution=sec.get("resolution", None, _int(8, allow_none=True)),
        runs=sec.get("runs", d.runs, _int(1)),
        warmup_s=sec.get("warmup_s", d.warmup_s, _float(0)),
        max_spread=sec.get("max_spread", d.max_spread, _float(0, open_low=True)),
        attempts=sec.get("attempts", d.attempts, _int(1)),
    )


def parse_space(data: object, path: str = "<space>") -> SearchSpace:
    """Validate an already-parsed mapping (the YAML's top level)."""
    if data is None:
        raise ConfigError(
            "<top level>",
            "must be a mapping with sections " + ", ".join(SECTIONS) + ", but the file is empty",
            where=path,
        )
    if not isinstance(data, dict):
        raise ConfigError("<top level>", "must be a mapping with sections " + ", ".join(SECTIONS), data, path)
    for key in data:
        if key not in SECTIONS:
            raise _unknown_key(key, SECTIONS, f"{path}: {key}")
    output = _Section(path, "output", data.get("output"), ("dir",))
    output_dir = output.get("dir", "runs", _opt_str) or "runs"
    data_cfg = _read_data(path, data.get("data"), output_dir)
    backbone = _read_backbone(path, data.get("backbone"), data_cfg.dataset)
    space_sec = _Section(path, "space", data.get("space"), AXES)
    return SearchSpace(
        path=path,
        axes=_read_axes(space_sec, backbone),
        backbone=backbone,
        data=data_cfg,
        train=_read_train(path, data.get("train")),
        search=_read_search(path, data.get("search")),
        output_dir=output_dir,
    )


def load_space(path: str | Path) -> SearchSpace:
    """Read and validate a space file."""
    return parse_space(read_yaml(path, "space file"), str(path))
