"""ArchConfig: one point of the GC search space (where GC blocks go and what they are).

Pure Python (no torch, no ray), shared by the space file, the trainer, the export and the model
builder. An empty ``stages`` is the baseline without GC; the other fields are then None.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from fractions import Fraction
from typing import Any

from gcsearch.errors import ConfigError

POOLS = ("att", "avg")
FUSIONS = ("add", "mul", "both")
NORMS = ("layernorm", "none")
POSITIONS = ("after_1x1", "after_3x3", "after_add")
STAGES = ("c2", "c3", "c4", "c5")
BACKBONES = ("proxy_resnet", "resnet18", "resnet34", "resnet50", "resnet101")
BASIC_BACKBONES = ("resnet18", "resnet34")  # basic residual blocks: no 3x3 position between two 1x1 convs

PAPER_DEFAULT: dict[str, Any] = {
    "stages": ["c3", "c4", "c5"],
    "pool": "att",
    "fusion": "add",
    "ratio": 1 / 16,
    "norm": "layernorm",
    "position": "after_1x1",
}


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


@dataclass(frozen=True)
class ArchConfig:
    stages: tuple[str, ...] = ()
    pool: str | None = None
    fusion: str | None = None
    ratio: float | None = None
    norm: str | None = None
    position: str | None = None

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
        unknown = sorted(set(data) - set(PAPER_DEFAULT))
        if unknown:
            raise ConfigError(
                unknown[0],
                f"is not a GC setting; expected one of {list(PAPER_DEFAULT)}",
                None,
                where,
            )
        merged = {**PAPER_DEFAULT, **data}
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
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain, YAML-friendly: the inverse of ``from_dict``."""
        if self.is_baseline:
            return {"stages": []}
        out = asdict(self)
        out["stages"] = list(self.stages)
        return out

    def label(self) -> str:
        """Short human name, e.g. 'c3c4c5 att+add r=1/16 ln after_1x1'."""
        if self.is_baseline:
            return "baseline (no GC)"
        assert self.ratio is not None
        norm = "ln" if self.norm == "layernorm" else "no-ln"
        return f"{''.join(self.stages)} {self.pool}+{self.fusion} r={ratio_text(self.ratio)} {norm} {self.position}"
