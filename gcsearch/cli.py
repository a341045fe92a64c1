"""Command line: parse flags, call one library function, turn GcsearchError into exit code 2.

Heavy modules (torch, ray, optuna) are imported inside the commands so ``gcsearch --help`` is instant.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from gcsearch.errors import ConfigError, GcsearchError
from gcsearch.pareto import PICK_RULES, trained  # pure Python: keeps --help instant

if TYPE_CHECKING:
    from gcsearch.arch import ArchConfig
    from gcsearch.epoch import Epoch
    from gcsearch.space import SearchSpace


def _parse_gc(pairs: Sequence[str]) -> dict[str, object]:
    """``stages=c3,c4,c5 ratio=1/16`` -> a GC mapping; ``none`` alone is the baseline."""
    if list(pairs) == ["none"]:
        return {"stages": []}
    out: dict[str, object] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ConfigError("--gc", "takes key=value pairs such as stages=c3,c4,c5", pair)
        out[key] = value
    return out


def _size(text: str) -> tuple[int, ...]:
    try:
        size = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise ConfigError("--input", "must be N,C,H,W such as 1,3,224,224", text) from None
    if len(size) != 4 or min(size) < 1:
        raise ConfigError("--input", "must be N,C,H,W such as 1,3,224,224", text)
    return size


def cmd_macs(args: argparse.Namespace) -> None:
    from gcsearch.flops import count_macs
    from gcsearch.models import build_model, gc_blocks

    size = _size(args.input)
    gc = _parse_gc(args.gc) if args.gc else None
    base = build_model(
        backbone=args.backbone,
        num_classes=args.classes,
        in_channels=size[1],
        width=args.width,
        block=args.block,
    )
    model = build_model(
        backbone=args.backbone,
        gc=gc,
        num_classes=args.classes,
        in_channels=size[1],
        width=args.width,
        block=args.block,
    )
    base_macs, base_params = count_macs(base, size)
    macs, params = count_macs(model, size)
    print(f"{args.backbone} at {'x'.join(map(str, size))}, {len(gc_blocks(model))} GC blocks")
    print(f"  MACs   {macs:>15,d}  ({macs / 1e9:.3f} G)   GC adds {macs - base_macs:>12,d}")
    print(f"  params {params:>15,d}  ({params / 1e6:.3f} M)   GC adds {params - base_params:>12,d}")


def cmd_validate(args: argparse.Namespace) -> None:
    from gcsearch.describe import describe_space
    from gcsearch.spacefile import load_space
    from gcsearch.weights import check

    space = load_space(args.space)
    check(space)  # a weights file that does not fit the backbone fails here, before any compute
    print(describe_space(space))


def _arch_from_flag(space: SearchSpace, text: str | None) -> ArchConfig:
    """--arch: paper-default (also the default), baseline, or key=value pairs like --gc."""
    from gcsearch.arch import ArchConfig

    if text in (None, "paper-default"):
        reference = space.reference()
        if reference is None:
            raise ConfigError("--arch", "paper-default needs a space with a GC stage set; name one with key=value")
        return reference
    if text == "baseline":
        return ArchConfig()
    return ArchConfig.from_dict(_parse_gc(text.split()), where="--arch")


def cmd_train(args: argparse.Namespace) -> None:
    from gcsearch.export import load_trainable
    from gcsearch.pretrain import resolve
    from gcsearch.train import train

    arch, space = load_trainable(args.config)
    space = resolve(space, sys.stdout)  # fine-tuning: the weights made (backbone.pretrain) or checked
    if arch is None or args.arch:
        arch = _arch_from_flag(space, args.arch)
    if args.epochs is not None and args.epochs < 1:
        raise ConfigError("--epochs", "must be >= 1", args.epochs)
    epochs = args.epochs or space.train.epochs
    print(f"training {arch.label()} on {space.data.dataset} for {epochs} epochs")

    def show(e: Epoch) -> None:
        print(f"  epoch {e.done:>3}/{epochs}  val acc {e.accuracy:.4f}  val loss {e.loss:.4f}  train loss "
              f"{e.train_loss:.4f}  {e.images_per_s:,.0f} img/s  {e.epoch_seconds:.1f} s", flush=True)  # fmt: skip

    metrics = train(arch, space, show, epochs=epochs, test=args.test)
    line = f"final: val acc {metrics.accuracy:.4f}, {metrics.seconds:.1f} s"
    if metrics.test_accuracy is not None:
        line += f", test acc {metrics.test_accuracy:.4f}"
    print(line)


def cmd_pretrain(args: argparse.Namespace) -> None:
    from pathlib import Path

    from gcsearch.pretrain import pretrain
    from gcsearch.spacefile import load_space

    out = pretrain(load_space(args.space), Path(args.out), sys.stdout)
    print(f"wrote {out}: name it as backbone.weights in a space file to fine-tune GC blocks into it")


def cmd_run(args: argparse.Namespace) -> None:
    import dataclasses
    from pathlib import Path

    from gcsearch import rundir
    from gcsearch.report import front_table
    from gcsearch.spacefile import load_space

    if args.resume:
        if args.space or args.name:
            raise ConfigError("--resume", "takes a run directory alone (its space.yaml holds the settings)")
        run_dir = rundir.check_run_dir(args.resume)
        space = rundir.load_run_space(run_dir)
    else:
        if not args.space:
            raise ConfigError("space", "is required: gcsearch run SPACE.yaml (or --resume RUN_DIR)")
        space = load_space(args.space)
        run_dir = rundir.new_run_dir(space, args.name)
        if run_dir.exists():
            raise ConfigError("--name", "names a run that exists; continue it with --resume", str(run_dir))
    if args.trials is not None:
        if args.trials < 1:
            raise ConfigError("--trials", "must be >= 1", args.trials)
        space = dataclasses.replace(space, search=dataclasses.replace(space.search, trials=args.trials))

    from gcsearch.search import run

    print(f"search {space.path} -> {run_dir}/ ({space.search.trials} trials)", flush=True)
    records = run(space, Path(run_dir), address=args.address, dashboard=args.ray_dashboard)
    front = rundir.pareto_front(space, records)
    print("\nPareto front (accuracy vs MACs, COMPLETE trials):")
    print(front_table(front))
    print(f"\nwrote {run_dir}/trials.csv, {run_dir}/pareto.csv; study: optuna-dashboard {run_dir}/optuna.log")


def _open_run(path: str) -> tuple[Any, Any, Any]:
    from pathlib import Path

    from gcsearch import rundir

    run_dir = rundir.check_run_dir(Path(path))
    space = rundir.load_run_space(run_dir)
    study = rundir.load_main_study(run_dir)
    return run_dir, space, study


def cmd_pareto(args: argparse.Namespace) -> None:
    from gcsearch import rundir
    from gcsearch.report import front_table, plot_pareto

    run_dir, space, study = _open_run(args.run)
    records = rundir.records(study)
    front = rundir.pareto_front(space, records)
    if not front:
        raise ConfigError("run", "has no COMPLETE trial yet", str(run_dir))
    print(front_table(front))
    from gcsearch import confirm

    confirmed = confirm.load(run_dir)
    if confirmed is not None:
        print("\nConfirmed with more seeds (gcsearch confirm):")
        print(confirm.table(confirmed))
    out = run_dir / "pareto.png"
    plot_pareto(space, records, str(out), title=run_dir.name, confirmed=confirmed)
    print(f"wrote {out}")


def cmd_show(args: argparse.Namespace) -> None:
    from gcsearch import rundir
    from gcsearch.report import summary

    run_dir, space, study = _open_run(args.run)
    print(f"{run_dir}: {space.path}")
    print(summary(space, rundir.records(study)))


def cmd_importance(args: argparse.Namespace) -> None:
    from gcsearch import rundir
    from gcsearch.report import importance_table, plot_importance

    run_dir, _, study = _open_run(args.run)
    importances = rundir.param_importances(study)
    print("importance of each axis for accuracy (PED-ANOVA over COMPLETE trials):")
    print(importance_table(importances))
    out = run_dir / "importance.png"
    plot_importance(importances, str(out), f"{run_dir.name}: what mattered for accuracy")
    print(f"wrote {out}")


def cmd_export(args: argparse.Namespace) -> None:
    from pathlib import Path

    from gcsearch import confirm, export, rundir
    from gcsearch.export import export_dict, write_export

    run_dir, space, study = _open_run(args.run)
    records = rundir.records(study)
    out = Path(args.out)
    if out.exists() and not args.force:
        raise ConfigError("--out", "names a file that exists; pass --force to overwrite it", str(out))
    choice = export.choose(records, args.pick, trial=args.trial, max_macs=args.max_macs, max_params=args.max_params,
                           tolerance=args.tolerance, confirmed=confirm.load(run_dir))  # fmt: skip
    chosen, pick = choice.record, choice.pick
    if choice.note:
        print(choice.note)
    weights = None
    if args.weights:
        from gcsearch.weights import save_weights

        source = int(chosen.extra.get("duplicate_of", chosen.number))
        ckpt = rundir.checkpoint(run_dir, source)
        if not ckpt.is_file():
            raise ConfigError("--weights", "needs the trial's checkpoint, which this run does not hold", str(ckpt))
        weights = out.with_suffix(".pt").name
        save_weights(ckpt, out.with_suffix(".pt"))
    write_export(out, export_dict(space, chosen, str(run_dir), pick, weights), force=args.force)
    acc = f"{chosen.accuracy:.4f}" if chosen.accuracy is not None else "-"
    print(f"exported trial {chosen.number} ({chosen.state}, accuracy {acc}, {chosen.macs:,d} MACs): "
          f"{chosen.arch.label()} -> {out}" + (f" (+ {weights})" if weights else ""))  # fmt: skip


def cmd_ablate(args: argparse.Namespace) -> None:
    import dataclasses

    from gcsearch import ablate
    from gcsearch.spacefile import load_space

    if args.design == "balanced":
        return cmd_ablate_balanced(args)
    if args.space is None:
        raise ConfigError("space", "is needed: the space file to ablate", None)
    if args.effect is not None and not 0 < args.effect < 1:
        raise ConfigError("--effect", "must be an accuracy difference in (0, 1)", args.effect)
    space = load_space(args.space)
    seeds = args.seeds
    if seeds is None:
        m = ablate.comparisons(space)
        seeds = ablate.default_seeds(args.effect or ablate.EFFECT, comparisons=m)
        print(
            f"--seeds {seeds}: a paired t-test then detects a difference of {args.effect or ablate.EFFECT:g} "
            f"with 80% power at Holm's first step over the ablation's {m} comparisons (alpha 0.05 / {m}), given "
            f"the paired seed noise {ablate.PAIRED_SD:g} measured on the from-scratch proxy (gc-scratch.yaml)"
        )
    if args.epochs:
        space = dataclasses.replace(space, train=dataclasses.replace(space.train, epochs=args.epochs))
    run_dir = ablate.run(space, seeds, args.name, args.address)
    print(f"\nwrote {run_dir}/ablation.md")


def cmd_ablate_balanced(args: argparse.Namespace) -> None:
    """Main effects on a balanced design: recorded now (``bench record``), or read from ``--curves``."""
    from pathlib import Path

    from gcsearch import bench, curves, factorial, rundir
    from gcsearch.files import write_atomic
    from gcsearch.spacefile import load_space

    if args.curves:
        source = Path(args.curves)
        if not source.is_file():
            raise ConfigError("--curves", "must name a curves file made by `gcsearch bench record`", args.curves)
        out = source.with_suffix(".ablation.md")
    else:
        if args.space is None:
            raise ConfigError("space", "is needed to record a balanced design (or give --curves FILE)", None)
        space = load_space(args.space)
        seeds = args.seeds or 5
        if seeds < 2:
            raise ConfigError("--seeds", "must be >= 2: seed is the blocking factor", seeds)
        run_dir = rundir.new_run_dir(space, args.name, "factorial")
        source = bench.record(space, run_dir, seeds, args.configs, address=args.address)
        out = run_dir / "ablation.md"
    c = curves.Curves.of(curves.read(source), str(source))
    text = factorial.report(factorial.analyse(factorial.observations(c), args.margin, str(source)), str(source))
    write_atomic(out, text)
    print(text)
    print(f"wrote {out}")


def cmd_dashboard(args: argparse.Namespace) -> None:
    from gcsearch import rundir

    run_dir, _, _ = _open_run(args.run)
    try:
        import optuna_dashboard
    except ImportError:
        raise ConfigError("dashboard", "needs optuna-dashboard: pip install 'gcsearch[dashboard]'") from None
    print(f"optuna-dashboard on {run_dir}: http://127.0.0.1:{args.port}/ (Ctrl-C stops it). Study "
          f"{rundir.MAIN_STUDY!r} holds the objectives, {rundir.TWIN_STUDY!r} each trial's accuracy per epoch "
          "(its learning curves, which a multi-objective study cannot hold)", flush=True)  # fmt: skip
    optuna_dashboard.run_server(rundir.storage(run_dir), host="127.0.0.1", port=args.port)


def cmd_confirm(args: argparse.Namespace) -> None:
    from gcsearch import confirm, rundir, stats

    if args.seeds < stats.MIN_PAIRS:
        raise ConfigError("--seeds", f"must be >= {stats.MIN_PAIRS} fresh seeds: fewer cannot tell candidates apart",
                          args.seeds)  # fmt: skip
    if args.top < 2:
        raise ConfigError("--top", "must be >= 2: confirming compares candidates", args.top)
    run_dir, space, study = _open_run(args.run)
    records = rundir.records(study)
    front = [r for r in rundir.pareto_front(space, records) if r.state == "COMPLETE"]
    complete = [r for r in trained(records) if r.state == "COMPLETE"]
    if not front:
        raise ConfigError("run", "has no COMPLETE trial to confirm", str(run_dir))
    chosen = confirm.candidates(front, complete, args.top)
    on_front = sum(r in front for r in chosen)
    runner_ups = f" and {len(chosen) - on_front} runner-up(s) off it" if len(chosen) > on_front else ""
    searched = confirm.searched_seeds(space, trained(records))
    fresh = confirm.fresh_seeds(space, searched, args.seeds)
    print(f"confirming {on_front} front point(s){runner_ups} of {run_dir} with {args.seeds} fresh seeds each "
          f"({', '.join(map(str, fresh))}; the search's own, {', '.join(map(str, sorted(searched)))}, not reused) "
          f"-> {run_dir}/confirm/", flush=True)  # fmt: skip
    result = confirm.confirm(space, run_dir.resolve(), chosen, args.seeds, searched=searched, address=args.address)
    print(confirm.table(result))
    print(f"\nwrote {run_dir}/{confirm.FILE}: `gcsearch pareto` draws its intervals, `gcsearch export` picks from it")


def cmd_bench_record(args: argparse.Namespace) -> None:
    from gcsearch import bench, rundir
    from gcsearch.spacefile import load_space

    space = load_space(args.space)
    sample = None if args.configs == "all" else _positive(args.configs, "--configs")
    if args.seeds < 1:
        raise ConfigError("--seeds", "must be >= 1", args.seeds)
    run_dir = rundir.new_run_dir(space, args.name, "record")
    pairs = len(bench.plan(space, args.seeds, sample))
    print(f"recording {space.path}: {pairs // args.seeds} configurations x {args.seeds} seeds = {pairs} trainings "
          f"of {space.train.epochs} epochs, no pruning -> {run_dir}/ (rerun the same --name to continue)",
          flush=True)  # fmt: skip
    out = bench.record(space, run_dir, args.seeds, sample, address=args.address)
    print(f"wrote {out}")


def _positive(text: str, flag: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ConfigError(flag, "must be 'all' or a positive integer", text) from None
    if value < 1:
        raise ConfigError(flag, "must be 'all' or a positive integer", text)
    return value


def cmd_bench_fidelity(args: argparse.Namespace) -> None:
    from pathlib import Path

    from gcsearch import bench
    from gcsearch.files import write_atomic

    picture = Path(args.out).with_suffix(".png") if args.out else Path(args.curves[0]).with_suffix(".fidelity.png")
    text = bench.fidelity_report(args.curves, picture)
    print(text)
    if args.out:
        import shlex

        head = f"# Rank fidelity\n\nCommand: `gcsearch {shlex.join(sys.argv[1:])}`\n\n"
        write_atomic(Path(args.out), f"{head}{text}\n![fidelity]({picture.name})\n")
        print(f"wrote {args.out}")
    print(f"wrote {picture}")


def cmd_bench_replay(args: argparse.Namespace) -> None:
    import shlex
    import time
    from pathlib import Path

    from gcsearch import curves, replay
    from gcsearch.files import write_atomic
    from gcsearch.spacefile import load_space

    space = load_space(args.space)
    c = curves.Curves.of(curves.read(args.curves), args.curves)
    replay.check_space(c, space, args.curves)
    if args.seeds < 1 or args.workers < 1:
        raise ConfigError("--seeds" if args.seeds < 1 else "--workers", "must be >= 1", min(args.seeds, args.workers))
    if not 0 < args.budget <= 1:
        raise ConfigError("--budget", "must be in (0, 1]: a share of the recorded grid's total epochs", args.budget)
    from gcsearch import strategy

    names = strategy.names() if args.strategy == ["all"] else args.strategy
    truth = replay.Truth(c)
    full = len(truth.archs) * c.epochs
    budget = max(1, round(args.budget * full))
    if args.jobs < 1:
        raise ConfigError("--jobs", "must be >= 1", args.jobs)
    start = time.perf_counter()
    traces = replay.replay_many(c, space, names, args.seeds, args.workers, budget, args.jobs)
    print(f"{len(names)} strategies x {args.seeds} seeds replayed in {time.perf_counter() - start:.1f} s "
          f"({args.jobs} processes)", flush=True)  # fmt: skip
    text = replay.table(traces, full)
    print(text)
    if args.out:
        out = Path(args.out)
        picture = out.with_suffix(".png")
        replay.plot(traces, full, str(picture), budget)
        head = (
            f"# Replayed searches on {args.curves}\n\nCommand: `gcsearch {shlex.join(sys.argv[1:])}`\n\n"
            f"{len(truth.archs)} recorded configurations x {len(c.common_seeds())} seeds, {c.epochs} epochs "
            f"(grid total {full} epochs); space {space.path}; {args.seeds} replay seeds, {args.workers} workers, "
            f"budget {budget} epochs. Median [quartiles] over replay seeds.\n\n"
        )
        write_atomic(out, head + text + f"\n\n![replay]({picture.name})\n")
        print(f"wrote {out} and {picture}")


class _Parser(argparse.ArgumentParser):
    """Usage mistakes get the same one line and exit code 2 as every other bad input."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {one_line(message)} (see {self.prog} --help)\n")


def one_line(message: str) -> str:
    """Errors quote what the user gave, which may hold newlines: escape them, keep one line."""
    return message.replace("\r", "\\r").replace("\n", "\\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="gcsearch",
        description="Neural architecture search over Global Context (GCNet) block configurations.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    macs = sub.add_parser("macs", help="MACs and params of a backbone with GC blocks")
    macs.add_argument("backbone", help="resnet18|resnet34|resnet50|resnet101|proxy_resnet")
    macs.add_argument(
        "--gc",
        nargs="+",
        metavar="KEY=VALUE",
        help="GC settings, e.g. stages=c3,c4,c5 ratio=1/16 pool=att fusion=add; 'none' = baseline",
    )
    macs.add_argument("--input", default="1,3,224,224", help="N,C,H,W (default 1,3,224,224)")
    macs.add_argument("--classes", type=int, default=1000)
    macs.add_argument("--width", type=int, default=16, help="proxy_resnet only")
    macs.add_argument("--block", default="basic", help="proxy_resnet only: basic|bottleneck")
    macs.set_defaults(func=cmd_macs)

    validate = sub.add_parser("validate", help="check a space file and print what it means")
    validate.add_argument("space", help="a space file, e.g. search_spaces/gc.yaml")
    validate.set_defaults(func=cmd_validate)

    train = sub.add_parser("train", help="train one architecture at full fidelity")
    train.add_argument("config", help="a space file, or an export (best.yaml)")
    train.add_argument(
        "--arch",
        help="paper-default (a space file's default), baseline, or 'stages=c4,c5 pool=avg ...' (one quoted string)",
    )
    train.add_argument("--epochs", type=int, help="override train.epochs")
    train.add_argument("--test", action="store_true", help="also score on the test split")
    train.set_defaults(func=cmd_train)

    pre = sub.add_parser("pretrain", help="train a space's baseline once, for backbone.weights (fine-tuning)")
    pre.add_argument("space", help="a space file; backbone.pretrain (or its defaults) sets the recipe")
    pre.add_argument("--out", required=True, help="the weights file to write")
    pre.set_defaults(func=cmd_pretrain)

    run = sub.add_parser("run", help="run a search (local Ray, or a cluster with --address)")
    run.add_argument("space", nargs="?", help="a space file, e.g. search_spaces/gc.yaml")
    run.add_argument("--address", help="a Ray cluster to join ('auto' for the local one; also RAY_ADDRESS)")
    run.add_argument("--trials", type=int, help="override search.trials")
    run.add_argument("--name", help="run directory name under output.dir (default: <space>-<time>)")
    run.add_argument("--resume", metavar="RUN_DIR", help="continue a stopped or crashed search")
    run.add_argument("--ray-dashboard", action="store_true", help="serve the local Ray's dashboard on 127.0.0.1")
    run.set_defaults(func=cmd_run)

    ablate = sub.add_parser("ablate", help="the paper's ablation on your space and data: one factor at a time, "
                            "or main effects on a balanced design")  # fmt: skip
    ablate.add_argument("space", nargs="?", help="a space file")
    ablate.add_argument("--design", choices=("ofat", "balanced"), default="ofat",
                        help="ofat: each axis varied alone around the paper default; balanced: a pairwise-balanced "
                        "sample of the grid, every axis's main effect estimated from every configuration")  # fmt: skip
    ablate.add_argument("--curves", help="balanced: analyse this `bench record` curves file instead of training")
    ablate.add_argument("--configs", type=int, default=40, help="balanced: configurations to record (40)")
    ablate.add_argument("--margin", type=float, default=0.002,
                        help="balanced: equivalence margin of 'equivalent' (TOST), in accuracy (0.002)")  # fmt: skip
    ablate.add_argument("--seeds", type=int, help="trainings per point (default: from a power estimate, >= 5)")
    ablate.add_argument("--effect", type=float, help="accuracy difference the default --seeds should detect (0.005)")
    ablate.add_argument("--epochs", type=int, help="override train.epochs (fidelity)")
    ablate.add_argument("--name", help="run directory name under output.dir; an existing one is continued")
    ablate.add_argument("--address", help="a Ray cluster to join")
    ablate.set_defaults(func=cmd_ablate)

    dash = sub.add_parser("dashboard", help="serve optuna-dashboard on a run, on 127.0.0.1 (needs [dashboard])")
    dash.add_argument("run", help="a run directory")
    dash.add_argument("--port", type=int, default=8080)
    dash.set_defaults(func=cmd_dashboard)

    conf = sub.add_parser("confirm", help="retrain the front's top points with more seeds; which differ?")
    conf.add_argument("run", help="a run directory")
    conf.add_argument("--top", type=int, default=5, help="front points to confirm, best accuracy first (5)")
    conf.add_argument(
        "--seeds", type=int, default=4, help="fresh seeds per point, none the run trained with (>= 3; default 4)"
    )
    conf.add_argument("--address", help="a Ray cluster to join")
    conf.set_defaults(func=cmd_confirm)

    bench = sub.add_parser("bench", help="ground truth for the search: record curves, measure their fidelity")
    bench_sub = bench.add_subparsers(dest="bench_command", required=True, metavar="BENCH_COMMAND")
    record = bench_sub.add_parser("record", help="train a plan of configurations x seeds to the end; curves.csv")
    record.add_argument("space", help="a space file")
    record.add_argument("--seeds", type=int, default=3, help="seeds per configuration (default 3)")
    record.add_argument("--configs", default="all", help="'all' (the grid) or N: a balanced sample of N")
    record.add_argument("--name", help="run directory name under output.dir; an existing one is continued")
    record.add_argument("--address", help="a Ray cluster to join")
    record.set_defaults(func=cmd_bench_record)
    fid = bench_sub.add_parser("fidelity", help="how well each epoch ranks configurations by final accuracy")
    fid.add_argument("curves", nargs="+", help="one or more curves.csv files (several: side by side)")
    fid.add_argument("--out", help="also write the report here (markdown); the picture goes beside it")
    fid.set_defaults(func=cmd_bench_fidelity)
    rep = bench_sub.add_parser("replay", help="replay search strategies against recorded curves, no training")
    rep.add_argument("curves", help="a curves.csv")
    rep.add_argument("--space", default="search_spaces/gc.yaml", help="the space the curves were recorded on")
    rep.add_argument(
        "--strategy",
        nargs="+",
        default=["default"],
        help="SAMPLER+PRUNER (e.g. tpe+pareto), asha, grid, default (the space file's), or all",
    )
    rep.add_argument("--seeds", type=int, default=20, help="replay seeds per strategy (default 20)")
    rep.add_argument("--workers", type=int, default=2, help="parallel trials on the simulated clock (default 2)")
    rep.add_argument("--budget", type=float, default=0.5, help="epochs to spend, as a share of the recorded grid's")
    rep.add_argument("--jobs", type=int, default=1, help="processes replaying in parallel (default 1)")
    rep.add_argument("--out", help="write the table (markdown) here and the picture beside it")
    rep.set_defaults(func=cmd_bench_replay)

    for name, func, text in (
        ("pareto", cmd_pareto, "the Pareto front of a run as a table; writes pareto.png"),
        ("show", cmd_show, "summary of a run: trials by state, best per objective, pruning savings"),
        ("importance", cmd_importance, "which axes mattered for accuracy; writes importance.png"),
    ):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("run", help="a run directory, e.g. runs/gc-20261122-101500")
        cmd.set_defaults(func=func)

    export = sub.add_parser("export", help="write a chosen trial as best.yaml (build_model reads it back)")
    export.add_argument("run", help="a run directory")
    export.add_argument("--pick", choices=PICK_RULES, default="knee")
    export.add_argument("--trial", type=int, help="export this trial number instead of picking")
    export.add_argument("--max-macs", type=float, help="with --pick max-accuracy: a MAC budget")
    export.add_argument("--max-params", type=float, help="with --pick max-accuracy: a parameter budget")
    export.add_argument("--tolerance", type=float, default=0.005, help="with --pick min-macs: accuracy slack")
    export.add_argument("--out", default="best.yaml")
    export.add_argument("--force", action="store_true", help="overwrite --out")
    export.add_argument("--weights", action="store_true", help="also save the trial's trained weights (.pt)")
    export.set_defaults(func=cmd_export)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int | None] = args.func
    try:
        return func(args) or 0
    except GcsearchError as err:
        print(f"gcsearch: error: {one_line(str(err))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gcsearch: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
