"""How much memory a search takes, by process: the driver (`gcsearch run`), each trial worker, and Ray's own
processes, for the default space and for a user's ResNet-18 on an image folder at 112 and 224 px.

Each case is a real `gcsearch run` (2 trials, one at a time per core as a search runs them); every 0.25 s each
process of its tree is read from /proc: its peak resident set (VmHWM, the kernel's high-water mark, so nothing
between two samples is missed) and its current RSS. A process is the driver, a trial worker (Ray titles it
ray::ImplicitFunc), or Ray's own (raylet, GCS, agents, idle workers). The image folder is generated (10 classes of
JPEGs at 160-240 px, as photos come), not committed.

    python experiments/search_memory.py [--cases gc,resnet18-112,resnet18-224]

Writes experiments/results/search_memory.md (with its command) and the raw peaks to
experiments/data/search_memory.json. RSS does not depend on what else the machine runs; time does, and is not
measured here.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

from gcsearch.testing import descendants

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "experiments" / "results" / "search_memory.md"
RAW = ROOT / "experiments" / "data" / "search_memory.json"
MIB = 1024 * 1024


def photo_folder(root: Path, classes: int = 10, per_class: int = 40, seed: int = 0) -> Path:
    """JPEGs of 160-240 px (each class a smooth colour pattern of its own, with noise), train/ and val/."""
    rng = np.random.default_rng(seed)
    for split, n in (("train", per_class), ("val", per_class // 4)):
        for k in range(classes):
            folder = root / split / f"class{k}"
            folder.mkdir(parents=True, exist_ok=True)
            base = Image.fromarray(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8))
            for i in range(n):
                w, h = (int(v) for v in rng.integers(160, 241, 2))
                pixels = np.asarray(base.resize((w, h), Image.Resampling.BICUBIC), dtype=np.float64)
                pixels = np.clip(pixels + rng.normal(0, 30, pixels.shape), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.jpg", quality=90)
    return root


def space_file(case: str, folder: Path, out: Path) -> Path:
    if case == "gc":
        return ROOT / "search_spaces" / "gc.yaml"
    px = int(case.split("-")[1])
    space = {
        "space": {"pool": ["att"], "fusion": ["add"], "ratio": ["1/16"], "norm": ["layernorm"],
                  "stages": [["c3", "c4", "c5"], []], "position": ["after_1x1"]},
        "backbone": {"name": "resnet18", "input_size": [3, px, px], "num_classes": 10},
        "data": {"dataset": "imagefolder", "root": str(folder), "val_size": 40, "augment": {"flip": True}},
        "train": {"epochs": 1, "batch_size": 32, "lr": 0.05},
        "search": {"trials": 2, "sampler": "grid", "pruner": "none", "resources": {"cpu": 1}},
        "output": {"dir": str(out / "runs")},
    }  # fmt: skip
    path = out / f"{case}.yaml"
    path.write_text(yaml.safe_dump(space))
    return path


def role(pid: int, driver: int, title: str) -> str:
    if pid == driver:
        return "driver"
    if title.startswith("ray::") and ("ImplicitFunc" in title or "gcsearch_trial" in title):
        return "trial worker"
    return "Ray's own"


def status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def measure(case: str, folder: Path, work: Path) -> dict[str, object]:
    space = space_file(case, folder, work)
    cmd = [sys.executable, "-m", "gcsearch", "run", str(space), "--name", case, "--trials", "2"]
    proc = subprocess.Popen(cmd, cwd=work, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peaks: dict[int, tuple[str, int]] = {}  # pid -> (role, peak RSS KiB)
    rss_sum: dict[str, int] = {}  # role -> largest sum of current RSS over its processes at one moment
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            now: dict[str, int] = {}
            for pid, title in {proc.pid: "driver", **descendants(proc.pid)}.items():
                try:
                    hwm, rss = status_kib(pid, "VmHWM"), status_kib(pid, "VmRSS")
                except OSError:
                    continue
                r = role(pid, proc.pid, title)
                if peaks.get(pid, ("", 0))[0] == "trial worker":
                    r = "trial worker"  # a worker between trials is titled ray::IDLE: it stays a trial worker
                peaks[pid] = (r, max(hwm, peaks.get(pid, (r, 0))[1]))
                now[r] = now.get(r, 0) + rss
            for r, v in now.items():
                rss_sum[r] = max(rss_sum.get(r, 0), v)
            time.sleep(0.25)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.monotonic()
    output, _ = proc.communicate(timeout=3600)
    done.set()
    sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"{case}: gcsearch run exited {proc.returncode}:\n{output[-3000:]}")
    by_role: dict[str, list[int]] = {}
    for r, kib in peaks.values():
        by_role.setdefault(r, []).append(kib)
    return {"case": case, "wall_s": round(time.monotonic() - started, 1),
            "peak_mib": {r: sorted(round(k / 1024) for k in v) for r, v in by_role.items()},
            "largest_sum_mib": {r: round(v / 1024) for r, v in rss_sum.items()}}  # fmt: skip


NORMALISATION = """
import resource, sys
import numpy as np
from gcsearch.nn.cache import _normalisation
path, how = sys.argv[1], sys.argv[2]
x = np.load(path, mmap_mode="r")
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
if how == "whole":  # the rule before: the seeded sample as one float32 array
    rows = np.sort(np.random.default_rng(0).choice(len(x), min(2048, len(x)), replace=False))
    pixels = np.asarray(x[rows], dtype=np.float32).transpose(1, 0, 2, 3).reshape(x.shape[1], -1) / 255
    pixels.mean(1), pixels.std(1)
else:
    _normalisation(path)
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
"""


def normalisation_peak(work: Path, px: int = 224, images: int = 2400) -> dict[str, int]:
    """The driver's peak while it computes an image cache's normalisation statistics (2048 sampled images):
    the whole sample as float32 (before) against the chunked sums (now), each in a fresh process."""
    array = work / "train_x.npy"
    x = np.lib.format.open_memmap(array, mode="w+", dtype=np.uint8, shape=(images, 3, px, px))
    x[:] = np.random.default_rng(0).integers(0, 256, x.shape, dtype=np.uint8)
    x.flush()
    del x
    out = {}
    for how in ("whole", "chunked"):
        run = subprocess.run([sys.executable, "-c", NORMALISATION, str(array), how], capture_output=True, text=True,
                             check=True)  # fmt: skip
        out[how] = int(run.stdout.split()[-1])
    array.unlink()
    return out


def report(results: list[dict[str, object]], command: str, norm: dict[str, int] | None = None) -> str:
    lines = ["# Memory of a search, by process", "", f"Command: `{command}`", "",
             "Peak resident set (VmHWM) of each process of a 2-trial `gcsearch run`; Ray's own processes summed at "
             "their largest moment. Machine: 2 cores, CPU only.", "",
             "| space | driver (MiB) | each trial worker (MiB) | Ray's own, together (MiB) | all, at most (MiB) |",
             "|---|---|---|---|---|"]  # fmt: skip
    names = {"gc": "gc.yaml (the default search)", "resnet18-112": "ResNet-18, image folder at 112 px",
             "resnet18-224": "ResNet-18, image folder at 224 px"}  # fmt: skip
    for r in results:
        peak, sums = r["peak_mib"], r["largest_sum_mib"]
        assert isinstance(peak, dict) and isinstance(sums, dict)
        workers = ", ".join(map(str, peak.get("trial worker", []))) or "-"
        ray_own, total = sums.get("Ray's own", 0), sum(sums.values())
        lines.append(f"| {names.get(str(r['case']), r['case'])} | {max(peak.get('driver', [0]))} | {workers} | "
                     f"{ray_own} | {total} |")  # fmt: skip
    if norm:
        lines += ["", "The driver's share that was cut: computing an image cache's normalisation statistics over its "
                  f"2048 sampled images at 224 px (2,400 in the folder) raised the driver's peak by {norm['whole']} "
                  f"MiB as one float32 array (the rule before), by {norm['chunked']} MiB summed a chunk at a time "
                  f"(now): {norm['chunked'] / max(1, norm['whole']):.2f}x."]  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--cases", default="gc,resnet18-112,resnet18-224")
    args = p.parse_args()
    command = "python experiments/search_memory.py" + (f" --cases {args.cases}" if args.cases != p.get_default("cases")
                                                       else "")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="gcsearch-memory-") as tmp:
        work = Path(tmp)
        folder = photo_folder(work / "photos")
        results = []
        for case in args.cases.split(","):
            print(f"measuring {case} ...", flush=True)
            results.append(measure(case, folder, work))
            print(json.dumps(results[-1]), flush=True)
        norm = normalisation_peak(work)
    RAW.write_text(json.dumps({"command": command, "results": results, "normalisation_mib": norm}, indent=1) + "\n")
    OUT.write_text(report(results, shlex.join(command.split()), norm))
    print(OUT.read_text())


if __name__ == "__main__":
    main()
