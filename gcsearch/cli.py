"""Command line: parse flags, run the command (``commands.py``: one library call each), turn GcsearchError into
its exit code (2; 130 for Ctrl-C) with one line."""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from gcsearch.commands import (
    cmd_ablate,
    cmd_bench_fidelity,
    cmd_bench_record,
    cmd_bench_replay,
    cmd_confirm,
    cmd_dashboard,
    cmd_export,
    cmd_macs,
    cmd_predict,
    cmd_prepare,
    cmd_pretrain,
    cmd_report,
    cmd_run,
    cmd_train,
)
from gcsearch.errors import GcsearchError, Interrupted
from gcsearch.pareto import PICK_RULES  # pure Python: keeps --help instant


class _Parser(argparse.ArgumentParser):
    """Usage mistakes get the same one line and exit code 2 as every other bad input."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {one_line(message)} (see {self.prog} --help)\n")


def one_line(message: str) -> str:
    """Errors quote what the user gave, which may hold newlines: escape them, keep one line."""
    return message.replace("\r", "\\r").replace("\n", "\\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="gcsearch", description="Neural architecture search over Global Context (GCNet) blocks.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, func: Callable[[argparse.Namespace], None], text: str, parent: Any = sub) -> Any:
        p = parent.add_parser(name, help=text)
        p.set_defaults(func=func)
        return p

    macs = command("macs", cmd_macs, "MACs and params of a backbone with GC blocks")
    macs.add_argument("backbone", help="resnet18|resnet34|resnet50|resnet101|proxy_resnet")
    macs.add_argument("--gc", nargs="+", metavar="KEY=VALUE", help="GC settings, e.g. stages=c3,c4,c5 ratio=1/16 "
                      "pool=att fusion=add; 'none' = baseline")  # fmt: skip
    macs.add_argument("--input", default="1,3,224,224", help="N,C,H,W (default 1,3,224,224)")
    macs.add_argument("--classes", type=int, default=1000, help="classifier outputs (default 1000)")
    macs.add_argument("--width", type=int, default=16, help="proxy_resnet only: stem width (default 16)")
    macs.add_argument("--block", default="basic", help="proxy_resnet only: basic|bottleneck (default basic)")

    prepare = command("prepare", cmd_prepare, "decode an image folder once into the cache every trial maps")
    prepare.add_argument("space", help="a space file with data.dataset: imagefolder")
    prepare.add_argument("--test", action="store_true", help="also the test split (the folder's val/)")
    prepare.add_argument("--prune", action="store_true", help="remove this folder's older caches no run uses")

    train = command("train", cmd_train, "train one architecture at full fidelity")
    train.add_argument("config", help="a space file, or an export (best.yaml)")
    train.add_argument("--arch", help="paper-default (a space file's default: the paper default as a point of the "
                       "space), baseline, or 'stages=c4,c5 pool=avg ...' (one quoted string)")  # fmt: skip
    train.add_argument("--epochs", type=int, help="override train.epochs")
    train.add_argument("--test", action="store_true", help="also score on the test split")
    train.add_argument("--out", help="folder for its checkpoint and export (default <output.dir>/train/...)")

    predict = command("predict", cmd_predict, "classify images with an export: top classes and probabilities")
    predict.add_argument("export", help="an export with weights (best.yaml)")
    predict.add_argument("images", nargs="+", help="image files")
    predict.add_argument("--top", type=int, default=3, help="classes shown per image (default 3)")

    pre = command("pretrain", cmd_pretrain, "train a space's baseline once, for backbone.weights (fine-tuning)")
    pre.add_argument("space", help="a space file; backbone.pretrain (or its defaults) sets the recipe")
    pre.add_argument("--out", required=True, help="the weights file to write")

    run = command("run", cmd_run, "run a search (local Ray, or a cluster with --address)")
    run.add_argument("space", nargs="?", help="a space file, e.g. search_spaces/gc.yaml")
    run.add_argument("--address", help="a Ray cluster to join ('auto': the `ray start` of this machine; RAY_ADDRESS)")
    run.add_argument("--trials", type=int, help="override search.trials")
    run.add_argument("--name", help="run directory name under output.dir (default: <space>-<time>)")
    run.add_argument("--resume", metavar="RUN_DIR", help="continue a stopped or crashed search")
    run.add_argument("--ray-dashboard", action="store_true", help="serve the local Ray's dashboard on 127.0.0.1")

    ablate = command("ablate", cmd_ablate, "the paper's ablation on your space and data: one factor at a time, or "
                     "main effects on a balanced design")  # fmt: skip
    ablate.add_argument("space", nargs="?", help="a space file")
    ablate.add_argument("--design", choices=("ofat", "balanced"), default="ofat",
                        help="ofat: each axis varied alone around the paper default; balanced: a pairwise-balanced "
                        "sample of the grid, every axis's main effect estimated from every configuration")  # fmt: skip
    ablate.add_argument("--curves", help="balanced: analyse this `bench record` curves file instead of training")
    ablate.add_argument("--configs", type=int, default=40, help="balanced: configurations to record (default 40)")
    ablate.add_argument("--margin", type=float, default=0.002, help="equivalence margin of 'equivalent' "
                        "(TOST), in accuracy (default 0.002)")  # fmt: skip
    ablate.add_argument("--seeds", type=int, help="trainings per point (ofat default: from a power estimate, at "
                        "least 5; balanced default: 5)")  # fmt: skip
    ablate.add_argument("--effect", type=float, help="ofat: the difference the default --seeds detects (0.005)")
    ablate.add_argument("--epochs", type=int, help="ofat: override train.epochs (fidelity)")
    ablate.add_argument("--name", help="run directory name under output.dir; an existing one is continued")
    ablate.add_argument("--address", help="a Ray cluster to join")

    dash = command("dashboard", cmd_dashboard, "serve optuna-dashboard on a run, on 127.0.0.1 (needs [dashboard])")
    dash.add_argument("run", help="a run directory")
    dash.add_argument("--port", type=int, default=8080)

    conf = command("confirm", cmd_confirm, "retrain the front's top points with more seeds; which differ?")
    conf.add_argument("run", help="a run directory")
    conf.add_argument("--top", type=int, default=5, help="the front's best points, runner-ups filling a short one (5)")
    conf.add_argument("--seeds", type=int, default=4, help="fresh seeds per point, none the run trained with (>= 3; 4)")
    conf.add_argument("--address", help="a Ray cluster to join")

    bench = command("bench", lambda a: None, "ground truth for the search: record curves, measure their fidelity")
    bench_sub = bench.add_subparsers(dest="bench_command", required=True, metavar="BENCH_COMMAND")
    record = command("record", cmd_bench_record, "train a plan of configurations x seeds to the end; curves.csv",
                     bench_sub)  # fmt: skip
    record.add_argument("space", help="a space file")
    record.add_argument("--seeds", type=int, default=3, help="seeds per configuration (default 3)")
    record.add_argument("--configs", default="all", help="'all' (the grid) or N: a balanced sample of N")
    record.add_argument("--reference-seeds", type=int, help="the control's seeds (baseline, paper default)")
    record.add_argument("--name", help="run directory name under output.dir; an existing one is continued")
    record.add_argument("--address", help="a Ray cluster to join")
    fid = command("fidelity", cmd_bench_fidelity, "how well each epoch ranks configurations by final accuracy",
                  bench_sub)  # fmt: skip
    fid.add_argument("curves", nargs="+", help="one or more curves.csv files (several: side by side)")
    fid.add_argument("--out", help="also write the report here (markdown); the picture goes beside it")
    rep = command("replay", cmd_bench_replay, "replay search strategies against recorded curves, no training",
                  bench_sub)  # fmt: skip
    rep.add_argument("curves", help="a curves.csv")
    rep.add_argument("--space", default="search_spaces/gc.yaml", help="the space the curves were recorded on")
    rep.add_argument("--strategy", nargs="+", default=["default"], help="default (the space file's), a fair "
                     "baseline (uniform, ...), SAMPLER+PRUNER (e.g. tpe+pareto), asha, grid, or all")  # fmt: skip
    rep.add_argument("--seeds", type=int, default=20, help="replay seeds per strategy (default 20)")
    rep.add_argument("--workers", type=int, default=2, help="parallel trials on the simulated clock (default 2)")
    rep.add_argument("--budget", type=float, default=0.5, help="epochs to spend, as a share of the recorded grid's")
    rep.add_argument("--jobs", type=int, default=1, help="processes replaying in parallel (default 1)")
    rep.add_argument("--out", help="write the table (markdown) here and the picture beside it")

    for name, text, path in (
        ("validate", "check a space file and print what it means", "a space file, e.g. search_spaces/gc.yaml"),
        ("latency", "measured latency of a space's reference configurations or an export's", "a space file or export"),
        ("pareto", "the Pareto front of a run as a table; writes pareto.png", "a run directory"),
        ("show", "summary of a run: trials by state, best per objective, pruning savings", "a run directory"),
        ("importance", "which axes mattered for accuracy; writes importance.png", "a run directory"),
    ):
        command(name, cmd_report, text).add_argument("path", help=path)

    export = command("export", cmd_export, "write a chosen trial as best.yaml (build_model reads it back)")
    export.add_argument("run", help="a run directory")
    export.add_argument("--pick", choices=PICK_RULES, default="knee")
    export.add_argument("--trial", type=int, help="export this trial number instead of picking")
    export.add_argument("--max-macs", type=float, help="a MAC budget every pick rule honours")
    export.add_argument("--max-params", type=float, help="a parameter budget every pick rule honours")
    export.add_argument("--tolerance", type=float, default=0.005, help="with --pick min-macs: accuracy slack")
    export.add_argument("--out", default="best.yaml")
    export.add_argument("--force", action="store_true", help="overwrite --out")
    export.add_argument("--weights", action="store_true", help="also save the trial's trained weights (.pt)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if threading.current_thread() is threading.main_thread():
        # Ctrl-C is a pause (exit 130, one line): a parent that ignored SIGINT (a test runner, a wrapper) would
        # otherwise leave it ignored here, and Python would never raise KeyboardInterrupt.
        signal.signal(signal.SIGINT, signal.default_int_handler)
    args = build_parser().parse_args(argv)
    args.command_line = f"gcsearch {shlex.join(argv)}"  # reports record the command that made them
    try:
        args.func(args)
        return 0
    except Interrupted as err:  # a pause: what finished and how to continue
        print(f"gcsearch: {one_line(str(err))}", file=sys.stderr)
        return err.exit_code
    except GcsearchError as err:
        print(f"gcsearch: error: {one_line(str(err))}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("gcsearch: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
