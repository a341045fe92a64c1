"""Pilot: which far-cue task makes reading the cue graded, so that the best configurations are rare?

On gc-rediscover.yaml's task (a solid square or nothing) the outcome is a switch: a configuration reads the cue or
not, and once read, accuracy stops at the item ceiling (about 0.75), so 3 of 40 recorded configurations sit within
0.01 of the best (../shared/research/far-cue/review.md §4). Two gradings are tried, each with gc-rediscover.yaml's
recipe otherwise (3 epochs from scratch, one thread):

- ``shapes4``: cues blank / ring / square / cross, label shift 5 each (so blank and square mean c, ring and cross
  c + 5): the cue's presence says nothing, its shape is the label; brightness alone (0 / 16 / 25 / 9 lit pixels)
  does not separate the two label groups linearly.
- ``contrast``: blank or square as before, the square's brightness uniform in [0.1, 1] x 255 per image.

Each is trained on five configurations across the recorded landscape (its best, a second-best, the paper default,
a mid one, the baseline) x 2 seeds. Per training: accuracy, the item part (pair accuracy: right up to the cue) and
the cue part (within-pair accuracy), CPU-seconds. Writes experiments/data/pilot-graded-cue.jsonl as it goes
(resumable) and experiments/results/pilot-graded-cue.md.

    python experiments/pilot_graded_cue.py --variant shapes4 & python experiments/pilot_graded_cue.py --variant contrast
    python experiments/pilot_graded_cue.py --report
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

from gcsearch.arch import ArchConfig
from gcsearch.nn import batches
from gcsearch.nn import data as datasets
from gcsearch.nn.models import build_model
from gcsearch.nn.train import train
from gcsearch.spacefile import load_space

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "experiments" / "data" / "pilot-graded-cue.jsonl"
REPORT = ROOT / "experiments" / "results" / "pilot-graded-cue.md"
VARIANTS = {  # the far cue's settings, and (key "recipe") the data and train settings changed
    "shapes4": {"shapes": ("blank", "ring", "square", "cross"), "shift": 5},
    "contrast": {"contrast": 0.1},
    # For the default search (make run, about 10 minutes on 2 cores): the solid square on fewer, smaller batches.
    "quick": {"recipe": {"train_subset": 4000, "val_size": 2000, "batch_size": 64}},
}
CONFIGS = {  # from curves-rediscover.csv: its best, a second best, the paper default, a mid one, the baseline
    "best": {"stages": ["c3", "c4", "c5"], "pool": "avg", "fusion": "both", "ratio": "1/4", "gate_init": "identity"},
    "c5-avg-add": {"stages": ["c5"], "pool": "avg", "ratio": "1/4", "position": "after_add"},
    "default": {},
    "mid": {"stages": ["c4", "c5"], "ratio": "1/4", "position": "after_add"},
    "baseline": {"stages": []},
}
SEEDS = (0, 1)


def space_for(variant: str):
    sp = load_space(ROOT / "search_spaces" / "gc-rediscover.yaml")
    settings = dict(VARIANTS[variant])
    recipe = settings.pop("recipe", {})
    fc = dataclasses.replace(sp.data.farcue, **settings)
    data = {k: v for k, v in recipe.items() if k in ("train_subset", "val_size")}
    train = {k: v for k, v in recipe.items() if k == "batch_size"}
    return dataclasses.replace(
        sp,
        data=dataclasses.replace(sp.data, farcue=fc, **data),
        train=dataclasses.replace(sp.train, threads=1, device="cpu", **train),
    )


def decompose(model: torch.nn.Module, splits: datasets.Splits) -> tuple[float, float, float]:
    """(accuracy, pair accuracy: the item right up to the cue, within-pair accuracy: the cue read where the item
    was right)."""
    model.eval()
    norm = batches.Normalize(splits.mean, splits.std, torch.device("cpu"), channels_last=True)
    with torch.no_grad():
        pred = torch.cat([model(norm(splits.val_x[i : i + 256])).argmax(1) for i in range(0, len(splits.val_x), 256)])
    y = splits.val_y
    pair = (pred % 5) == (y % 5)
    return float((pred == y).float().mean()), float(pair.float().mean()), float((pred == y)[pair].float().mean())


def run(variant: str, seeds: tuple[int, ...] = SEEDS) -> None:
    torch.set_num_threads(1)
    space = space_for(variant)
    b = space.backbone
    splits = datasets.load(space.data, b.input_size, b.num_classes, seed=space.train.seed)
    done = set()
    if OUT.exists():
        done = {(r["variant"], r["config"], r["seed"]) for r in map(json.loads, OUT.read_text().splitlines())}
    for seed in seeds:
        for name, overrides in CONFIGS.items():
            if variant == "quick" and name == "mid":
                continue
            if (variant, name, seed) in done:
                continue
            arch = ArchConfig.from_dict(overrides)
            curve: list[float] = []
            c0 = time.process_time()
            with tempfile.TemporaryDirectory() as tmp:
                ck = Path(tmp) / "ck.pt"
                m = train(arch, space, report=lambda e, c=curve: c.append(round(e.accuracy, 4)), checkpoint=ck,
                          seed=seed, splits=splits)  # fmt: skip
                state = torch.load(ck, map_location="cpu", weights_only=True)
            model = build_model(gc=arch, **b.build_kwargs())
            model.load_state_dict(state["ema"])
            model.to(memory_format=torch.channels_last)
            acc, pair, within = decompose(model, splits)
            row = dict(variant=variant, config=name, seed=seed, accuracy=m.accuracy, curve=curve,
                       pair=round(pair, 4), within=round(within, 4), cpu_s=round(time.process_time() - c0, 1),
                       check=round(acc, 4))  # fmt: skip
            with OUT.open("a") as f:
                f.write(json.dumps(row) + "\n")
            print(json.dumps(row), flush=True)


def report() -> None:
    rows = [json.loads(line) for line in OUT.read_text().splitlines()]
    lines = ["# Pilot: a graded far cue", "", "Command: `python experiments/pilot_graded_cue.py --variant shapes4` and "
             "`--variant contrast` (one thread each, side by side on a 2-core machine), then `--report`.", "",
             "| variant | configuration | seeds | accuracy | item (pair) | cue (within-pair) | CPU-s |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for v in VARIANTS:
        for c in CONFIGS:
            rs = [r for r in rows if r["variant"] == v and r["config"] == c]
            if not rs:
                continue
            acc = " ".join(f"{r['accuracy']:.3f}" for r in rs)
            pair = " ".join(f"{r['pair']:.3f}" for r in rs)
            within = " ".join(f"{r['within']:.3f}" for r in rs)
            cpu = statistics.mean(r["cpu_s"] for r in rs)
            lines.append(f"| {v} | {c} | {len(rs)} | {acc} | {pair} | {within} | {cpu:.0f} |")
    lines += ["", "Reading: the item part (pair accuracy, 0.71-0.76) is the same everywhere; the cue part decides. "
              "With "
              "`contrast` the landscape keeps its shape: c5-only average pooling, second best on the solid square "
              "(0.738 in curves-rediscover.csv), still reads the cue (within-pair 0.96). With `shapes4` it cannot "
              "(0.54-0.56, near the baseline's 0.50), the paper default reads it partly (0.72-0.78) and the best "
              "configuration of the solid square still fully (0.96-0.99): reading the cue is graded by the "
              "configuration, so the best are rarer, and the control holds (default - baseline +0.18 and +0.14 on "
              "seeds 0 and 1). `shapes4` became search_spaces/gc-cue-shapes.yaml, the task of this round's "
              "recording; `contrast` stays available as `data.farcue.contrast`."]  # fmt: skip
    REPORT.write_text("\n".join(lines) + "\n")
    print(REPORT.read_text())


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--variant", choices=sorted(VARIANTS))
    p.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    p.add_argument("--report", action="store_true")
    a = p.parse_args()
    report() if a.report else run(a.variant, tuple(a.seeds))
