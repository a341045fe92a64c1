"""The positive control every verdict about the paper rests on: the paper default against the baseline without
GC, paired by seed. Only where its 95% interval lies above zero has a recording shown that it can see a GC
effect; without that, "tied" or "A beats B" read from it says nothing about the architectures, so the reports
print the control first and, when it fails, no verdict (pure Python: no torch, no ray)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from gcsearch import stats


@dataclass(frozen=True)
class Control:
    """Paper default - baseline, paired by seed; ``interval`` is None without two common seeds."""

    interval: stats.Interval | None

    @property
    def holds(self) -> bool:
        return self.interval is not None and self.interval.low > 0

    def sentence(self) -> str:
        if self.interval is None:
            detail = "the recording lacks the paper default and the baseline at two or more common seeds"
        else:
            detail = f"paper default - baseline {self.interval.text()} (95%, paired t over {self.interval.n} seeds)"
        if self.holds:
            return f"Positive control: {detail}, so this recording can see a GC effect."
        return (
            f"No positive control: this proxy cannot show a GC effect ({detail}); no verdict about the paper follows."
        )


def control(default: Mapping[int, float] | None, baseline: Mapping[int, float] | None) -> Control:
    """The control from each configuration's score by seed."""
    diffs = stats.paired(default, baseline) if default and baseline else []
    return Control(stats.t_interval(diffs) if len(diffs) >= 2 else None)
