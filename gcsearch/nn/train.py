"""One proxy training: ``train(arch, space, report) -> Epoch``, the last epoch. No Ray here.

The same function runs in a unit test, a notebook and a Ray worker: the caller passes ``report``, a
callable that receives each epoch's metrics (``ray.tune.report`` wrapped, in a search). What makes it
fast on small images: data held as tensors on the training device, batches cut by indexing, channels_last,
bf16 autocast on CUDA, one host sync per epoch. What makes it honest: validation images held out of the
training split, the same for every trial; the test split only on request.
"""

from __future__ import annotations

import copy
import ctypes
import dataclasses
import functools
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from gcsearch.arch import ArchConfig
from gcsearch.epoch import Epoch
from gcsearch.errors import TrainingDiverged
from gcsearch.files import replace_with
from gcsearch.nn import batches
from gcsearch.nn import data as datasets
from gcsearch.nn.models import build_model
from gcsearch.nn.sgd import SGD, AdamW
from gcsearch.nn.weights import load_backbone
from gcsearch.settings import TrainConfig

if TYPE_CHECKING:  # the trainer reads a loaded space's settings, never the YAML reader
    from gcsearch.space import SearchSpace

Reporter = Callable[[Epoch], None]


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim  # glibc only
    except (OSError, AttributeError):
        return None


def _return_freed_memory() -> None:
    """Hand the heap an epoch freed back to the OS: glibc keeps it otherwise, and a reused trial worker then
    holds about 225 MiB more RSS between epochs on gc.yaml (experiments/results/worker_memory.md)."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def lr_factor(schedule: str, step: int, total: int) -> float:
    """LR multiplier at ``step`` of ``total``. onecycle: linear warm-up over the first 20%, then linear
    decay to 0; it suits short runs (airbench, fast.ai). cosine: from 1 to 0. constant: 1.
    constant_decay: warm-up over the first 10%, constant, then linear decay to 0 over the last 20%
    (warmup-stable-decay): every epoch before the decay is trained at the same rate, so an early rung
    compares configurations at the rate their whole run shares."""
    t = step / max(1, total)
    if schedule == "onecycle":
        return t / 0.2 if t < 0.2 else max(0.0, (1 - t) / 0.8)
    if schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * t))
    if schedule == "constant_decay":
        return min(t / 0.1, 1.0, max(0.0, (1 - t) / 0.2))
    return 1.0


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> SGD | AdamW:
    """torch's updates without torch.optim's classes (nn/sgd.py says why)."""
    if cfg.optimizer == "adamw":
        return AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    return SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.momentum > 0,
               weight_decay=cfg.weight_decay)  # fmt: skip


def evaluate(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    normalize: batches.Normalize,
    batch_size: int = 256,
    predicted: list[torch.Tensor] | None = None,
) -> tuple[float, float]:
    """(accuracy, mean cross-entropy) over a whole split, held on the CPU (in memory or memory-mapped) and moved
    to the normaliser's device a batch at a time. Batches of 256: 1024 raised a CPU trial's peak memory by 290
    MiB for no measurable speed (experiments/results/worker_memory.md). ``predicted`` collects each batch's
    predicted classes (on the CPU), for per-image outcomes."""
    model.eval()
    device = normalize.device
    correct = torch.zeros((), device=device)
    loss_sum = torch.zeros((), device=device)
    with torch.no_grad(), _autocast(device):
        for i in range(0, len(x), batch_size):
            logits = model(normalize(batches.fetch(x[i : i + batch_size], device))).float()
            target = batches.fetch(y[i : i + batch_size], device)
            loss_sum += nn.functional.cross_entropy(logits, target, reduction="sum")
            guess = logits.argmax(1)
            correct += (guess == target).sum()
            if predicted is not None:
                predicted.append(guess.cpu())
    return correct.item() / len(x), loss_sum.item() / len(x)


class WeightEMA:
    """An exponential moving average of the weights and BatchNorm statistics (timm's ModelEmaV2 rule,
    with its warm-up ``min(decay, (1 + n) / (10 + n))`` so the first steps do not drag in the random
    initialisation). Evaluated beside the raw weights: at a high learning rate the average of the last
    ~1/(1 - decay) steps scores a configuration with far less step-to-step noise."""

    def __init__(self, model: nn.Module, decay: float):
        self.decay, self.updates = decay, 0
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self.pairs = [
            (e, m)
            for e, m in zip(self.model.state_dict().values(), model.state_dict().values(), strict=True)
            if m.is_floating_point()
        ]

    @torch.no_grad()
    def update(self) -> None:
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        ema, live = zip(*self.pairs, strict=True)
        torch._foreach_lerp_(list(ema), list(live), 1 - d)


def _autocast(device: torch.device) -> torch.autocast:
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


def train(
    arch: ArchConfig,
    space: SearchSpace,
    report: Reporter | None = None,
    checkpoint: str | Path | None = None,
    *,
    epochs: int | None = None,
    test: bool = False,
    splits: datasets.Splits | None = None,
    seed: int | None = None,
    raw_too: bool = False,
    outcomes: str | Path | None = None,
    progress: Callable[[int, int, int], None] | None = None,
) -> Epoch:
    """Train ``arch`` on the space's backbone and data for ``epochs`` (default: the file's).

    After each epoch: the checkpoint file (if given) is written, then ``report(epoch)`` is called.
    If the checkpoint file exists at the start, training resumes after its last epoch and reaches the
    same weights as an uninterrupted run (every epoch's randomness is seeded by (seed, epoch)).
    Raises TrainingDiverged when the training loss becomes NaN or infinite. With ``train.ema`` the EMA
    weights are evaluated (and the test split scored with them); ``raw_too`` also evaluates the raw
    weights each epoch, for experiments that compare the two. ``outcomes`` names an .npz file that receives the
    per-image outcomes of the final weights: the predicted class of every validation image (``val``) beside its
    label (``val_labels``), and the test split's (``test``, ``test_labels``) with ``test``; collected by the
    last epoch's evaluation, so they cost no extra pass. ``progress(epoch, step, steps)`` hears of each optimizer
    step (for a progress line within long epochs).
    """
    cfg = space.train
    epochs = epochs or cfg.epochs
    # `seed` varies initialisation and batch order (ablation repeats); the train/validation split
    # always follows the file's train.seed, so every run is scored on the same images.
    run_seed = cfg.seed if seed is None else seed
    device = pick_device(cfg.device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if splits is None:
        splits = datasets.load(
            space.data, space.backbone.input_size, space.backbone.num_classes, seed=cfg.seed, test=test
        )

    torch.manual_seed(run_seed)
    model = build_model(gc=arch, **space.backbone.build_kwargs())
    if space.backbone.weights:  # fine-tuning: the trained backbone under freshly initialised GC blocks
        load_backbone(model, Path(space.backbone.weights))
    model.to(device)
    model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(model, cfg)
    n = len(splits.train_x)
    batch = min(cfg.batch_size, n)
    steps_per_epoch = n // batch  # the last partial batch is dropped: BatchNorm dislikes tiny batches
    total_steps = steps_per_epoch * epochs
    done_steps = 0  # optimizer steps taken: where the schedule is (saved as torch's LambdaLR saved it)
    criterion = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    normalize = batches.Normalize(splits.mean, splits.std, device, channels_last=True)
    ema = WeightEMA(model, cfg.ema) if cfg.ema > 0 else None
    # One evaluation per epoch, of the weights the trial is judged by: with an EMA, evaluating the raw
    # weights too would cost as much again (5,000 validation images against 6,000 training ones in gc.yaml).
    scored = ema.model if ema is not None else model

    kept: dict[str, torch.Tensor] = {}  # per-image predictions of the final weights, by split
    start_epoch, seconds, train_loss = 0, 0.0, float("nan")
    history: list[Epoch] = []  # every finished epoch, kept in the checkpoint
    ckpt_path = Path(checkpoint) if checkpoint else None
    if ckpt_path is not None and ckpt_path.exists():
        state = torch.load(ckpt_path, map_location=device, weights_only=True)
        model.load_state_dict(state["model"])
        if ema is not None and "ema" in state:
            ema.model.load_state_dict(state["ema"])
            ema.updates = state["ema_updates"]
        optimizer.load_state_dict(state["optimizer"])
        done_steps = state["scheduler"]["last_epoch"]
        start_epoch, seconds, train_loss = state["epoch"] + 1, state["seconds"], state["train_loss"]
        history = [Epoch.from_dict(past) for past in state.get("history", [])]
        if report is not None:
            # A kill can fall between an epoch's checkpoint and its report: say the finished epochs again,
            # marked replayed, so the caller's record of the curve has no gap (nothing is decided on them).
            for past in history:
                report(dataclasses.replace(past, replayed=True))

    metrics: Epoch | None = None
    for epoch in range(start_epoch, epochs):
        t0 = time.perf_counter()
        model.train()
        g = torch.Generator().manual_seed(run_seed * 100_003 + epoch)
        order = torch.randperm(n, generator=g)
        loss_sum = torch.zeros((), device=device)
        for step in range(steps_per_epoch):
            idx = order[step * batch : (step + 1) * batch]
            # One gather on the CPU (from the page cache for an image folder), then one copy to the device.
            x, y = batches.fetch(splits.train_x[idx], device), batches.fetch(splits.train_y[idx], device)
            x = batches.augment(x, space.data.flip, space.data.crop_padding, g, space.data.resized_crop)
            with _autocast(device):
                loss = criterion(model(normalize(x)), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.set_lr(cfg.lr * lr_factor(cfg.schedule, done_steps, total_steps))
            optimizer.step()
            done_steps += 1
            if ema is not None:
                ema.update()
            loss_sum += loss.detach().float()
            if progress is not None:
                progress(epoch, step + 1, steps_per_epoch)
        train_loss = loss_sum.item() / steps_per_epoch  # the epoch's one host sync
        train_seconds = time.perf_counter() - t0
        if not math.isfinite(train_loss):
            raise TrainingDiverged(
                f"training loss became {train_loss} in epoch {epoch} of {arch.label()} (lr {cfg.lr:g})"
            )
        predicted: list[torch.Tensor] | None = [] if outcomes and epoch == epochs - 1 else None
        accuracy, val_loss = evaluate(scored, splits.val_x, splits.val_y, normalize, predicted=predicted)
        ema_accuracy, ema_loss = (accuracy, val_loss) if ema is not None else (None, None)
        if ema is not None and raw_too:
            accuracy, val_loss = evaluate(model, splits.val_x, splits.val_y, normalize)
        epoch_seconds = time.perf_counter() - t0
        seconds += epoch_seconds
        metrics = Epoch(
            epoch=epoch,
            accuracy=accuracy,
            loss=val_loss,
            train_loss=train_loss,
            images_per_s=steps_per_epoch * batch / train_seconds,
            epoch_seconds=epoch_seconds,
            seconds=seconds,
            start_epoch=start_epoch,
            ema_accuracy=ema_accuracy,
            ema_loss=ema_loss,
        )
        history.append(metrics)
        if predicted is not None and outcomes:  # before the checkpoint: a kill between them re-evaluates on resume
            kept["val"] = torch.cat(predicted)
        if ckpt_path is not None:
            state = {
                "epoch": epoch,
                "seconds": seconds,
                "train_loss": train_loss,
                "history": [h.as_dict() for h in history],
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": {"last_epoch": done_steps},
            }
            if ema is not None:
                state.update(ema=ema.model.state_dict(), ema_updates=ema.updates)
            # atomic: a kill mid-write leaves the previous checkpoint
            replace_with(ckpt_path, functools.partial(torch.save, state))
        _return_freed_memory()
        if report is not None:
            report(metrics)

    if metrics is None:
        # Resumed from a checkpoint that had finished every epoch (e.g. killed between its last save
        # and its last report): report the final epoch again, as it was measured (EMA scores included),
        # so the caller still hears of it and its curve keeps the same last point.
        if history:
            metrics = dataclasses.replace(history[-1], start_epoch=start_epoch)
        else:  # a checkpoint from before histories were kept
            accuracy, val_loss = evaluate(scored, splits.val_x, splits.val_y, normalize)
            ema_accuracy, ema_loss = (accuracy, val_loss) if ema is not None else (None, None)
            metrics = Epoch(epochs - 1, accuracy, val_loss, train_loss, seconds, start_epoch=start_epoch,
                            ema_accuracy=ema_accuracy, ema_loss=ema_loss)  # fmt: skip
        if report is not None:
            report(metrics)
    if outcomes and "val" not in kept:  # resumed after the last epoch: its predictions were not kept
        predicted = []
        evaluate(scored, splits.val_x, splits.val_y, normalize, predicted=predicted)
        kept["val"] = torch.cat(predicted)
    if test:
        assert splits.test_x is not None and splits.test_y is not None
        predicted = [] if outcomes else None
        test_accuracy, _ = evaluate(scored, splits.test_x, splits.test_y, normalize, predicted=predicted)
        metrics = dataclasses.replace(metrics, test_accuracy=test_accuracy)
        if predicted is not None:
            kept["test"] = torch.cat(predicted)
    if outcomes:
        save_outcomes(Path(outcomes), kept, splits)
    return metrics


def save_outcomes(path: Path, predicted: dict[str, torch.Tensor], splits: datasets.Splits) -> None:
    """Per-image predicted classes beside the labels, as int16 arrays in an .npz, written atomically."""
    labels = {"val": splits.val_y, "test": splits.test_y}
    arrays: dict[str, Any] = {}  # Any: numpy's stubs read a ** mapping as its keyword arguments
    for split, guess in predicted.items():
        arrays[split] = guess.numpy().astype(np.int16)
        arrays[f"{split}_labels"] = np.asarray(labels[split]).astype(np.int16)
    path.parent.mkdir(parents=True, exist_ok=True)

    def write(tmp: Path) -> None:
        with tmp.open("wb") as f:  # a file object: given a name, numpy would append ".npz" to it
            np.savez_compressed(f, **arrays)

    replace_with(path, write)
