"""`gcsearch prepare` at the speed of the cores: the cache build against a single-thread PIL loop over the same files.

The folder: 8,000 photo-like JPEGs (10 classes, 128-192 px, smooth colour patterns with noise, quality 90), generated
once under --folder and not committed. Target 64 x 64 RGB, as a search of a small proxy decodes them.

- baseline: one process, for each file Image.open -> convert("RGB") -> resize the shorter side to 64 (bilinear) ->
  centre crop: what a user's own loop does (full decode, no draft);
- gcsearch: ``cache.prepare`` (list, plan, parallel decode over the cores with JPEG draft, normalisation statistics,
  manifest), a fresh cache each round.

Rounds alternate (baseline, gcsearch, ...) so a slow phase of a shared machine falls on both; the median of the
rounds' ratios is reported, with images/s. The pixels: the cache's against the baseline's full decode, mean and
largest absolute difference (levels of 255).

    python experiments/bench_prepare.py [--images 8000] [--rounds 3] [--folder /tmp/gcsearch-prepare-folder]

Writes experiments/results/bench_prepare.md. Run it on a quiet machine: it times.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from gcsearch.nn import cache
from gcsearch.spacefile import parse_space

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "experiments" / "results" / "bench_prepare.md"
SIZE = 64


def photo_folder(root: Path, images: int, seed: int = 0) -> Path:
    if (root / "done").is_file() and json.loads((root / "done").read_text()) == images:
        return root
    shutil.rmtree(root, ignore_errors=True)
    rng = np.random.default_rng(seed)
    bases = [Image.fromarray(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)) for _ in range(10)]
    for i in range(images):
        k = i % 10
        w, h = (int(v) for v in rng.integers(128, 193, 2))
        pixels = np.asarray(bases[k].resize((w, h), Image.Resampling.BICUBIC), dtype=np.float64)
        pixels = np.clip(pixels + rng.normal(0, 20, pixels.shape), 0, 255).astype(np.uint8)
        folder = root / "train" / f"class{k}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(folder / f"{i}.jpg", quality=90)
    (root / "done").write_text(json.dumps(images))
    return root


def single_thread_loop(paths: list[Path]) -> np.ndarray:
    out = np.empty((len(paths), 3, SIZE, SIZE), np.uint8)
    for i, p in enumerate(paths):
        with Image.open(p) as im:
            im = im.convert("RGB")
            scale = SIZE / min(im.width, im.height)
            rw, rh = max(SIZE, round(im.width * scale)), max(SIZE, round(im.height * scale))
            im = im.resize((rw, rh), Image.Resampling.BILINEAR)
            left, top = (rw - SIZE) // 2, (rh - SIZE) // 2
            out[i] = np.asarray(im.crop((left, top, left + SIZE, top + SIZE))).transpose(2, 0, 1)
    return out


def build(folder: Path, cache_dir: Path) -> Path:
    space = parse_space({
        "space": {"stages": [["c3", "c4"]]},
        "backbone": {"name": "proxy_resnet", "block": "basic", "width": 8, "depth": [1, 1, 1],
                     "input_size": [3, SIZE, SIZE], "num_classes": 10},
        "data": {"dataset": "imagefolder", "root": str(folder), "val_size": 500, "cache_dir": str(cache_dir)},
    }, "bench_prepare")  # fmt: skip
    prepared = cache.prepare(space, io.StringIO())
    return cache_dir / str(prepared.data.cache_key)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--images", type=int, default=8000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--folder", default="/tmp/gcsearch-prepare-folder")
    args = p.parse_args()
    folder = photo_folder(Path(args.folder), args.images)
    listing = cache.list_split(folder / "train")
    paths = [listing.folder / rel for rel, *_ in listing.files]
    base_s, ours_s = [], []
    with tempfile.TemporaryDirectory(prefix="gcsearch-prepare-") as tmp:
        for r in range(args.rounds):
            t0 = time.perf_counter()
            reference = single_thread_loop(paths)
            base_s.append(time.perf_counter() - t0)
            shutil.rmtree(Path(tmp) / "cache", ignore_errors=True)
            t0 = time.perf_counter()
            built = build(folder, Path(tmp) / "cache")
            ours_s.append(time.perf_counter() - t0)
            print(f"round {r + 1}: single-thread loop {base_s[-1]:.2f} s, prepare {ours_s[-1]:.2f} s", flush=True)
        manifest = json.loads((built / "manifest.json").read_text())
        # The cache holds the training rows and the validation rows of the split: compare each with its file.
        plan_rows = {"train": [], "val": []}
        from gcsearch.nn.readers import split_order

        order = split_order(len(paths), 0)
        plan_rows["val"], plan_rows["train"] = order[:500], order[500:]
        diffs = []
        for split, rows in plan_rows.items():
            x = np.load(built / f"{split}_x.npy", mmap_mode="r")
            diffs.append(np.abs(np.asarray(x, dtype=np.int16) - reference[rows].astype(np.int16)).ravel())
        diff = np.concatenate(diffs)
    ratios = [b / o for b, o in zip(base_s, ours_s, strict=True)]
    cores = len(os.sched_getaffinity(0))
    n = len(paths)
    text = "\n".join([
        "# `gcsearch prepare` against a single-thread PIL loop", "",
        f"Command: `python experiments/bench_prepare.py --images {args.images} --rounds {args.rounds}`. Machine: "
        f"{cores} cores, Python {sys.version.split()[0]}. Folder: {n:,d} JPEGs of 128-192 px (generated, not "
        f"committed), decoded to {SIZE}x{SIZE} RGB; {args.rounds} alternating rounds.", "",
        "| | seconds per round | images/s (median) |", "|---|---|---|",
        f"| single-thread PIL loop (full decode, resize, crop) | {' '.join(f'{s:.2f}' for s in base_s)} | "
        f"{n / statistics.median(base_s):,.0f} |",
        f"| gcsearch prepare ({cores} processes, JPEG draft, the whole build) | {' '.join(f'{s:.2f}' for s in ours_s)}"
        f" | {n / statistics.median(ours_s):,.0f} |", "",
        f"Speed-up (loop time / prepare time, median of the rounds): **{statistics.median(ratios):.2f}x** (rounds: "
        f"{', '.join(f'{r:.2f}' for r in ratios)}); goal >= 1.6x on 2 cores.", "",
        f"Pixels: the cache against the loop's full decode, over {manifest['counts']} images: mean absolute "
        f"difference {diff.mean():.2f} levels, 99th percentile {np.percentile(diff, 99):.0f}, largest {diff.max()} "
        "(draft decodes the JPEG at a reduced scale before the bilinear resize).",
    ]) + "\n"  # fmt: skip
    OUT.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
