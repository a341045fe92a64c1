"""How far one training reproduces: the paper default of gc-cue-shapes.yaml retrained at seeds 0 and 1 with 1 and 2
threads, against what the recording holds for those seeds (one thread, its environment in
experiments/data/curves-cue-shapes.env.json). Trains 4 times, about 2 CPU-minutes each.

    python experiments/reproduce.py

Writes experiments/results/reproduce.md: per seed and thread count, the final accuracy and its difference from the
recording's; whether the environment (torch, build, CPU, threads) is the recording's.
"""

from __future__ import annotations

import dataclasses
import json
import shlex
import sys
import time
from pathlib import Path

from gcsearch.bench import curves
from gcsearch.nn import environment
from gcsearch.nn.train import pick_device, train
from gcsearch.spacefile import load_space

ROOT = Path(__file__).resolve().parent.parent
RECORDING = ROOT / "experiments" / "data" / "curves-cue-shapes.csv"
OUT = ROOT / "experiments" / "results" / "reproduce.md"


def main() -> None:
    space = load_space(ROOT / "search_spaces" / "gc-cue-shapes.yaml")
    default = space.reference()
    assert default is not None
    recorded = curves.Curves.of(curves.read(RECORDING))
    env_file = json.loads(RECORDING.with_suffix(".env.json").read_text())["environments"]
    rows = []
    for threads in (1, 2):
        sp = dataclasses.replace(space, train=dataclasses.replace(space.train, threads=threads, device="cpu"))
        for seed in (0, 1):
            start = time.process_time()
            got = train(default, sp, seed=seed).score
            env = environment.describe(pick_device("cpu"))
            was = recorded.final(default, seed)
            rows.append((threads, seed, got, was, time.process_time() - start, env))
            print(f"threads {threads} seed {seed}: {got:.4f} (recorded {was:.4f})", flush=True)
    same = {k: v for k, v in rows[0][5].items() if k != "threads"}
    recorded_env = {k: v for k, v in env_file[0].items() if k not in ("threads", "trainings")}
    lines = ["# How far one training reproduces", "", f"Command: `{shlex.join(['python', *sys.argv])}`. The paper "
             f"default ({default.label()}) of search_spaces/gc-cue-shapes.yaml, retrained from scratch on this "
             f"machine; the recording's value for the same seed from {RECORDING.relative_to(ROOT)}.", "",
             f"This machine: {json.dumps(same)}. The recording's: {json.dumps(recorded_env)} (one thread).", "",
             "| threads | seed | final accuracy now | recorded | difference | CPU-s |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for threads, seed, got, was, cpu, _ in rows:
        lines.append(f"| {threads} | {seed} | {got:.4f} | {was:.4f} | {got - was:+.4f} | {cpu:.0f} |")
    OUT.write_text("\n".join(lines) + "\n")
    print(OUT.read_text())


if __name__ == "__main__":
    main()
