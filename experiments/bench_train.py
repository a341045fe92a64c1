"""Images/s of gcsearch.train() against a minimal hand-written PyTorch loop, measured in one run.

Same model (the space's paper-default proxy), same data (its train subset), same batch size, same
thread count. The hand loop is what a user would write: the whole subset pre-normalised to float once,
a shuffled index per epoch, forward, cross-entropy, backward, SGD step, no augmentation, no validation.
train() is timed by its own per-epoch images/s (training only, validation excluded), which is what a
search pays per image. Repeats alternate the two so drift on a noisy machine hits both alike.

    python experiments/bench_train.py [--space search_spaces/gc-fashion.yaml] [--threads 1] [--repeats 3]

Writes experiments/results/bench_train-<device>.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

from gcsearch.nn import data as datasets
from gcsearch.nn.models import build_model
from gcsearch.nn.train import pick_device, train
from gcsearch.spacefile import load_space


def hand_loop(space, splits, device, epochs: int, channels_last: bool) -> float:
    """Images/s of a plain loop; returns the median epoch's throughput."""
    torch.manual_seed(0)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = build_model(gc=space.reference(), **space.backbone.build_kwargs()).to(device, memory_format=fmt)
    opt = torch.optim.SGD(model.parameters(), lr=space.train.lr, momentum=0.9, nesterov=True, weight_decay=5e-4)
    x_all = ((splits.train_x.float() / 255 - splits.mean[0]) / splits.std[0]).to(device, memory_format=fmt)
    y_all = splits.train_y.to(device)
    bs = space.train.batch_size
    steps = len(x_all) // bs
    rates = []
    for _ in range(epochs):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        order = torch.randperm(len(x_all), device=device)
        for i in range(steps):
            idx = order[i * bs : (i + 1) * bs]
            loss = nn.functional.cross_entropy(model(x_all[idx]), y_all[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        rates.append(steps * bs / (time.perf_counter() - t0))
    return statistics.median(rates)


def gcsearch_train(space, splits, epochs: int) -> float:
    reports: list = []
    train(space.reference(), space, reports.append, epochs=epochs, splits=splits)
    return statistics.median(r.images_per_s for r in reports)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--space", default="search_spaces/gc-fashion.yaml")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (a search trial gets 1 CPU)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2, help="epochs per measurement")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    space = load_space(args.space)
    space = dataclasses.replace(space, train=dataclasses.replace(space.train, device=args.device))
    device = pick_device(args.device)
    b = space.backbone
    splits = datasets.load(space.data, b.input_size, b.num_classes, seed=space.train.seed)

    ours, theirs, theirs_cl = [], [], []
    for r in range(args.repeats):
        theirs.append(hand_loop(space, splits, device, args.epochs, channels_last=False))
        theirs_cl.append(hand_loop(space, splits, device, args.epochs, channels_last=True))
        ours.append(gcsearch_train(space, splits, args.epochs))
        print(
            f"repeat {r}: hand loop {theirs[-1]:,.0f} img/s, hand loop channels_last {theirs_cl[-1]:,.0f}, "
            f"train() {ours[-1]:,.0f} img/s",
            flush=True,
        )
    ratio = statistics.median(ours) / statistics.median(theirs)
    ratio_cl = statistics.median(ours) / statistics.median(theirs_cl)

    name = torch.cuda.get_device_name() if device.type == "cuda" else platform.processor() or platform.machine()
    lines = [
        "# train() vs a minimal hand-written loop",
        "",
        f"Command: `python {' '.join(sys.argv)}`",
        f"Machine: {device.type} ({name}), {args.threads} torch thread(s), torch {torch.__version__}",
        f"Model: {space.reference().label()} on {b.name} ({b.block}, width {b.width}); "
        f"data {space.data.dataset}, {len(splits.train_x)} images, batch {space.train.batch_size}",
        f"Repeats: {args.repeats} x {args.epochs} epochs, alternating; medians below.",
        "",
        "| loop | images/s (median) | all repeats |",
        "|---|---|---|",
        f"| hand-written | {statistics.median(theirs):,.0f} | {', '.join(f'{v:,.0f}' for v in theirs)} |",
        f"| hand-written, channels_last | {statistics.median(theirs_cl):,.0f} | "
        f"{', '.join(f'{v:,.0f}' for v in theirs_cl)} |",
        f"| gcsearch.train() | {statistics.median(ours):,.0f} | {', '.join(f'{v:,.0f}' for v in ours)} |",
        "",
        f"Ratio train() / hand loop, channels_last: {ratio_cl:.3f} (the cost of train()'s per-batch "
        "normalisation, augmentation hook, schedule and loss bookkeeping)",
        "",
        f"**Ratio train() / hand loop: {ratio:.3f}** (target >= 0.95 on CPU)",
    ]
    out = Path(__file__).parent / "results" / f"bench_train-{device.type}.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines[-3:]))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
