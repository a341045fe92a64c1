"""What a space file means, in words and numbers: `gcsearch validate`. Needs torch, imported on use (it costs
the grid)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from gcsearch.analysis.report import si
from gcsearch.arch import ArchConfig, ratio_text, stage_label
from gcsearch.errors import ConfigError, DataError
from gcsearch.search.strategy import Strategy, budget_of
from gcsearch.space import SearchSpace

if TYPE_CHECKING:
    from gcsearch.nn.flops import SpaceCoster


def describe_space(space: SearchSpace) -> str:
    """What a space file means, for ``gcsearch validate``."""
    from gcsearch.nn.flops import SpaceCoster

    a, b, d, t, s = space.axes, space.backbone, space.data, space.train, space.search
    grid = space.grid()
    coster = SpaceCoster(b)
    costs = {arch: coster(arch) for arch in grid}
    cheapest = min(grid, key=lambda x: costs[x])
    dearest = max(grid, key=lambda x: costs[x])
    reference = space.reference()
    size = "x".join(map(str, (1, *b.input_size)))

    def axis(name: str, values: list[str], sep: str = ", ") -> str:
        fixed = "   (fixed)" if len(values) == 1 else ""
        return f"  {name:<9} {sep.join(values)}{fixed}"

    def cost(label: str, arch: ArchConfig, macs_params: tuple[int, int]) -> str:
        macs, params = macs_params
        return f"  {label:<14} {si(macs):>11} MACs {params:>13,d} params   {arch.label()}"

    lines = [
        f"{space.path}: valid",
        f"space: {len(grid)} distinct architectures",
        axis("pool", list(a.pool)),
        axis("fusion", list(a.fusion)),
        axis("ratio", [ratio_text(r) for r in a.ratio]),
        axis("norm", list(a.norm)),
        axis("stages", [stage_label(st) + (" (baseline)" if not st else "") for st in a.stages], " | "),
        axis("position", list(a.position)),
        axis("gate_init", list(a.gate_init)) + ("   (mul and both only)" if len(a.gate_init) > 1 else ""),
        f"cost at input {size} (MACs: conv + linear + matmul, GC attention pooling included)",
        cost("min", cheapest, costs[cheapest]),
        cost("max", dearest, costs[dearest]),
        *([cost("paper default", reference, costs[reference])] if reference is not None else []),
        "backbone: "
        + (
            f"proxy_resnet, {b.block} blocks, width {b.width}, depth {list(b.depth)}"
            if b.name == "proxy_resnet"
            else b.name
        )
        + f", stages {','.join(b.stages)}, input {'x'.join(map(str, b.input_size))}, {b.num_classes} classes",
        f"data: {d.dataset}"
        + (f" from {d.root}" if d.root else "")
        + f", train subset {d.train_subset or 'all'}, {d.val_size} validation images held out of the "
        f"training split (test split unused), augment flip={d.flip} crop_padding={d.crop_padding}",
        f"train: {t.epochs} epochs, batch {t.batch_size}, {t.optimizer} lr {t.lr:g} {t.schedule}, "
        f"weight decay {t.weight_decay:g}, label smoothing {t.label_smoothing:g}, seed {t.seed}, "
        f"device {t.device}",
    ]
    images = f" = {t.epochs * d.train_subset:,d} training images" if d.train_subset else ""
    settings = ", ".join(f"{k} {v:g}" for k, v in s.pruner_settings.items())
    objectives = ", ".join(f"{o} ({d[:3]})" for o, d in zip(s.objectives, s.directions, strict=True))
    lines += [
        f"budget: one trial at most {t.epochs} epochs{images}; the search at most "
        f"{s.trials} trials x {t.epochs} epochs = {s.trials * t.epochs} trial-epochs"
        + (f", stopped after {s.time_budget_s:g} s" if s.time_budget_s else ""),
        f"search: objectives {objectives}; "
        f"sampler {s.sampler}; pruner {s.pruner}"
        + (f" ({settings})" if settings else "")
        + f"; per trial {s.cpu:g} CPU {s.gpu:g} GPU; seed {s.seed}"
        + (f"; MAC budget {si(s.max_macs)}" if s.max_macs else ""),
        f"output: {space.output_dir}/",
    ]
    budget = budget_of(space, Strategy.of(s))
    lines.append(f"trials: {budget.text()}")
    lines += [w for w in (budget.warning(),) if w]
    lines += _layernorm_warnings(space, coster, grid)
    return "\n".join(lines)


def _layernorm_warnings(space: SearchSpace, coster: SpaceCoster, grid: list[ArchConfig]) -> list[str]:
    narrow: dict[tuple[str, str, str], int] = {}
    for arch in grid:
        if arch.is_baseline or arch.norm != "layernorm":
            continue
        assert arch.ratio and arch.position
        for stage, width in coster.bottleneck_widths(arch).items():
            if width < 3:
                narrow[(ratio_text(arch.ratio), arch.position, stage)] = width
    if not narrow:
        return []
    where = "; ".join(f"ratio {r} at {p} in {st} ({w} wide)" for (r, p, st), w in sorted(narrow.items()))
    return [
        "warning: with LayerNorm, a bottleneck under 3 channels wide passes no gradient to the "
        f"pooling (LN of 1 value is constant, of 2 a sign): {where}"
    ]


def validate(space: SearchSpace) -> str:
    """`gcsearch validate`: what the file means; a weights file that does not fit the backbone, or an image folder
    that cannot serve (a missing root or split, classes that disagree, sizes, any image whose header does not
    open), fails here in one line, before any compute."""
    from gcsearch.nn.weights import check

    if "latency" in space.search.objectives:
        from gcsearch.nn import latency

        latency.check(space.search.latency)  # a device this machine cannot measure on
    notes = []
    weights = space.backbone.weights
    if weights and not Path(weights).is_file():  # validated where it runs: the file must be on this machine
        raise ConfigError("weights", "must name a weights file on this machine", weights,
                          f"{space.path}: backbone.weights")  # fmt: skip
    check(space)
    if space.data.dataset == "imagefolder":
        notes += _folder_notes(space)
    return "\n".join([describe_space(space), *notes])


def _folder_notes(space: SearchSpace) -> list[str]:
    from gcsearch.nn import cache

    d, (c, h, w) = space.data, space.backbone.input_size
    per_image = c * h * w
    # The folder must be here: a space is validated where it runs (on a cluster, on a node that holds it).
    p = cache.plan(space)  # the root, train/ (and val/'s classes), num_classes, val_size and the split checked
    count, bad = cache.unreadable_headers(space, test=True)
    if bad and not d.skip_bad:
        raise DataError(cache.bad_files(bad, "fix or remove them, or set data.skip_bad: true to skip them"))
    rows = len(p.train_rows) + len(p.val_rows)
    built = (Path(d.cache_dir or "") / p.key / "manifest.json").is_file()
    state = "prepared" if built else "not prepared yet: gcsearch prepare, or run, makes it"
    skipped = f", {len(bad)} unreadable (skipped: data.skip_bad)" if bad else ""
    return [f"data: {len(p.train.files):,d} images in {len(p.train.classes)} classes under {d.root}/train; every "
            f"header of {count:,d} files opened{skipped}; the cache holds {len(p.train_rows):,d} training + "
            f"{len(p.val_rows):,d} validation images at {c}x{h}x{w}, {rows * per_image / 2**20:,.1f} MiB, in "
            f"{d.cache_dir}/{p.key} ({state})"]  # fmt: skip


def validate_file(path: str) -> str:
    """`gcsearch validate SPACE`."""
    from gcsearch.spacefile import load_space

    return validate(load_space(path))


def latency_report(path: str) -> str:
    """`gcsearch latency FILE`: the measured latency (search.latency's settings) of a space's reference
    configurations, or of an export's configuration, beside the baseline's, with their MACs."""
    from gcsearch.analysis.export import load_trainable
    from gcsearch.nn import latency
    from gcsearch.nn.flops import SpaceCoster

    exported, space = load_trainable(path)
    cfg = space.search.latency
    latency.check(cfg)
    archs = [ArchConfig(), exported] if exported is not None else list(space.references())
    coster, where = SpaceCoster(space.backbone), Path(space.output_dir).resolve() / "latency"
    base = latency.latency(ArchConfig(), space.backbone, cfg, where)
    lines = [f"latency of {path} on {latency.hardware(cfg)}: {cfg.device}, batch {cfg.batch}, {cfg.threads} "
             f"thread(s), {cfg.dtype}, median of {base.runs} runs after a warm-up; BatchNorm folded; each "
             "configuration timed in alternation with the baseline, its ms that ratio x the baseline's"]  # fmt: skip
    for arch in dict.fromkeys(archs):
        got = latency.latency(arch, space.backbone, cfg, where)
        macs = coster(arch)[0]
        lines.append(f"  {got.median_ms:9.3f} ms (IQR {got.iqr_ms:.3f})  {got.vs_baseline:6.3f}x the "
                     f"baseline  {si(macs):>11} MACs  {arch.label()}")  # fmt: skip
    return "\n".join(lines)
