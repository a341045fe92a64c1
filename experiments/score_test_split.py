"""Score every trial of a recording on the test split, which chose nothing (not the recipe, not a configuration,
not a seed): from each trial's final checkpoint (the weights its validation accuracy measured: the EMA's when the
recipe keeps one), per image; with each GC block's movement (nn/probe.py) on the first 512 test images.

    python experiments/score_test_split.py [--run runs/curves-rediscover] [--name curves-rediscover]

Writes experiments/data/<name>-test.csv (one row per trial: its configuration, seed, test accuracy, and the mean
and largest movement of its blocks) and experiments/data/<name>-test-correct.npz (per trial, which test images it
classified right, packed bits: McNemar's counts between any two trials). Resumable: trials already in the csv
are skipped. No training; about 10 CPU-s a trial at 10,000 test images.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
from pathlib import Path

import numpy as np
import torch

from gcsearch import pareto
from gcsearch.arch import AXES
from gcsearch.nn import batches
from gcsearch.nn import data as datasets
from gcsearch.nn.models import build_model
from gcsearch.nn.probe import block_movement
from gcsearch.nn.weights import checkpoint_weights
from gcsearch.search import attrs, rundir
from gcsearch.spacefile import load_space

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "experiments" / "data"
FIELDS = ("number", *AXES, "seed", "test_accuracy", "val_accuracy", "movement_mean", "movement_max", "blocks")


def save_bits(path: Path, bits: dict[str, np.ndarray]) -> None:
    """All trials' bits, replaced whole (a kill leaves the old file or the new one)."""
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez_compressed(tmp, **bits)
    os.replace(tmp, path)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", type=Path, default=ROOT / "runs" / "curves-rediscover")
    p.add_argument("--name", default="curves-rediscover")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--limit", type=int, help="score this many more trials only")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    space = load_space(args.run / "space.yaml")
    b = space.backbone
    splits = datasets.load(space.data, b.input_size, b.num_classes, seed=space.train.seed, test=True)
    assert splits.test_x is not None and splits.test_y is not None
    normalize = batches.Normalize(splits.mean, splits.std, torch.device("cpu"), channels_last=True)
    test_x, test_y = splits.test_x, splits.test_y
    probe = normalize(test_x[:512])

    out, bits_path = DATA / f"{args.name}-test.csv", DATA / f"{args.name}-test-correct.npz"
    done: set[int] = set()
    if out.is_file():
        with open(out) as f:
            done = {int(r["number"]) for r in csv.DictReader(f)}
    bits = dict(np.load(bits_path)) if bits_path.is_file() else {}
    study = rundir.load_main_study(args.run)
    by_number = {t.number: t for t in study.get_trials(deepcopy=False)}
    todo = [r for r in pareto.trained(rundir.records(study)) if r.state == "COMPLETE" and r.number not in done]
    todo = todo[: args.limit] if args.limit is not None else todo
    new_file = not out.is_file()
    with open(out, "a", newline="") as f:
        w = csv.writer(f)
        if new_file:
            w.writerow(FIELDS)
        for i, r in enumerate(todo):
            ckpt = rundir.checkpoint(args.run, r.number)
            if not ckpt.is_file():
                continue
            model = build_model(gc=r.arch, **b.build_kwargs()).to(memory_format=torch.channels_last)
            model.load_state_dict(checkpoint_weights(torch.load(ckpt, map_location="cpu", weights_only=True)))
            model.eval()
            correct = []
            with torch.no_grad():
                for s in range(0, len(test_x), 500):
                    logits = model(normalize(test_x[s : s + 500]))
                    correct.append((logits.argmax(1) == test_y[s : s + 500]).numpy())
            right = np.concatenate(correct)
            moved = block_movement(model, probe)
            seed = by_number[r.number].user_attrs.get(attrs.SEED, space.train.seed)
            # The bits first, then the row: a row (what marks a trial done) never lacks its bits.
            bits[str(r.number)] = np.packbits(right)
            save_bits(bits_path, bits)
            w.writerow([r.number, *(r.arch.value_text(a) for a in AXES), seed, f"{right.mean():.6f}",
                        f"{r.accuracy:.6f}", f"{statistics.mean(moved.values()):.5f}" if moved else "",
                        f"{max(moved.values()):.5f}" if moved else "", json.dumps(moved)])  # fmt: skip
            f.flush()
            top = max(moved.values()) if moved else 0.0
            print(f"{i + 1}/{len(todo)} trial {r.number} {r.arch.label()} seed {seed}: test {right.mean():.4f} "
                  f"(val {r.accuracy:.4f}), largest block movement {top:.3f}", flush=True)  # fmt: skip
    print(f"wrote {out} and {bits_path}")


if __name__ == "__main__":
    main()
