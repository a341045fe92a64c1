"""Command line: parse flags, call one library function, turn GcsearchError into exit code 2.

Heavy modules (torch, ray, optuna) are imported inside the commands so ``gcsearch --help`` is instant.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

from gcsearch.errors import ConfigError, GcsearchError


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
    from gcsearch.report import describe_space
    from gcsearch.space import load_space

    print(describe_space(load_space(args.space)))


def _arch_from_flag(space: object, text: str | None) -> object:
    """--arch: paper-default (also the default), baseline, or key=value pairs like --gc."""
    from gcsearch.arch import ArchConfig

    if text in (None, "paper-default"):
        return space.reference()  # type: ignore[attr-defined]
    if text == "baseline":
        return ArchConfig()
    return ArchConfig.from_dict(_parse_gc(text.split()), where="--arch")


def cmd_train(args: argparse.Namespace) -> None:
    from gcsearch.space import load_space
    from gcsearch.train import train

    space = load_space(args.config)
    arch = _arch_from_flag(space, args.arch)
    epochs = args.epochs or space.train.epochs
    print(f"training {arch.label()} on {space.data.dataset} for {epochs} epochs")  # type: ignore[attr-defined]

    def show(m: dict[str, Any]) -> None:
        print(
            f"  epoch {int(m['epoch']) + 1:>3}/{epochs}  val acc {m['accuracy']:.4f}  "
            f"val loss {m['loss']:.4f}  train loss {m['train_loss']:.4f}  "
            f"{m['images_per_s']:,.0f} img/s  {m['epoch_seconds']:.1f} s",
            flush=True,
        )

    metrics = train(arch, space, show, epochs=epochs, test=args.test)  # type: ignore[arg-type]
    line = f"final: val acc {metrics.accuracy:.4f}, {metrics.seconds:.1f} s"
    if metrics.test_accuracy is not None:
        line += f", test acc {metrics.test_accuracy:.4f}"
    print(line)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
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
    train.add_argument("config", help="a space file")
    train.add_argument(
        "--arch", help="paper-default (default), baseline, or 'stages=c4,c5 pool=avg ...' (one quoted string)"
    )
    train.add_argument("--epochs", type=int, help="override train.epochs")
    train.add_argument("--test", action="store_true", help="also score on the test split")
    train.set_defaults(func=cmd_train)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int | None] = args.func
    try:
        return func(args) or 0
    except GcsearchError as err:
        print(f"gcsearch: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gcsearch: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
