"""One finished epoch of a training (``Epoch``) and how a training ended (``Outcome``): the seam between what
runs trials (the trainer, the Ray Tune adapter, the replay's clock) and what decides (the decider). Pure Python.

A trial is scored by its validation accuracy, or by the accuracy of the EMA of its weights when the recipe
keeps one (``train.ema``): ``Epoch.score`` (and ``score_of`` for recorded curves) is that rule's one home.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# What the decider keeps of every epoch in a trial's curve (attrs.CURVE): what `bench` writes to curves.csv.
CURVE_FIELDS = ("epoch", "accuracy", "loss", "train_loss", "seconds", "ema_accuracy", "ema_loss")


def score_of(accuracy: float, ema_accuracy: float | None) -> float:
    """What a search ranks a training by: the EMA weights' accuracy when recorded, else the accuracy."""
    return float(ema_accuracy if ema_accuracy is not None else accuracy)


@dataclass(frozen=True)
class Epoch:
    epoch: int  # 0-based index of this epoch; epochs finished (the pruners' step) is epoch + 1
    accuracy: float  # validation accuracy, 0..1
    loss: float  # validation loss
    train_loss: float
    seconds: float  # training seconds so far, all epochs (resumed ones included)
    images_per_s: float = 0.0  # training images per second in this epoch
    epoch_seconds: float = 0.0
    start_epoch: int = 0  # the epoch the training call started at: > 0 when resumed from a checkpoint
    test_accuracy: float | None = None
    # With train.ema > 0, the scores of the EMA of the weights, which the search ranks trials by. Then
    # accuracy and loss are the EMA's too, unless train() was asked to evaluate the raw weights as well.
    ema_accuracy: float | None = None
    ema_loss: float | None = None
    replayed: bool = False  # said again after a restart (a kill between checkpoint and report): never decided on

    @property
    def score(self) -> float:
        return score_of(self.accuracy, self.ema_accuracy)

    @property
    def done(self) -> int:
        """Epochs finished."""
        return self.epoch + 1

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def curve_point(self) -> dict[str, Any]:
        """What a trial's curve keeps of this epoch."""
        return {k: getattr(self, k) for k in CURVE_FIELDS}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Epoch:
        """An epoch from a mapping holding its fields (a Ray result, a stored curve point): other keys ignored,
        absent optional fields at their defaults."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


class Outcome(enum.Enum):
    """How a training ended, as its runner tells the decider."""

    ENDED = "ended"  # it returned or was stopped: COMPLETE when it reached the last epoch, else PRUNED
    ERROR = "error"  # it raised: FAIL
    DIVERGED = "diverged"  # its loss became NaN or infinite: FAIL, and not retried (it would diverge again)
