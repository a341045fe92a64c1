"""What each command of the command line calls: one library function, its result printed. Parsing lives in
``cli.py``. Heavy modules (torch, ray, optuna) are imported inside the commands so ``gcsearch --help`` is instant.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from gcsearch.errors import ConfigError


def input_size(text: str) -> tuple[int, ...]:
    parts = text.split(",")
    if len(parts) != 4 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise ConfigError("--input", "must be N,C,H,W such as 1,3,224,224", text)
    return tuple(int(p) for p in parts)


def configs_count(text: str) -> int | None:  # --configs: 'all' (None) or a positive number of configurations
    if text != "all" and (not text.isdigit() or int(text) < 1):
        raise ConfigError("--configs", "must be 'all' or a positive integer", text)
    return None if text == "all" else int(text)


def cmd_macs(args: argparse.Namespace) -> None:
    from gcsearch.arch import ArchConfig
    from gcsearch.nn.flops import gc_cost

    size = input_size(args.input)
    c = gc_cost(ArchConfig.pairs(args.gc) if args.gc else None, size, backbone=args.backbone, num_classes=args.classes,
                in_channels=size[1], width=args.width, block=args.block)  # fmt: skip
    print(f"{args.backbone} at {'x'.join(map(str, size))}, {c.text()}")


def cmd_prepare(args: argparse.Namespace) -> None:
    from gcsearch.analysis import caches
    from gcsearch.nn import cache
    from gcsearch.spacefile import load_space

    space = load_space(args.space)
    if space.data.dataset != "imagefolder":
        print(f"nothing to prepare: {space.data.dataset} is small enough for each trial to read whole")
        return
    old = caches.older(space, cache.prepare(space, sys.stdout, test=args.test).data.cache_key or "")
    if args.prune:
        gone = caches.prune(old)
        print(f"removed {len(gone)} older caches ({sum(c.bytes for c in gone) / 2**20:,.1f} MiB); kept "
              f"{len(old) - len(gone)} that runs use")  # fmt: skip
    elif old:
        print(caches.describe(old, args.space))


def cmd_train(args: argparse.Namespace) -> None:
    from gcsearch.analysis.retrain import retrain

    retrain(args.config, args.arch, args.epochs, args.test, args.out)


def cmd_predict(args: argparse.Namespace) -> None:
    from gcsearch.analysis.predict import predict

    predict(args.export, args.images, args.top)


def cmd_pretrain(args: argparse.Namespace) -> None:
    from gcsearch.nn.pretrain import pretrain
    from gcsearch.spacefile import load_space

    out = pretrain(load_space(args.space), Path(args.out), sys.stdout)
    print(f"wrote {out}: name it as backbone.weights in a space file to fine-tune GC blocks into it")


def cmd_run(args: argparse.Namespace) -> None:
    from gcsearch.analysis.report import front_table, noise_note
    from gcsearch.search import rundir
    from gcsearch.search.start import run_or_resume

    run_dir, space, records = run_or_resume(args.space, resume=args.resume, name=args.name, trials=args.trials,
                                            address=args.address, dashboard=args.ray_dashboard)  # fmt: skip
    front = front_table(rundir.pareto_front(space, records), rundir.baseline_marks(space, records))
    print(f"\nPareto front (accuracy vs MACs, COMPLETE trials):\n{front}\n{noise_note(space, records)}")
    print(f"\nwrote {run_dir}/trials.csv, {run_dir}/pareto.csv; study: optuna-dashboard {run_dir}/optuna.log")


REPORTS = {  # command -> the library function that reports on its one path
    "validate": ("gcsearch.analysis.describe", "validate_file"),
    "latency": ("gcsearch.analysis.describe", "latency_report"),
    "pareto": ("gcsearch.analysis.report", "pareto_report"),
    "show": ("gcsearch.analysis.report", "show_report"),
    "importance": ("gcsearch.analysis.report", "importance_report"),
}


def cmd_report(args: argparse.Namespace) -> None:
    module, function = REPORTS[args.command]
    print(getattr(importlib.import_module(module), function)(args.path))


def cmd_export(args: argparse.Namespace) -> None:
    from gcsearch.analysis.export import export_run

    out = Path(args.out)
    choice, weights = export_run(args.run, out, args.pick, trial=args.trial, max_macs=args.max_macs,
                                 max_params=args.max_params, tolerance=args.tolerance, weights=args.weights,
                                 force=args.force)  # fmt: skip
    print(choice.describe(out, weights))


def cmd_ablate(args: argparse.Namespace) -> None:
    from gcsearch.analysis import ablate, factorial
    from gcsearch.spacefile import load_space

    space = load_space(args.space) if args.space else None
    if args.design == "balanced":
        factorial.run(space, args.curves, seeds=args.seeds, configs=args.configs, margin=args.margin,
                      name=args.name, address=args.address)  # fmt: skip
    elif space is None:
        raise ConfigError("space", "is needed: the space file to ablate", None)
    else:
        ablate.run(
            space,
            args.seeds,
            effect=args.effect,
            epochs=args.epochs,
            name=args.name,
            address=args.address,
            margin=args.margin,
        )


def cmd_dashboard(args: argparse.Namespace) -> None:
    from gcsearch.search import rundir

    rundir.serve_dashboard(args.run, args.port)


def cmd_confirm(args: argparse.Namespace) -> None:
    from gcsearch.analysis import confirm

    confirm.run(Path(args.run), args.top, args.seeds, address=args.address)


def cmd_bench_record(args: argparse.Namespace) -> None:
    from gcsearch.bench import record
    from gcsearch.search import rundir
    from gcsearch.spacefile import load_space

    space = load_space(args.space)
    out = record.record(space, rundir.new_run_dir(space, args.name, "record"), args.seeds, configs_count(args.configs),
                       reference_seeds=args.reference_seeds, address=args.address)  # fmt: skip
    print(f"wrote {out}")


def cmd_bench_fidelity(args: argparse.Namespace) -> None:
    from gcsearch.bench import fidelity

    print(fidelity.fidelity_report(args.curves, Path(args.out) if args.out else None, args.command_line))


def cmd_bench_replay(args: argparse.Namespace) -> None:
    from gcsearch.bench import replay
    from gcsearch.spacefile import load_space

    print(replay.run(args.curves, load_space(args.space), args.strategy, seeds=args.seeds, workers=args.workers,
                     budget=args.budget, jobs=args.jobs, out=Path(args.out) if args.out else None,
                     command=args.command_line))  # fmt: skip
