"""A fault campaign: cut the power to a search at each of many named points, resume it, and compare the result
with an uninterrupted run of the same search.

The search: a small image folder this script generates (8 classes, 48-72 px JPEGs and PNGs), decoded into a
data cache; a baseline pretrained for two epochs into which GC is fine-tuned; every configuration of a 9-point
space once (``sampler: grid``, one trial at a time, so the uninterrupted run is deterministic), 3 epochs each,
pruned by the default pruner. Each point arms one failpoint (gcsearch/failpoints.py) in a fresh `gcsearch run`:
at the point the driver's whole process group (the driver, its local Ray and the trial workers) is SIGKILLed, and
orphans are reaped. Then `gcsearch run --resume`, and the checks:

    lost        a trial finished before the kill missing or changed after; or a configuration the uninterrupted
                run trained that the resumed run did not
    duplicated  a configuration trained by two trials
    scratch     a trial (or the pretraining) unfinished at the kill, with a checkpoint of e epochs, that did not
                continue from it
    traceback   a traceback in the resume's output, or a resume that exits non-zero
    front       the final Pareto front (configurations and accuracies) differs from the uninterrupted run's
    litter      temporary files or directories left behind (a kill mid-write leaves its temporary file)

Also, once each on an unarmed search: a trial worker SIGKILLed mid-trial, and the raylet SIGKILLed mid-search.

    python experiments/faults.py [--work /tmp/gcsearch-faults] [--only POINT ...]

Resumable: each point's outcome is appended to experiments/data/faults.jsonl as it finishes, and a rerun skips
the points already there. Writes experiments/results/faults.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "experiments" / "results" / "faults.md"
LOG = ROOT / "experiments" / "data" / "faults.jsonl"
GCSEARCH = [sys.executable, "-m", "gcsearch"]
MARK = "GCSEARCH_FAULT_CAMPAIGN"  # in every process of a campaign run's environment: how orphans are found


def space(work: Path, output: Path) -> Path:
    """The campaign's space file, its outputs (runs, pretrained weights, latency) under ``output``."""
    doc = {
        "space": {"pool": ["att", "avg"], "fusion": ["add", "mul"], "ratio": ["1/4"], "norm": ["layernorm"],
                  "stages": [["c3", "c4"], ["c4"], []], "position": ["after_1x1"], "gate_init": ["identity"]},
        "backbone": {"name": "proxy_resnet", "block": "basic", "width": 8, "depth": [1, 1, 1],
                     "input_size": [3, 48, 48], "num_classes": 8, "pretrain": {"epochs": 2, "lr": 0.1}},
        "data": {"dataset": "imagefolder", "root": str(work / "images"), "val_size": 64,
                 "cache_dir": str(output / "cache"), "augment": {"flip": True, "crop_padding": 4}},
        "train": {"epochs": 3, "batch_size": 32, "lr": 0.05, "threads": 1, "seed": 0},
        "search": {"objectives": ["accuracy", "macs"], "trials": 9, "sampler": "grid", "concurrency": 1,
                   "reference_seeds": 1},
        "output": {"dir": str(output)},
    }  # fmt: skip
    path = output / "space.yaml"
    output.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def reap(marker: str) -> None:
    """SIGKILL every process whose environment holds ``marker`` (orphans of a killed run: Ray's daemons)."""
    needle = marker.encode()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if needle in (entry / "environ").read_bytes():
                    os.kill(int(entry.name), signal.SIGKILL)
            except (OSError, ProcessLookupError):
                continue


def launch(args: list[str], cwd: Path, marker: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    """``gcsearch ARGS`` as the leader of its own process group, which GCSEARCH_FAILPOINT_PGID names."""
    env = {**os.environ, **(env or {}), MARK: marker, "RAY_DEDUP_LOGS": "0"}
    script = 'export GCSEARCH_FAILPOINT_PGID=$$; exec "$@"'
    return subprocess.Popen(["bash", "-c", script, "bash", *GCSEARCH, *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)  # fmt: skip


def snapshot(run_dir: Path) -> dict:
    """What the run directory holds: finished trials, unfinished ones, and each checkpoint's epochs."""
    import torch

    from gcsearch.search import rundir

    out: dict = {"finished": {}, "running": [], "checkpoints": {}}
    if (run_dir / "optuna.log").is_file():
        try:
            study = rundir.load_main_study(run_dir)
            for t in study.get_trials(deepcopy=False):
                if t.state.name in ("COMPLETE", "PRUNED", "FAIL"):
                    out["finished"][t.number] = [t.state.name, t.values, t.user_attrs.get("arch")]
                elif t.state.name == "RUNNING":
                    out["running"].append(t.number)
        except Exception as err:  # what a reader makes of the journal is an outcome
            out["unreadable"] = f"{type(err).__name__}: {err}"
    for ckpt in sorted((run_dir / "checkpoints").glob("trial-*.pt")):
        try:
            out["checkpoints"][int(ckpt.stem.split("-")[1])] = int(torch.load(ckpt, weights_only=True)["epoch"]) + 1
        except Exception as err:
            out["checkpoints"][int(ckpt.stem.split("-")[1])] = f"unreadable: {err}"
    return out


def trained(run_dir: Path) -> tuple[dict[str, list], list[dict]]:
    """{configuration: [(number, state, accuracy, epochs, resumed_at)]} of the trained trials, and the front."""
    from gcsearch import pareto
    from gcsearch.arch import AXES
    from gcsearch.search import attrs, rundir

    study = rundir.load_main_study(run_dir)
    by_number = {t.number: t for t in study.get_trials(deepcopy=False)}
    configs: dict[str, list] = {}
    for r in pareto.trained(rundir.records(study)):
        t = by_number[r.number]
        configs.setdefault(json.dumps(r.arch.to_dict(), sort_keys=True), []).append(
            [r.number, r.state, r.accuracy, t.user_attrs.get(attrs.EPOCHS), t.user_attrs.get(attrs.RESUMED_AT)]
        )
    front = []
    if (run_dir / "pareto.csv").is_file():
        import csv

        with open(run_dir / "pareto.csv") as f:
            # by configuration, accuracy and MACs: not by trial number (a rerun trial may get a new one)
            front = sorted([[row[a] for a in AXES] + [row["accuracy"], row["macs"]] for row in csv.DictReader(f)])
    return configs, front


def litter(output: Path) -> list[str]:
    return sorted(str(p.relative_to(output)) for p in output.rglob(".*.tmp-*"))


def uninterrupted(work: Path, marker: str) -> dict:
    out = work / "reference"
    shutil.rmtree(out, ignore_errors=True)
    path = space(work, out)
    start = time.perf_counter()
    proc = launch(["run", str(path), "--name", "run"], work, marker)
    text, _ = proc.communicate(timeout=1200)
    reap(marker)
    if proc.returncode != 0:
        sys.exit(f"the uninterrupted run failed ({proc.returncode}):\n{text[-3000:]}")
    configs, front = trained(out / "run")
    journal = (out / "run" / "optuna.log").read_bytes().count(b"\n")
    return {"configs": configs, "front": front, "journal": journal, "seconds": time.perf_counter() - start}


def points(journal: int) -> list[str]:
    """At least 50 distinct kill points across the search's writes (failpoints' names)."""
    spread = sorted({max(1, round(journal * k / 25)) for k in range(1, 25)})  # the n-th journal append
    ckpt = "*/checkpoints/trial-*.pt"
    return (
        [f"journal:{n}" for n in spread]
        + [f"journal-torn:{n}" for n in sorted({max(1, round(journal * k / 7)) for k in range(1, 7)})]
        + [f"written@{ckpt}:{n}" for n in (1, 2, 4, 7)]
        + [f"replaced@{ckpt}:{n}" for n in (1, 3, 5, 8)]
        + ["replaced@*.pretraining.pt:1", "written@*/pretrained/*.pt:1", "replaced@*/pretrained/*.pt:1"]
        + ["cache-chunk:1", "cache-chunk:2", "written@*/manifest.json:1"]
        + ["written@*/space.yaml:1", "replaced@*/space.yaml:1"]
        + [f"report:{n}" for n in (1, 2, 5)]
        + [f"result:{n}" for n in (1, 3, 6, 10)]
        + ["written@*/trials.csv:1", "replaced@*/pareto.csv:1", "written@*/pareto.png:1"]
    )


def fresh_outputs(point: str) -> bool:
    """Points inside the data cache's build or the pretraining need an output directory without them."""
    return point.startswith("cache-chunk") or "manifest.json" in point or "pretrain" in point


def one_point(work: Path, point: str, reference: dict, marker: str) -> dict:
    name = point.replace("/", "_").replace("*", "x").replace("@", "_at_").replace(":", "_")
    out = work / "points" / name
    shutil.rmtree(out, ignore_errors=True)
    path = space(work, out)
    if not fresh_outputs(point):  # the cache and the pretrained baseline as the uninterrupted run left them
        for part in ("cache", "pretrained"):
            shutil.copytree(work / "reference" / part, out / part)
    run_dir = out / "run"
    row: dict = {"point": point}
    start = time.perf_counter()
    proc = launch(["run", str(path), "--name", "run"], work, marker, {"GCSEARCH_FAILPOINT": point})
    text, _ = proc.communicate(timeout=1200)
    reap(marker)
    row["killed"] = proc.returncode == -signal.SIGKILL
    row["armed_rc"] = proc.returncode
    if not row["killed"]:
        row["armed_tail"] = text[-600:]
    before = snapshot(run_dir)
    row["finished_at_kill"] = len(before["finished"])
    row["unfinished_at_kill"] = {n: before["checkpoints"].get(n, 0) for n in before["running"]}
    row["journal_unreadable"] = before.get("unreadable")
    resume_args = ["run", "--resume", str(run_dir)] if run_dir.is_dir() else ["run", str(path), "--name", "run"]
    proc = launch(resume_args, work, marker)
    text, _ = proc.communicate(timeout=1200)
    reap(marker)
    row["resume_rc"] = proc.returncode
    row["traceback"] = "Traceback" in text
    if row["traceback"]:
        row["traceback_tail"] = traceback_excerpt(text)
    row["pretraining_continued"] = "continuing the pretraining" in text
    if proc.returncode != 0 or row["traceback"]:
        row["resume_tail"] = text[-1500:]
    row["seconds"] = round(time.perf_counter() - start, 1)
    if proc.returncode != 0:
        return row
    after = snapshot(run_dir)
    configs, front = trained(run_dir)
    lost = [n for n, rec in before["finished"].items() if after["finished"].get(n) != rec]
    lost += [c for c in reference["configs"] if c not in configs]
    row["lost"] = len(lost)
    row["duplicated"] = sum(len(v) - 1 for v in configs.values() if len(v) > 1)
    scratch = []
    for number, epochs in row["unfinished_at_kill"].items():
        if isinstance(epochs, int) and epochs > 0:
            resumed = next((rec[4] for recs in configs.values() for rec in recs if rec[0] == number), None)
            state = next((rec[1] for recs in configs.values() for rec in recs if rec[0] == number), None)
            if state is not None and not resumed:
                scratch.append(number)
    # a pretraining killed after its first epoch's checkpoint must continue from it, too
    row["scratch"] = len(scratch) + (".pretraining.pt" in point and not row["pretraining_continued"])
    row["front_same"] = front == reference["front"]
    if not row["front_same"]:
        row["front"] = front
    accs = {c: [r[2] for r in v] for c, v in configs.items()}
    ref_accs = {c: [r[2] for r in v] for c, v in reference["configs"].items()}
    row["accuracies_same"] = accs == ref_accs
    row["litter"] = litter(out)
    return row


def traceback_excerpt(text: str) -> str:
    """What a user saw around the first traceback: the lines before it and the traceback itself."""
    at = text.index("Traceback")
    return text[max(0, at - 400) : at + 2000]


def kill_once(work: Path, what: str, reference: dict, marker: str) -> dict:
    """An unarmed search, and ``what`` (a trial worker, or the raylet) SIGKILLed once its second trial trains;
    then a resume if the search did not finish."""
    from gcsearch.testing import descendants, trial_workers

    out = work / "points" / f"kill-{what}"
    shutil.rmtree(out, ignore_errors=True)
    path = space(work, out)
    for part in ("cache", "pretrained"):
        shutil.copytree(work / "reference" / part, out / part)
    run_dir = out / "run"
    row: dict = {"point": f"SIGKILL the {what}"}
    start = time.perf_counter()
    proc = launch(["run", str(path), "--name", "run"], work, marker)
    victim = None
    while proc.poll() is None and victim is None:
        time.sleep(0.5)
        done = snapshot(run_dir)["finished"] if (run_dir / "optuna.log").is_file() else {}
        if len(done) >= 2:
            tree = descendants(proc.pid)
            pids = trial_workers(proc.pid) if what == "trial worker" else [
                p for p, cmd in tree.items() if "/raylet " in cmd or cmd.split(" ")[0].endswith("raylet")]  # fmt: skip
            if pids:
                victim = pids[0]
                os.kill(victim, signal.SIGKILL)
    text, _ = proc.communicate(timeout=1200)
    reap(marker)
    row["killed"] = victim is not None
    row["armed_rc"] = proc.returncode
    row["armed_tail"] = text[-800:]
    row["traceback"] = "Traceback" in text
    if row["traceback"]:
        row["traceback_tail"] = traceback_excerpt(text)
    if proc.returncode != 0:
        resume = launch(["run", "--resume", str(run_dir)], work, marker)
        text, _ = resume.communicate(timeout=1200)
        reap(marker)
        row["resume_rc"] = resume.returncode
        if "Traceback" in text:
            row["traceback"], row["traceback_tail"] = True, traceback_excerpt(text)
        row["resume_tail"] = text[-800:]
    row["seconds"] = round(time.perf_counter() - start, 1)
    configs, front = trained(run_dir)
    row["lost"] = sum(c not in configs for c in reference["configs"])
    row["duplicated"] = sum(len(v) - 1 for v in configs.values() if len(v) > 1)
    row["front_same"] = front == reference["front"]
    row["accuracies_same"] = {c: [r[2] for r in v] for c, v in configs.items()} == {
        c: [r[2] for r in v] for c, v in reference["configs"].items()
    }
    row["litter"] = litter(out)
    return row


def report(rows: list[dict], reference: dict, command: str) -> None:
    def ok(row: dict) -> bool:
        return (
            row.get("resume_rc", 0) == 0
            and not row.get("traceback")
            and row.get("lost") == 0
            and row.get("duplicated") == 0
            and row.get("scratch", 0) == 0
            and row.get("front_same")
            and not row.get("litter")
        )

    landed = [r for r in rows if r.get("killed")]
    lines = [
        "# Fault campaign: the power cut at named points, then `gcsearch run --resume`",
        "",
        f"Command: `{command}`. Machine: {platform.node()}, {os.cpu_count()} cores, CPU only. The uninterrupted "
        f"run: {len(reference['configs'])} configurations trained, {reference['journal']} journal records, "
        f"{reference['seconds']:.0f} s. Points tried: {len(rows)}; the kill landed at {len(landed)}; all checks "
        f"held at {sum(ok(r) for r in landed)} of them. Each point's latest outcome is kept in "
        f"{LOG.relative_to(ROOT)}; the points ran over several sittings, and each point a fix touched was run again "
        "after it (the reference's accuracies are matched throughout: the code changes kept training bit-identical).",
        "",
        "| point | killed | finished / unfinished (checkpoint epochs) at the kill | resume rc | lost | duplicated "
        "| from scratch | traceback | same front | same accuracies | litter |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        unfinished = ", ".join(f"#{n}: {e}" for n, e in r.get("unfinished_at_kill", {}).items()) or "-"
        lines.append(
            f"| `{r['point']}` | {'yes' if r.get('killed') else 'no (rc ' + str(r.get('armed_rc')) + ')'} | "
            f"{r.get('finished_at_kill', '-')} / {unfinished} | {r.get('resume_rc', '-')} | {r.get('lost', '-')} | "
            f"{r.get('duplicated', '-')} | {r.get('scratch', '-')} | {'yes' if r.get('traceback') else 'no'} | "
            f"{'yes' if r.get('front_same') else 'NO'} | {'yes' if r.get('accuracies_same') else 'no'} | "
            f"{len(r.get('litter') or [])} |"
        )
    failed = [r for r in rows if not ok(r)]
    if failed:
        lines += ["", "## Points where a check failed", ""]
        for r in failed:
            lines.append(f"- `{r['point']}`: " + json.dumps({k: v for k, v in r.items() if k != "point"})[:1500])
    OUT.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", type=Path, default=Path("/tmp/gcsearch-faults"))
    p.add_argument("--only", nargs="*", help="these points only (failpoint specs, or 'trial worker' / 'raylet')")
    p.add_argument("--fresh", action="store_true", help="forget the points already in the log")
    args = p.parse_args()
    from gcsearch.testing import image_folder

    command = "python " + " ".join(shlex.quote(a) for a in [str(Path(__file__).relative_to(ROOT)), *sys.argv[1:]])
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    if not (work / "images").is_dir():
        image_folder(work / "images", classes=8, per_class=30, test_per_class=2, size=48)
    marker = f"{MARK}-{os.getpid()}"
    ref_file = work / "reference.json"
    if ref_file.is_file() and (work / "reference" / "run").is_dir():
        reference = json.loads(ref_file.read_text())
    else:
        print("the uninterrupted run", flush=True)
        reference = uninterrupted(work, marker)
        ref_file.write_text(json.dumps(reference))
    done = {}
    if LOG.is_file() and not args.fresh:
        for line in LOG.read_text().splitlines():
            try:
                outcome = json.loads(line)
            except json.JSONDecodeError:
                continue  # blank, or torn by a kill mid-write: that point runs again
            done[outcome["point"]] = outcome
    todo = args.only or [*points(reference["journal"]), "trial worker", "raylet"]
    LOG.parent.mkdir(parents=True, exist_ok=True)
    for point in todo:
        point = point.removeprefix("SIGKILL the ")
        label = f"SIGKILL the {point}" if point in ("trial worker", "raylet") else point
        if label in done:
            continue
        print(f"point {label}", flush=True)
        if point in ("trial worker", "raylet"):
            row = kill_once(work, point, reference, marker)
        else:
            row = one_point(work, point, reference, marker)
        print("  " + json.dumps({k: v for k, v in row.items() if not k.endswith("_tail")}), flush=True)
        with open(LOG, "a") as f:
            f.write(json.dumps(row) + "\n")
        done[label] = row
    order = [*points(reference["journal"]), "trial worker", "raylet"]
    labels = [f"SIGKILL the {o}" if o in ("trial worker", "raylet") else o for o in order]
    rows = [done[label] for label in labels if label in done] + [r for k, r in done.items() if k not in labels]
    report(rows, reference, command)


if __name__ == "__main__":
    main()
