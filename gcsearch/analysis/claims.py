"""The paper's claims, pre-registered: what its ablation concluded (``../shared/paper_reference.yaml``'s
``ablation_conclusions``), written before any recording was looked at. The factorial tests them as marginal
contrasts over a space (``factorial.py``), the one-factor ablation around the paper default (``ablate.py``), the
planted-effects check plants them (``planted.py``). Pure Python.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Hypothesis:
    """The paper's claim that ``better`` beats ``worse`` on ``axis`` (``paper_reference.yaml``'s
    ``ablation_conclusions``; evidence: verified = read in the official code or README, secondary =
    third-party summaries of the paper's tables)."""

    axis: str
    better: str
    worse: str
    evidence: str

    @property
    def name(self) -> str:
        return f"{self.axis}: {self.better} > {self.worse}"


# GC itself against no GC: the family's last member, and the positive control (analysis/control.py).
CONTROL = Hypothesis("gc", "paper default", "baseline", "verified (COCO: 39.4 vs 37.2 box AP)")
# The pre-registered family, written before looking at any recording (the paper's ablation conclusions).
PAPER = (
    Hypothesis("pool", "att", "avg", "secondary"),
    Hypothesis("fusion", "add", "mul", "secondary"),
    Hypothesis("fusion", "add", "both", "secondary"),
    Hypothesis("norm", "layernorm", "none", "secondary"),
    Hypothesis("ratio", "1/4", "1/16", "verified (COCO: r4 39.9 box AP vs r16 39.4)"),
    Hypothesis("stages", "c3,c4,c5", "c4,c5", "secondary"),
    Hypothesis("stages", "c3,c4,c5", "c5", "secondary"),
    Hypothesis("stages", "c3,c4,c5", "c2,c3,c4,c5", "secondary"),
    CONTROL,
)


# The level of each axis the paper found best (the better side of its claims).
BEST = {h.axis: h.better for h in PAPER if h.axis != "gc"}
