"""Where does a trial worker's memory go, and does it stay flat over a long search of gc-fashion.yaml?

Part 1, by stage, each in a fresh process (/proc/self/smaps_rollup after the stage: RSS, its anonymous part, its
shared file-backed part, and the peak RSS so far): the interpreter; `import torch`; `import ray` and
`ray.tune`; gc.yaml's data loaded; one epoch of gc-fashion.yaml's proxy trained, then a second; and, for comparison,
`import torchvision.models`, which a worker no longer does.

Part 2, a long real search: `gcsearch run` on gc.yaml's recipe with --trials N and one trial at a time, so one
Ray worker is reused by every trial (reuse_actors). Every second the worker's RSS, PSS (shared pages split among
the processes sharing them) and anonymous memory are appended to experiments/data/worker_memory.csv; afterwards
each sample is given to the trial that was running (the journal's start and end times), and the first 10
trials' mean is compared with the last 10's.

    python experiments/worker_memory.py [--trials 100] [--skip-stages] [--resume RUN_DIR]

Writes experiments/results/worker_memory.md and worker_memory.png. A search stopped midway continues with
--resume (the samples so far are kept).
"""

from __future__ import annotations

import argparse
import csv
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
GC = ROOT / "search_spaces" / "gc-fashion.yaml"
SAMPLES = ROOT / "experiments" / "data" / "worker_memory.csv"
OUT = ROOT / "experiments" / "results" / "worker_memory.md"
MIB = 1024 * 1024

LOAD = f"from gcsearch.spacefile import load_space\ns = load_space({str(GC)!r}); torch.set_num_threads(1)\n"
# Each stage adds its code to the previous ones' (a trial worker does all of them).
STEPS = [
    ("interpreter", ""),
    ("+ import torch", "import torch\ntorch.zeros(1)\n"),
    ("+ import ray, ray.tune", "import ray, ray.tune\n"),  # Tune's function trainable brings pandas and pyarrow
    ("+ gc.yaml's data loaded", "from gcsearch.nn import data\n" + LOAD
     + "splits = data.load(s.data, s.backbone.input_size, s.backbone.num_classes, s.train.seed)\n"),
    ("+ one epoch of gc-fashion.yaml's proxy",
     "from gcsearch.nn import train\ntrain.train(s.reference(), s, epochs=1, splits=splits)\n"),
    ("+ a second epoch (another training)", "train.train(s.reference(), s, epochs=1, splits=splits)\n"),
    # What a worker no longer imports: torchvision, whose ops import torch._dynamo and sympy (so does torch.optim).
    ("+ import torchvision.models (not in a worker)", "import torchvision.models\n"),
]  # fmt: skip
PROBE = """
d = {}
for line in open('/proc/self/smaps_rollup'):
    p = line.split()
    if len(p) >= 2 and p[1].isdigit():
        d[p[0][:-1]] = int(p[1])
hwm = [int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM')][0]
print(d['Rss'], d['Anonymous'], d['Shared_Clean'] + d['Shared_Dirty'], hwm)
"""


def stage(code: str) -> list[int]:
    out = subprocess.run([sys.executable, "-c", code + "\n" + PROBE], capture_output=True, text=True, cwd=ROOT,
                         check=True)  # fmt: skip
    return [int(x) * 1024 for x in out.stdout.split()[-4:]]


def memory(pid: int) -> tuple[int, int, int]:
    """(RSS, PSS, anonymous) bytes of a live process."""
    fields = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        key, value = line.split(":", 1)
        fields[key] = int(value.split()[0]) * 1024
    return fields["Rss"], fields["Pss"], fields["Anonymous"]


def search(trials: int, resume: str | None) -> Path:
    """Run (or continue) the long search, sampling its trial worker every second into SAMPLES."""
    from gcsearch.testing import trial_workers

    if resume:
        run_dir = Path(resume)
        cmd = [sys.executable, "-m", "gcsearch", "run", "--resume", str(run_dir)]
    else:
        space = yaml.safe_load(GC.read_text())
        space["search"].update(trials=trials, concurrency=1)  # one worker, reused by every trial
        space["output"] = {"dir": str(ROOT / "runs")}  # the pretrained backbone is cached there
        path = ROOT / "runs" / "worker-memory.yaml"
        path.parent.mkdir(exist_ok=True)
        path.write_text(yaml.safe_dump(space, sort_keys=False))
        run_dir = ROOT / "runs" / f"worker-memory-{time.strftime('%Y%m%d-%H%M%S')}"
        cmd = [sys.executable, "-m", "gcsearch", "run", str(path), "--name", run_dir.name]
        SAMPLES.write_text("run,time,pid,rss,pss,anon\n")
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    done = threading.Event()

    def sample() -> None:
        with SAMPLES.open("a") as out:
            while not done.is_set():
                for pid in trial_workers(proc.pid):
                    try:
                        rss, pss, anon = memory(pid)
                    except (OSError, KeyError, ValueError):
                        continue
                    out.write(f"{run_dir.name},{time.time():.1f},{pid},{rss},{pss},{anon}\n")
                out.flush()
                time.sleep(1.0)

    sampler = threading.Thread(target=sample)
    sampler.start()
    _, err = proc.communicate()
    done.set()
    sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"the search failed with exit code {proc.returncode}: {err[-500:]}")
    return run_dir


def per_trial(run_dir: Path) -> list[tuple[int, float, float, float, int]]:
    """(trial number, mean RSS, mean PSS, mean anonymous bytes, samples) of each trial that was sampled."""
    from gcsearch.search import rundir

    study = rundir.load_main_study(run_dir)
    spans = [(t.number, t.datetime_start.timestamp(), t.datetime_complete.timestamp())
             for t in study.get_trials(deepcopy=False) if rundir.was_trained(t) and t.datetime_complete]  # fmt: skip
    rows = [r for r in csv.DictReader(SAMPLES.open()) if r["run"] == run_dir.name]
    out = []
    for number, start, end in sorted(spans):
        inside = [r for r in rows if start <= float(r["time"]) <= end]
        if inside:
            mean = [statistics.fmean(float(r[k]) for r in inside) for k in ("rss", "pss", "anon")]
            out.append((number, *mean, len(inside)))
    return out


def plot(run_dir: Path, trials: list[tuple[int, float, float, float, int]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from gcsearch.files import save_figure

    rows = [r for r in csv.DictReader(SAMPLES.open()) if r["run"] == run_dir.name]
    t0 = float(rows[0]["time"])
    fig, (ax, bx) = plt.subplots(2, 1, figsize=(9, 6.5), dpi=120)
    for key, label in (("rss", "RSS"), ("pss", "PSS"), ("anon", "anonymous")):
        ax.plot([(float(r["time"]) - t0) / 60 for r in rows], [float(r[key]) / MIB for r in rows], lw=0.8, label=label)
    ax.set(xlabel="minutes into the search", ylabel="MiB", title="the trial worker, sampled every second")
    ax.legend(fontsize=8)
    for i, label in enumerate(("RSS", "PSS", "anonymous")):
        bx.plot([t[0] for t in trials], [t[1 + i] / MIB for t in trials], ".-", lw=0.8, label=label)
    bx.set(xlabel="trial number", ylabel="mean MiB during the trial")
    bx.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, out)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--skip-stages", action="store_true", help="keep part 1 of the last results file")
    parser.add_argument("--resume", help="continue the search in this run directory (samples kept)")
    parser.add_argument("--label", help="write worker_memory-LABEL.md/.png/.csv (another torch build, say)")
    args = parser.parse_args()
    if args.label:
        global SAMPLES, OUT
        SAMPLES = SAMPLES.with_name(f"worker_memory-{args.label}.csv")
        OUT = OUT.with_name(f"worker_memory-{args.label}.md")
    import torch

    build = f"torch {torch.__version__} ({'CUDA' if torch.version.cuda else 'CPU-only'} build)"
    lines = [f"# Memory of a trial worker (gc.yaml, CPU; {build})", "", f"Command: `python {' '.join(sys.argv)}`", ""]
    if not args.skip_stages:
        lines += ["## By stage, each in a fresh process", "",
                  "| stage | RSS (MiB) | of it anonymous | of it shared file pages | peak RSS so far |",
                  "|---|---|---|---|---|"]  # fmt: skip
        for i in range(len(STEPS)):
            try:
                rss, anon, shared, hwm = stage("".join(code for _, code in STEPS[: i + 1]))
            except subprocess.CalledProcessError as err:  # torchvision absent, say: the stages end there
                lines.append(f"| {STEPS[i][0]} | not measured: {err.stderr.strip().splitlines()[-1]} | | | |")
                break
            lines.append(
                f"| {STEPS[i][0]} | {rss / MIB:.0f} | {anon / MIB:.0f} | {shared / MIB:.0f} | {hwm / MIB:.0f} |"
            )
            print(lines[-1], flush=True)
        lines.append("")
    elif OUT.is_file():
        old = OUT.read_text().split("## A long search")[0].split("\n")[4:]
        lines += [line for line in old if line.strip() or line == ""]
    start = time.perf_counter()
    run_dir = search(args.trials, args.resume)
    trials = per_trial(run_dir)
    picture = OUT.with_suffix(".png")
    plot(run_dir, trials, picture)
    first, last = trials[:10], trials[-10:]

    def mean(rows: list, i: int) -> float:
        return statistics.fmean(r[i] for r in rows) / MIB

    lines += [f"## A long search: {len(trials)} trials of gc-fashion.yaml's recipe, one reused worker ({run_dir.name}, "
              f"{(time.perf_counter() - start) / 60:.0f} min)", "",
              "| trials | mean RSS (MiB) | mean PSS (MiB) | mean anonymous (MiB) |", "|---|---|---|---|",
              f"| first 10 | {mean(first, 1):.0f} | {mean(first, 2):.0f} | {mean(first, 3):.0f} |",
              f"| last 10 | {mean(last, 1):.0f} | {mean(last, 2):.0f} | {mean(last, 3):.0f} |",
              f"| last / first | {mean(last, 1) / mean(first, 1):.3f} | {mean(last, 2) / mean(first, 2):.3f} | "
              f"{mean(last, 3) / mean(first, 3):.3f} |", "",
              f"Largest per-trial mean RSS: {max(r[1] for r in trials) / MIB:.0f} MiB; samples: {SAMPLES.name} "
              f"(run {run_dir.name}).", "", f"![memory]({picture.name})"]  # fmt: skip
    OUT.write_text("\n".join(lines) + "\n")
    print("\n".join(lines[-12:]))
    print(f"wrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
