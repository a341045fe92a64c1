"""`gcsearch train`: one configuration trained at full fidelity, from a space file or an export, its progress
printed: what a user runs before trusting a search's pick (and, with ``--test``, its score on the test split).

It keeps what it trains in a folder (``--out``, default ``<output.dir>/train/<name>-<hash>``): the checkpoint after
each epoch, so Ctrl-C is a pause and the same command continues, and at the end ``best.yaml`` and ``best.pt``, an
export that ``build_model`` and ``gcsearch predict`` load.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from gcsearch.arch import ArchConfig
from gcsearch.errors import ConfigError, Interrupted
from gcsearch.files import write_atomic

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
            out: str | None = None, stream: TextIO | None = None) -> Epoch:  # fmt: skip
    """Train ``arch`` (an export's own when ``config`` is an export and ``arch`` is None) for ``epochs`` (default:
    the file's), fine-tuning into the space's trained backbone where it names one, in the folder ``out``; returns
    the last epoch."""
    from gcsearch.analysis.export import export_dict, load_trainable, write_export
    from gcsearch.nn import cache, preprocess
    from gcsearch.nn import data as datasets
    from gcsearch.nn.flops import SpaceCoster
    from gcsearch.nn.pretrain import resolve
    from gcsearch.nn.train import train
    from gcsearch.nn.weights import save_weights

    if epochs is not None and epochs < 1:
        raise ConfigError("--epochs", "must be >= 1", epochs)
    stream = stream or sys.stdout
    exported, space = load_trainable(config)
    space = cache.prepare(space, stream, test=test)  # an image folder decoded once (the test split if asked)
    space = resolve(space, stream)  # fine-tuning: the weights made (backbone.pretrain) or checked
    chosen = exported if exported is not None and arch is None else arch_named(space, arch)
    epochs = epochs or space.train.epochs
    what = {"arch": chosen.to_dict(), "recipe": space.recipe(), "epochs": epochs}
    folder = Path(out) if out else default_folder(space, config, what)
    ckpt = folder / "checkpoint.pt"
    claim(folder, what)
    b = space.backbone
    splits = datasets.load(space.data, b.input_size, b.num_classes, seed=space.train.seed, test=test)
    done = _epochs_in(ckpt)
    again = f", continuing after epoch {done} ({ckpt})" if done else ""
    stream.write(f"training {chosen.label()} on {space.data.dataset} for {epochs} epochs in {folder}/{again}\n")
    stream.flush()

    def show(e: Epoch) -> None:
        mark = " (before the pause)" if e.replayed else ""
        stream.write(f"  epoch {e.done:>3}/{epochs}  val acc {e.accuracy:.4f}  val loss {e.loss:.4f}  train loss "
                     f"{e.train_loss:.4f}  {e.images_per_s:,.0f} img/s  {e.epoch_seconds:.1f} s{mark}\n")  # fmt: skip
        stream.flush()

    try:
        last = train(chosen, space, show, checkpoint=ckpt, epochs=epochs, test=test, splits=splits,
                     progress=Progress(stream, epochs))  # fmt: skip
    except KeyboardInterrupt:
        kept = _epochs_in(ckpt)
        raise Interrupted(f"interrupted: {kept} of {epochs} epochs finished, kept in {ckpt}; continue with: the "
                          f"same command{'' if out else f' (or --out {folder})'}") from None  # fmt: skip
    score = f", test acc {last.test_accuracy:.4f}" if last.test_accuracy is not None else ""
    stream.write(f"final: val acc {last.accuracy:.4f}, {last.seconds:.1f} s{score}\n")
    save_weights(ckpt, folder / "best.pt")
    macs, params = SpaceCoster(b)(chosen)
    metrics = {"accuracy": last.accuracy, "test_accuracy": last.test_accuracy, "macs": macs, "params": params,
               "epochs": last.done}  # fmt: skip
    pre = preprocess.of(splits, b.input_size)
    write_export(folder / "best.yaml", export_dict(space, chosen, metrics, {"trained": str(config)}, "best.pt", pre))
    stream.write(f"wrote {folder}/best.yaml and best.pt: gcsearch predict {folder}/best.yaml IMAGE...\n")
    return last


def default_folder(space: SearchSpace, config: str, what: dict[str, object]) -> Path:
    """``<output.dir>/train/<file stem>-<hash of configuration, recipe and epochs>``: the same command finds it."""
    key = hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:8]
    return Path(space.output_dir) / "train" / f"{Path(config).stem}-{key}"


def claim(folder: Path, what: dict[str, object]) -> None:
    """The folder holds this training (``training.json``) or nothing yet; another training's is refused."""
    folder.mkdir(parents=True, exist_ok=True)
    marker = folder / "training.json"
    if marker.is_file():
        held = json.loads(marker.read_text())
        if held != json.loads(json.dumps(what)):
            changed = next(k for k in what if held.get(k) != json.loads(json.dumps(what))[k])
            raise ConfigError("--out", f"holds a training of another {changed} ({marker}); give another --out",
                              str(folder))  # fmt: skip
    else:
        write_atomic(marker, json.dumps(what, indent=1))


def _epochs_in(ckpt: Path) -> int:
    if not ckpt.is_file():
        return 0
    import torch

    return int(torch.load(ckpt, map_location="cpu", weights_only=True)["epoch"]) + 1


class Progress:
    """Within an epoch, a line every 10 s (in place on a terminal): batches done, elapsed, the epoch's ETA."""

    def __init__(self, stream: TextIO, epochs: int, every: float = 10.0):
        self.stream, self.epochs, self.every = stream, epochs, every
        self.tty = stream.isatty()
        self.started = self.shown = 0.0

    def __call__(self, epoch: int, step: int, steps: int) -> None:
        now = time.perf_counter()
        if step == 1:
            self.started = self.shown = now
            return
        if now - self.shown < (1.0 if self.tty else self.every) or step == steps:
            return
        self.shown = now
        spent = now - self.started
        line = (f"  epoch {epoch + 1:>3}/{self.epochs}  {step}/{steps} batches  {spent:.0f} s, about "
                f"{spent * (steps - step) / step:.0f} s left in the epoch")  # fmt: skip
        self.stream.write(("\r" + line + "\r") if self.tty else line + "\n")
        self.stream.flush()
