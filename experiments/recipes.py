"""Which training recipe makes the first rung predict the last? Recipes side by side on one design.

Trains a balanced design of gc.yaml's configurations (``design.balanced``: baseline, paper default and
a pairwise-balanced rest) with a few seeds under each recipe, to the last epoch, and writes one
curves.csv per recipe to experiments/data/recipes/. ``gcsearch bench fidelity`` then scores each one.
Every recipe also evaluates an EMA of the weights (train.ema), which does not change the training, so
"EMA evaluation" and "validation loss as the metric" are read from the same curves as their recipe.

Trainings run in plain processes (2 on this machine, one thread each), calling ``gcsearch.train.train``
directly: this compares recipes, so the search machinery adds nothing to it. Finished
(configuration, seed) pairs are appended as they end and skipped on a rerun.

    python experiments/recipes.py [--configs 24] [--seeds 0 1] [--recipes onecycle constant_decay ...]
"""

from __future__ import annotations

import argparse
import dataclasses
import multiprocessing as mp
import sys
import time
from pathlib import Path

from gcsearch import curves, design
from gcsearch.space import SearchSpace
from gcsearch.spacefile import load_space

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "experiments" / "data" / "recipes"
EMA = 0.95  # horizon ~20 steps: under half an epoch of gc.yaml's 46 steps

# name -> (train overrides, data overrides); every recipe costs the same optimizer steps as gc.yaml's.
RECIPES: dict[str, tuple[dict, dict]] = {
    "onecycle": ({}, {}),  # gc.yaml before this change: warm-up 20%, linear decay, peak lr 0.2
    "constant_decay": ({"schedule": "constant_decay"}, {}),
    "cosine": ({"schedule": "cosine"}, {}),
    "more_data": ({"epochs": 2}, {"train_subset": 12000}),  # EcoNAS: same steps, twice the images, half the epochs
    "onecycle_lr05": ({"lr": 0.05}, {}),
    "constant_decay_lr05": ({"schedule": "constant_decay", "lr": 0.05}, {}),
}


def recipe_space(base: SearchSpace, name: str) -> SearchSpace:
    train, data = RECIPES[name]
    return dataclasses.replace(
        base,
        train=dataclasses.replace(base.train, ema=EMA, threads=1, **train),
        data=dataclasses.replace(base.data, **data),
    )


_SPLITS: dict = {}


def job(args: tuple) -> list[curves.CurvePoint]:
    import torch

    from gcsearch import data as datasets
    from gcsearch.flops import SpaceCoster
    from gcsearch.train import train

    space, arch, seed = args
    torch.set_num_threads(1)
    key = space.data
    if key not in _SPLITS:
        _SPLITS.clear()
        _SPLITS[key] = datasets.load(space.data, space.backbone.input_size, space.backbone.num_classes,
                                     seed=space.train.seed)  # fmt: skip
    macs, params = SpaceCoster(space.backbone)(arch)
    recipe = space.recipe()
    out: list[curves.CurvePoint] = []

    def report(m: dict) -> None:
        out.append(curves.CurvePoint(arch, seed, m["epoch"] + 1, m["accuracy"], m["loss"], m["train_loss"],
                                     m["seconds"], macs, params, recipe, m["ema_accuracy"], m["ema_loss"]))  # fmt: skip

    train(arch, space, report, splits=_SPLITS[key], seed=seed, raw_too=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--space", default="search_spaces/gc.yaml")
    parser.add_argument("--configs", type=int, default=24)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    base = load_space(ROOT / args.space)
    archs = design.balanced(base.grid(), args.configs, [base.reference(), base.reference().__class__()])
    OUT.mkdir(parents=True, exist_ok=True)
    ctx = mp.get_context("spawn")
    with ctx.Pool(args.workers) as pool:
        for name in args.recipes:
            space = recipe_space(base, name)
            path = OUT / f"{name}.csv"
            done = {(p.arch, p.seed) for p in curves.read(path)} if path.exists() else set()
            todo = [(space, a, s) for s in args.seeds for a in archs if (a, s) not in done]
            print(f"{name}: {len(todo)} trainings to go ({len(done)} done)", flush=True)
            start = time.perf_counter()
            for i, points in enumerate(pool.imap_unordered(job, todo), 1):
                with open(path, "a", encoding="utf-8") as f:
                    f.write(curves.to_csv(points, header=f.tell() == 0))
                print(f"  {name} {i}/{len(todo)} {points[0].arch.label()} seed {points[0].seed}: "
                      f"{points[-1].accuracy:.4f} ({time.perf_counter() - start:.0f} s)", flush=True)  # fmt: skip
    print("command:", " ".join([sys.executable.rsplit("/", 1)[-1], *sys.argv]))


if __name__ == "__main__":
    main()
