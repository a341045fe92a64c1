"""One trial, as a Ray worker runs it: the trainable Tune calls with a trial's config. Worker side only: it imports
no Optuna (what decides stays on the driver), and torch and the trainer only when it runs.

A trial loads its data (the preprocessing it records is that data's), measures its latency when latency is an
objective, trains from its checkpoint (a retried or resumed trial continues where it stopped), and reports each
epoch to Tune with what the driver records once: where it ran, what its data needs at inference, its setup time
and the CPU-seconds it has spent. It writes its own log, ``logs/trial-NNNN.log`` in the run directory: what it
trained, each epoch, and the traceback of whatever it raised.
"""

from __future__ import annotations

import json
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gcsearch import failpoints
from gcsearch.arch import ArchConfig
from gcsearch.epoch import Epoch
from gcsearch.errors import TrainingDiverged
from gcsearch.search import attrs
from gcsearch.space import SearchSpace


def make_trainable(space: SearchSpace, paths: dict[str, str], threads: int) -> Callable[[dict[str, Any]], None]:
    """The function Tune runs per trial. ``paths``: the run directory's per-trial file templates (checkpoint,
    outcomes, log), as plain strings: the worker never imports the run directory's module (Optuna). The validated
    space travels as it is: no re-parsing."""
    # Latency as an objective: each trial measures its configuration on its own cores (or GPU) before it trains,
    # once per configuration and machine (a cache under output.dir, a lock so two never measure at once).
    latency_dir = str(Path(space.output_dir).resolve() / "latency") if "latency" in space.search.objectives else ""

    def gcsearch_trial(config: dict[str, Any]) -> None:
        started, cpu_start = time.perf_counter(), time.process_time()
        number = config["number"]
        log = Path(paths["log"].format(number))
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("a", buffering=1) as out:
            try:
                _trial(config, out, started, cpu_start)
            except BaseException:
                out.write(traceback.format_exc())
                raise

    def _trial(config: dict[str, Any], out: Any, started: float, cpu_start: float) -> None:
        import ray
        import torch
        from ray import tune

        from gcsearch.nn import data as datasets
        from gcsearch.nn import environment, preprocess
        from gcsearch.nn.train import pick_device, train

        number, seed = config["number"], config.get("seed")
        torch.set_num_threads(threads)
        env = environment.describe(pick_device(space.train.device))
        arch = ArchConfig.from_dict(config["arch"])
        node = ray.get_runtime_context().get_node_id()
        out.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} trial {number}: {arch.label()}, seed "
                  f"{space.train.seed if seed is None else seed}, node {node[:12]}, {json.dumps(env)}\n")  # fmt: skip
        b = space.backbone
        splits = datasets.load(space.data, b.input_size, b.num_classes, seed=space.train.seed)
        needs = preprocess.of(splits, b.input_size).to_dict()
        facts: dict[str, Any] = {"node": node, attrs.ENV: json.dumps(env, sort_keys=True),
                                 attrs.PREPROCESS: json.dumps(needs)}  # fmt: skip
        if latency_dir:
            from gcsearch.nn.latency import latency

            facts["latency"] = latency(arch, b, space.search.latency, Path(latency_dir)).median_ms
            out.write(f"latency {facts['latency']:.3f} ms\n")
        setup: list[float] = []

        def report(epoch: Epoch) -> None:
            extra = {**facts, "cpu_seconds": time.process_time() - cpu_start}
            if not setup and not epoch.replayed:
                # Imports, data load and model build before the first epoch: per-trial overhead.
                setup.append(time.perf_counter() - started - epoch.epoch_seconds)
                extra["setup_seconds"] = setup[0]
            again = " (replayed from its checkpoint)" if epoch.replayed else ""
            out.write(f"epoch {epoch.done}/{space.train.epochs}: accuracy {epoch.accuracy:.4f}, loss {epoch.loss:.4f}, "
                      f"train loss {epoch.train_loss:.4f}, {epoch.seconds:.1f} s{again}\n")  # fmt: skip
            failpoints.hit("report")
            tune.report({**{k: v for k, v in epoch.as_dict().items() if v is not None}, **extra})

        try:
            # Resumes from the checkpoint file when a retry or a resumed search reruns this trial.
            train(arch, space, report, checkpoint=paths["checkpoint"].format(number), seed=seed, splits=splits,
                  outcomes=paths["outcomes"].format(number))  # fmt: skip
        except TrainingDiverged as err:
            # Reported, not raised: a retry would diverge the same way.
            out.write(f"diverged: {err}\n")
            tune.report({"diverged": str(err), "epoch": -1, "accuracy": float("nan")})

    return gcsearch_trial
