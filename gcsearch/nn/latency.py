"""Measured latency: what a configuration costs on the hardware a user deploys it to, beside its MACs.

A GC block adds about 0.2% of the proxy's MACs, yet attention pooling, a LayerNorm over a vector and two
broadcasts cost time that MACs do not count (GCNet's own README: 10.6 -> 10.1 fps for r16 on Mask R-CNN). So, as
the hardware-aware NAS literature does (ProxylessNAS, HW-NAS-Bench), the whole model is timed on the target
device: in eval mode, channels_last, with every BatchNorm folded into the convolution before it (what a
deployment toolchain does; GC's LayerNorm stays), ``batch`` inputs at ``resolution``, with ``threads`` CPU
threads; a warm-up of at least ``warmup_s`` seconds and 20 runs, then at least ``runs`` timed runs (200 at
batch 1); the median and the interquartile range, measured again (up to ``attempts`` times, the steadiest kept)
while the range exceeds ``max_spread`` of the median (for a configuration timed against the baseline, below: the
range of its per-block ratios, and the warm-up shared between the two models).

A configuration with GC is timed in alternation with the baseline without GC, in blocks of 10 runs (ABBA), both
freshly built: a shared machine's slow phases last seconds, so they fall on both sides of a block, and the median
of the blocks' ratios (``vs_baseline``) is what ranks configurations. Its milliseconds are that ratio times the
baseline's own measurement, so one slow phase moves every figure of a search together instead of one
configuration's (experiments/results/bench_latency-cpu.md measures both kinds of noise).

Latency depends on the architecture, not the weights: it is measured once per configuration and cached under
``<output.dir>/latency/`` by a key of the configuration, the backbone, the settings, torch's version and the
hardware; a resumed search measures nothing again. Measurements on one machine take a file lock, so two
never overlap; inside a search each trial measures on the cores (or the GPU) Ray gave it, before it trains.
"""

from __future__ import annotations

import copy
import dataclasses
import fcntl
import hashlib
import json
import math
import os
import platform
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from gcsearch.arch import ArchConfig
from gcsearch.errors import ConfigError
from gcsearch.files import write_atomic
from gcsearch.nn.backbone import describe
from gcsearch.nn.models import build_model
from gcsearch.settings import BackboneConfig, LatencyConfig

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass(frozen=True)
class Latency:
    median_ms: float
    iqr_ms: float  # interquartile range of the timed runs (against the baseline, the spread judged is the ratios')
    runs: int
    attempts: int  # measurements made (the steadiest kept)
    vs_baseline: float = 1.0  # its time over the baseline's, timed in alternation (module docstring)

    @property
    def spread(self) -> float:
        return self.iqr_ms / self.median_ms if self.median_ms else float("inf")


def check(cfg: LatencyConfig) -> None:
    """A setting this machine cannot measure, before any compute: one line."""
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("search.latency.device", "must name a device this machine has: cuda is not available "
                          "here (measure on the GPU node, or use cpu)", cfg.device)  # fmt: skip


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """A copy of ``model`` in eval mode with every BatchNorm that follows a convolution folded into it: the pairs
    its description lists (nn/backbone.py); a model that does not describe itself is timed as it is."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    folded = copy.deepcopy(model).eval()
    pairs = describe(folded).conv_bn if hasattr(folded, "describe") else ()
    for conv_path, bn_path in pairs:
        conv, bn = folded.get_submodule(conv_path), folded.get_submodule(bn_path)
        assert isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d)
        folded.set_submodule(conv_path, fuse_conv_bn_eval(conv, bn))
        folded.set_submodule(bn_path, nn.Identity())
    return folded


BLOCK_RUNS = 10  # runs per block when timing against the baseline: milliseconds, under a slow phase's seconds


def measure(model: nn.Module, input_size: tuple[int, int, int], cfg: LatencyConfig,
            against: nn.Module | None = None) -> Latency:  # fmt: skip
    """Time ``model`` as ``cfg`` says (module docstring); with ``against`` (the baseline), in alternation with it:
    then ``vs_baseline`` is the median of the per-block ratios of medians, and the spread judged is theirs."""
    device = torch.device(cfg.device)
    dtype = DTYPES[cfg.dtype]
    c, h, w = input_size if cfg.resolution is None else (input_size[0], cfg.resolution, cfg.resolution)
    threads = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)
    try:
        nets = [_prepared(m, device, dtype) for m in (model, *([] if against is None else [against]))]
        x = torch.randn(cfg.batch, c, h, w, device=device, dtype=dtype).to(memory_format=torch.channels_last)
        runs = cfg.timed_runs
        tried: list[tuple[Latency, float]] = []  # measurements and their spreads
        with torch.inference_mode():
            for net in nets:
                _timed(net, x, device, 0, cfg.warmup_s / len(nets))
            while len(tried) < cfg.attempts and (not tried or min(s for _, s in tried) > cfg.max_spread):
                tried.append(_once(nets, x, device, runs))
        steadiest = min(tried, key=lambda t: t[1])[0]
        return dataclasses.replace(steadiest, attempts=len(tried))
    finally:
        torch.set_num_threads(threads)


def _prepared(model: nn.Module, device: torch.device, dtype: torch.dtype) -> nn.Module:
    return fold_batchnorm(model).to(device=device, dtype=dtype).to(memory_format=torch.channels_last)


def _once(nets: list[nn.Module], x: torch.Tensor, device: torch.device, runs: int) -> tuple[Latency, float]:
    """One measurement and its spread: IQR/median of the runs alone, of the per-block ratios against the baseline."""
    if len(nets) == 1:
        times = _timed(nets[0], x, device, runs, 0.0)
        q = statistics.quantiles(times, n=4)
        got = Latency(statistics.median(times), q[2] - q[0], runs, 1)
        return got, got.spread
    block = min(BLOCK_RUNS, runs)
    blocks = max(2, math.ceil(runs / block))
    blocks += blocks % 2  # an even count: each side goes first equally often
    mine: list[float] = []
    base: list[float] = []
    ratios = []
    for k in range(blocks):
        sides = ((mine, nets[0]), (base, nets[1]))
        for times, net in sides if k % 2 == 0 else sides[::-1]:  # ABBA: neither side always goes first
            # _timed's 20 untimed runs come first: a side's timed runs never pay for the switch from the other model
            times += _timed(net, x, device, block, 0.0)
        ratios.append(statistics.median(mine[-block:]) / statistics.median(base[-block:]))
    q, rq = statistics.quantiles(mine, n=4), statistics.quantiles(ratios, n=4)
    median = statistics.median(mine)
    got = Latency(median, q[2] - q[0], len(mine), 1, statistics.median(ratios))
    return got, (rq[2] - rq[0]) / statistics.median(ratios)


def _timed(net: nn.Module, x: torch.Tensor, device: torch.device, runs: int, warmup_s: float) -> list[float]:
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    start, warm = _clock(), 0
    while warm < 20 or _clock() - start < warmup_s:
        net(x)
        warm += 1
    sync()
    times = []
    for _ in range(runs):
        t0 = _clock()
        net(x)
        sync()
        times.append((_clock() - t0) * 1000)
    return times


_clock = time.perf_counter  # a test replaces it with a clock of its own


def hardware(cfg: LatencyConfig) -> str:
    """What the latency was measured on, as part of the cache key."""
    if cfg.device == "cuda":
        return torch.cuda.get_device_name()
    info = Path("/proc/cpuinfo")
    lines = info.read_text().splitlines() if info.exists() else []
    model = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "")
    return f"{model or platform.processor() or platform.machine()} ({os.cpu_count()} cpus)"


def key(arch: ArchConfig, backbone: BackboneConfig, cfg: LatencyConfig) -> str:
    """The cache key: the configuration, the backbone (its shape, not its weights), the settings, torch's version
    and the hardware."""
    shape = {
        k: v for k, v in dataclasses.asdict(backbone).items() if k not in ("weights", "weights_sha256", "pretrain")
    }
    # "paired": a figure measured before configurations were timed against the baseline is not reused
    blob = json.dumps({"arch": arch.to_dict(), "backbone": shape, "latency": dataclasses.asdict(cfg), "paired": True,
                       "torch": torch.__version__, "hardware": hardware(cfg)}, sort_keys=True, default=str)  # fmt: skip
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


MEASURED = 0  # measurements made by this process (a test checks a resumed search makes none)


def latency(arch: ArchConfig, backbone: BackboneConfig, cfg: LatencyConfig, cache_dir: Path) -> Latency:
    """The configuration's latency from the cache, or measured (under the machine's lock) and cached: the baseline
    alone, a configuration with GC against the baseline (module docstring), its ms on the baseline's scale."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    cached = _cached(cache_dir, arch, backbone, cfg)
    if cached is not None:
        return cached
    with open(cache_dir / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one measurement at a time on this machine; released if we die
        base = _cached(cache_dir, ArchConfig(), backbone, cfg) or _measured(cache_dir, ArchConfig(), backbone, cfg)
        if arch.is_baseline:
            return base
        # measured by another trial while this one waited, or now
        return _cached(cache_dir, arch, backbone, cfg) or _measured(cache_dir, arch, backbone, cfg, base)


def _cached(cache_dir: Path, arch: ArchConfig, backbone: BackboneConfig, cfg: LatencyConfig) -> Latency | None:
    path = cache_dir / f"{key(arch, backbone, cfg)}.json"
    return Latency(**json.loads(path.read_text())["latency"]) if path.is_file() else None


def _measured(cache_dir: Path, arch: ArchConfig, backbone: BackboneConfig, cfg: LatencyConfig,
              base: Latency | None = None) -> Latency:  # fmt: skip
    global MEASURED
    model = build_model(gc=arch, **backbone.build_kwargs())
    if base is None:
        got = measure(model, backbone.input_size, cfg)
    else:
        paired = measure(
            model, backbone.input_size, cfg, against=build_model(gc=ArchConfig(), **backbone.build_kwargs())
        )
        scale = paired.vs_baseline * base.median_ms / paired.median_ms  # onto the baseline's scale
        got = dataclasses.replace(paired, median_ms=paired.median_ms * scale, iqr_ms=paired.iqr_ms * scale)
    MEASURED += 1
    write_atomic(cache_dir / f"{key(arch, backbone, cfg)}.json",
                 json.dumps({"arch": arch.to_dict(), "latency": dataclasses.asdict(got),
                             "baseline_ms": (base or got).median_ms,  # the scale its ms are on
                             "settings": dataclasses.asdict(cfg), "torch": torch.__version__,
                             "hardware": hardware(cfg)}, indent=1))  # fmt: skip
    return got
