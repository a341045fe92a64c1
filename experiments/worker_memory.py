"""Where does a trial worker's memory go, and what is its peak across a real search of gc.yaml?

Part 1, by stage, each in a fresh process (VmRSS after the stage, VmHWM = peak so far): the interpreter;
`import torch`; `import ray`; gc.yaml's data loaded; `import ray.tune`; an optimizer created; one
epoch of gc.yaml's proxy trained (`train()`), and that epoch as it was before (validation batches of
1024). It also counts the CUDA libraries mapped into the CPU-only process.

Part 2, a real `gcsearch run search_spaces/gc.yaml --trials N`: every 0.5 s, the RSS and PSS (shared pages
split among the processes sharing them: the fair share of one worker) of each Ray worker running a trial;
the peak per worker.

    python experiments/worker_memory.py [--trials 4]

Writes experiments/results/worker_memory.md.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GC = ROOT / "search_spaces" / "gc.yaml"
MIB = 1024 * 1024

LOAD = f"from gcsearch.spacefile import load_space\ns = load_space({str(GC)!r}); torch.set_num_threads(1)\n"
# Each stage adds its code to the previous ones' (a trial worker does all of them).
STEPS = [
    ("interpreter", ""),
    ("+ import torch", "import torch\n"),
    ("+ import ray", "import ray\n"),
    # A trial runs as Ray Tune's function trainable, whose import brings pandas and pyarrow.
    ("+ import ray.tune", "import ray.tune\n"),
    ("+ gc.yaml's data loaded", "from gcsearch import data\n" + LOAD
     + "splits = data.load(s.data, s.backbone.input_size, s.backbone.num_classes, s.train.seed)\n"),
    # torch.optim wraps add_param_group in torch._disable_dynamo, which imports torch._dynamo (and sympy).
    ("+ an optimizer (torch.optim.SGD)", "torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=0.1)\n"),
    ("+ one epoch of gc.yaml's proxy",
     "from gcsearch import train\ntrain.train(s.reference(), s, epochs=1, splits=splits)\n"),
]  # fmt: skip
STAGES = {name: "".join(code for _, code in STEPS[: i + 1]) for i, (name, _) in enumerate(STEPS)}
# The baseline, measured in the same run: the worker as it was, validating in batches of 1024.
STAGES["before: the same epoch, evaluation batches of 1024"] = STAGES["+ one epoch of gc.yaml's proxy"].replace(
    "train.train(",
    "evaluate = train.evaluate\n"
    "train.evaluate = lambda m, x, y, n: evaluate(m, x, y, n, batch_size=1024)\ntrain.train(",
)
BEFORE = "before: the same epoch, evaluation batches of 1024"
PROBE = """
import re
status = open('/proc/self/status').read()
kb = lambda key: int(re.search(key + r':\\s+(\\d+)', status).group(1))
cuda = {l.split()[-1] for l in open('/proc/self/maps') if re.search(r'cuda|cudnn|cublas|nccl|nvrtc', l)}
print(kb('VmRSS'), kb('VmHWM'), len(cuda))
"""


def stage(code: str) -> tuple[int, int, int]:
    out = subprocess.run([sys.executable, "-c", code + "\n" + PROBE], capture_output=True, text=True, cwd=ROOT,
                         check=True)  # fmt: skip
    rss, hwm, cuda = (int(x) for x in out.stdout.split()[-3:])
    return rss * 1024, hwm * 1024, cuda


def memory(pid: int) -> tuple[int, int]:
    """(RSS, PSS) in bytes of a live process."""
    fields = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        key, value = line.split(":", 1)
        fields[key] = int(value.split()[0]) * 1024
    return fields["Rss"], fields["Pss"]


def search(trials: int) -> tuple[dict[int, tuple[int, int]], float]:
    sys.path.insert(0, str(ROOT))
    from gcsearch.testing import trial_workers  # the process-tree helper the tests use

    peaks: dict[int, tuple[int, int]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "gcsearch", "run", str(GC), "--name", "mem", "--trials", str(trials)]
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                for pid in trial_workers(proc.pid):
                    try:
                        rss, pss = memory(pid)
                    except (OSError, KeyError, ValueError):
                        continue
                    old = peaks.get(pid, (0, 0))
                    peaks[pid] = (max(old[0], rss), max(old[1], pss))
                time.sleep(0.5)

        sampler = threading.Thread(target=sample)
        sampler.start()
        proc.wait()
        done.set()
        sampler.join()
        if proc.returncode != 0:
            raise SystemExit(f"the search failed with exit code {proc.returncode}")
        return peaks, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=4)
    args = parser.parse_args()
    lines = ["# Memory of a trial worker (gc.yaml, CPU)", "", f"Command: `python {' '.join(sys.argv)}`", "",
             "## By stage, each in a fresh process", "",
             "| stage | RSS after (MiB) | peak RSS so far (MiB) | CUDA libraries mapped |",
             "|---|---|---|---|"]  # fmt: skip
    peak: dict[str, int] = {}
    for name, code in STAGES.items():
        rss, hwm, cuda = stage(code)
        peak[name] = hwm
        lines.append(f"| {name} | {rss / MIB:.0f} | {hwm / MIB:.0f} | {cuda} |")
        print(lines[-1], flush=True)
    peaks, wall = search(args.trials)
    lines += ["", f"## A real search: `gcsearch run search_spaces/gc.yaml --trials {args.trials}` ({wall:.0f} s)", "",
              "| trial worker | peak RSS (MiB) | peak PSS (MiB) |", "|---|---|---|"]  # fmt: skip
    for i, (_, (rss, pss)) in enumerate(sorted(peaks.items())):
        lines.append(f"| {i} | {rss / MIB:.0f} | {pss / MIB:.0f} |")
    after, before = peak["+ one epoch of gc.yaml's proxy"], peak[BEFORE]
    lines += ["", f"One epoch's peak RSS, after / before: {after / MIB:.0f} / {before / MIB:.0f} MiB = "
              f"{after / before:.2f}."]  # fmt: skip
    if peaks:
        worst = max(r for r, _ in peaks.values())
        lines += [f"Largest peak RSS of a trial worker in the search: {worst / MIB:.0f} MiB "
                  f"(target: at most 1024 MiB; ratio {worst / (1024 * MIB):.2f})."]  # fmt: skip
    out = ROOT / "experiments" / "results" / "worker_memory.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
