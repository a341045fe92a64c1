"""`gcsearch train`: one configuration trained at full fidelity, from a space file or an export, each epoch
printed: what a user runs before trusting a search's pick (and, with ``--test``, its score on the test split)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, TextIO

from gcsearch.arch import ArchConfig
from gcsearch.errors import ConfigError

if TYPE_CHECKING:
    from gcsearch.epoch import Epoch
    from gcsearch.space import SearchSpace


def arch_named(space: SearchSpace, text: str | None) -> ArchConfig:
    """--arch: paper-default (also the default: the paper default as a point of the space), baseline, or
    key=value pairs such as 'stages=c4,c5 pool=avg'."""
    if text == "baseline":
        return ArchConfig()
    if text not in (None, "paper-default"):
        return ArchConfig.from_dict(ArchConfig.pairs(text.split(), "--arch"), where="--arch")
    reference = space.reference()
    if reference is None:
        raise ConfigError("--arch", "paper-default needs a space with a GC stage set; give key=value pairs")
    return reference


def retrain(config: str, arch: str | None = None, epochs: int | None = None, test: bool = False,
            stream: TextIO | None = None) -> Epoch:  # fmt: skip
    """Train ``arch`` (an export's own when ``config`` is an export and ``arch`` is None) for ``epochs`` (default:
    the file's), fine-tuning into the space's trained backbone where it names one; returns the last epoch."""
    from gcsearch.analysis.export import load_trainable
    from gcsearch.nn import cache
    from gcsearch.nn.pretrain import resolve
    from gcsearch.nn.train import train

    if epochs is not None and epochs < 1:
        raise ConfigError("--epochs", "must be >= 1", epochs)
    stream = stream or sys.stdout
    exported, space = load_trainable(config)
    space = cache.prepare(space, stream, test=test)  # an image folder decoded once (the test split if asked)
    space = resolve(space, stream)  # fine-tuning: the weights made (backbone.pretrain) or checked
    chosen = exported if exported is not None and arch is None else arch_named(space, arch)
    epochs = epochs or space.train.epochs
    stream.write(f"training {chosen.label()} on {space.data.dataset} for {epochs} epochs\n")

    def show(e: Epoch) -> None:
        stream.write(f"  epoch {e.done:>3}/{epochs}  val acc {e.accuracy:.4f}  val loss {e.loss:.4f}  train loss "
                     f"{e.train_loss:.4f}  {e.images_per_s:,.0f} img/s  {e.epoch_seconds:.1f} s\n")  # fmt: skip
        stream.flush()

    last = train(chosen, space, show, epochs=epochs, test=test)
    score = f", test acc {last.test_accuracy:.4f}" if last.test_accuracy is not None else ""
    stream.write(f"final: val acc {last.accuracy:.4f}, {last.seconds:.1f} s{score}\n")
    return last
