"""ArchConfig: one point of the GC search space (where GC blocks go and what they are).

Pure Python (no torch, no ray), shared by the space file, the trainer, the export and the model
builder. An empty ``stages`` is the baseline without GC; the other fields are then None.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from fractions import Fraction
from typing import Any

from gcsearch.errors import ConfigError

# The searched axes, in the one order every table, file and model uses (ArchConfig's field order).
AXES = ("stages", "pool", "fusion", "ratio", "norm", "position", "gate_init")
POOLS = ("att", "avg")
FUSIONS = ("add", "mul", "both")
NORMS = ("layernorm", "none")
POSITIONS = ("after_1x1", "after_3x3", "after_add")
# How a mul or both block's gate starts: "half", sigmoid of a zero-initialised conv (the official code: it scales
# the features by 0.5 at first), or "identity", 2 * sigmoid of it (exactly 1 at first, a positive scale in (0, 2)).
GATE_INITS = ("half", "identity")
GATED = ("mul", "both")  # the fusions with a gate; add has none, so its gate_init is None
STAGES = ("c2", "c3", "c4", "c5")
BACKBONES = ("proxy_resnet", "resnet18", "resnet34", "resnet50", "resnet101")
# The GC positions each kind of residual block offers: a basic block has no 3x3 conv between two 1x1 convs.
BLOCK_POSITIONS = {"basic": ("after_1x1", "after_add"), "bottleneck": POSITIONS}
TORCHVISION_BLOCKS = {"resnet18": "basic", "resnet34": "basic", "resnet50": "bottleneck", "resnet101": "bottleneck"}


def block_kind(backbone: str, block: str = "basic") -> str:
    """The kind of residual block a backbone is made of (``block`` matters for proxy_resnet only)."""
    return block if backbone == "proxy_resnet" else TORCHVISION_BLOCKS[backbone]


def _at(where: str | None, key: str) -> str | None:
    return f"{where}: {key}" if where else None


def parse_ratio(value: object, key: str = "ratio", where: str | None = None) -> float:
    """A bottleneck ratio from a number or a "1/16" string; must lie in (0, 1]."""
    try:
        if isinstance(value, bool):
            raise TypeError
        if isinstance(value, str):
            ratio = float(Fraction(value.strip()))
        elif isinstance(value, (int, float)):
            ratio = float(value)
        else:
            raise TypeError
    except (TypeError, ValueError, ZeroDivisionError):
        raise ConfigError(key, 'must be a number or a fraction like "1/16"', value, where) from None
    if not 0 < ratio <= 1:
        raise ConfigError(key, "must be in (0, 1]", value, where)
    return ratio


def check_choice(key: str, value: object, allowed: tuple[str, ...], where: str | None = None) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise ConfigError(key, f"must be one of {list(allowed)}", value, where)
    return value


def parse_stages(value: object, key: str = "stages", where: str | None = None) -> tuple[str, ...]:
    """A stage set from a list (["c3", "c4"]) or a comma string ("c3,c4"); sorted, no repeats."""
    if isinstance(value, str):
        value = [s for s in value.replace(" ", "").split(",") if s]
    if not isinstance(value, (list, tuple)):
        raise ConfigError(key, f"must be a list of stages from {list(STAGES)}", value, where)
    for stage in value:
        if stage not in STAGES:
            raise ConfigError(key, f"must hold stages from {list(STAGES)}", stage, where)
    return tuple(sorted(set(value), key=STAGES.index))


def ratio_text(ratio: float) -> str:
    """1/16 for 0.0625: how people write bottleneck ratios."""
    frac = Fraction(ratio).limit_denominator(1024)
    return f"{frac.numerator}/{frac.denominator}" if float(frac) == ratio else f"{ratio:g}"


def stage_label(stages: tuple[str, ...]) -> str:
    """ "c3,c4,c5", or "none" for the baseline: the one spelling of a stage set (files, tables, Optuna)."""
    return ",".join(stages) if stages else "none"


@dataclass(frozen=True)
class ArchConfig:
    stages: tuple[str, ...] = ()
    pool: str | None = None
    fusion: str | None = None
    ratio: float | None = None
    norm: str | None = None
    position: str | None = None
    gate_init: str | None = None  # mul and both only: "half" unless named (what every stored configuration was)

    def __post_init__(self) -> None:
        # One spelling per configuration: add has no gate to start, and a gate not named starts as the official
        # code's did, so stored configurations from before the axis existed keep their meaning.
        if self.fusion in GATED and self.gate_init is None:
            object.__setattr__(self, "gate_init", "half")
        elif self.fusion not in GATED and self.gate_init is not None:
            object.__setattr__(self, "gate_init", None)

    @property
    def is_baseline(self) -> bool:
        return not self.stages

    @classmethod
    def from_dict(cls, data: object, where: str | None = None) -> ArchConfig:
        """Validate a plain mapping; keys left out take the paper's defaults."""
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise ConfigError("gc", "must be a mapping of GC settings", data, where)
        unknown = sorted(set(data) - set(AXES))
        if unknown:
            raise ConfigError(unknown[0], f"is not a GC setting; expected one of {list(AXES)}", None, where)
        merged = {**PAPER_DEFAULT.to_dict(), **data}
        stages = parse_stages(merged["stages"], "stages", _at(where, "stages"))
        if not stages:
            return cls()
        return cls(
            stages=stages,
            pool=check_choice("pool", merged["pool"], POOLS, _at(where, "pool")),
            fusion=check_choice("fusion", merged["fusion"], FUSIONS, _at(where, "fusion")),
            ratio=parse_ratio(merged["ratio"], "ratio", _at(where, "ratio")),
            norm=check_choice("norm", merged["norm"], NORMS, _at(where, "norm")),
            position=check_choice("position", merged["position"], POSITIONS, _at(where, "position")),
            gate_init=None if merged.get("gate_init") is None else check_choice(
                "gate_init", merged["gate_init"], GATE_INITS, _at(where, "gate_init")),
        )  # fmt: skip

    @staticmethod
    def pairs(texts: Sequence[str], flag: str = "--gc") -> dict[str, object]:
        """Command-line pairs ``stages=c3,c4,c5 ratio=1/16`` as the mapping ``from_dict`` reads; ``none`` alone
        is the baseline."""
        if list(texts) == ["none"]:
            return {"stages": []}
        out: dict[str, object] = {}
        for pair in texts:
            key, sep, value = pair.partition("=")
            if not sep:
                raise ConfigError(flag, "takes key=value pairs such as stages=c3,c4,c5", pair)
            out[key] = value
        return out

    def to_dict(self) -> dict[str, Any]:
        """Plain, YAML-friendly: the inverse of ``from_dict`` (gate_init only where there is a gate)."""
        if self.is_baseline:
            return {"stages": []}
        out = asdict(self)
        out["stages"] = list(self.stages)
        if out["gate_init"] is None:
            del out["gate_init"]
        return out

    def value_text(self, axis: str) -> str:
        """This configuration's value on one axis as files and tables write it: "c3,c4,c5", "1/16", "att"."""
        if axis == "stages":
            return stage_label(self.stages)
        if axis == "ratio":
            return ratio_text(self.ratio) if self.ratio else ""
        value = getattr(self, axis)
        return "" if value is None else str(value)

    def label(self) -> str:
        """Short human name, e.g. 'c3,c4,c5 att+add r=1/16 ln after_1x1'."""
        if self.is_baseline:
            return "baseline (no GC)"
        assert self.ratio is not None
        norm = "ln" if self.norm == "layernorm" else "no-ln"
        gate = " identity-gate" if self.gate_init == "identity" else ""
        return (f"{stage_label(self.stages)} {self.pool}+{self.fusion} r={ratio_text(self.ratio)} {norm} "
                f"{self.position}{gate}")  # fmt: skip

    def within(self, stages: tuple[str, ...]) -> ArchConfig:
        """This configuration restricted to the stages a backbone has (the baseline when none is left)."""
        kept = tuple(s for s in self.stages if s in stages)
        return dataclasses.replace(self, stages=kept) if kept else ArchConfig()


# The official code's configuration (paper_reference.yaml: default_config): c3-c5, attention pooling, add
# fusion, ratio 1/16, LayerNorm, after the block's last 1x1 conv.
PAPER_DEFAULT = ArchConfig(("c3", "c4", "c5"), "att", "add", 1 / 16, "layernorm", "after_1x1")


def paper_default_in(choices: Mapping[str, Sequence[Any]], stages: Sequence[str] = STAGES) -> ArchConfig | None:
    """The paper default as a point of ``choices`` (axis -> the values offered, stage sets without the empty
    one): its stages restricted to ``stages`` (what a backbone has), each axis that does not offer the paper's
    value set to its first choice; None when no stage set with GC blocks is offered."""
    if not choices["stages"]:
        return None
    paper = PAPER_DEFAULT.within(tuple(stages))
    values = {a: getattr(paper, a) if getattr(paper, a) in choices[a] else choices[a][0] for a in AXES[:-1]}
    if values["fusion"] in GATED:  # a space without add: the gate starts as the space's first choice
        values["gate_init"] = choices.get("gate_init", GATE_INITS)[0]
    return ArchConfig(**values)
