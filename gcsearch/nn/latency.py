"""Measured latency: what a configuration costs on the hardware a user deploys it to, beside its MACs.

A GC block adds about 0.2% of the proxy's MACs, yet attention pooling, a LayerNorm over a vector and two
broadcasts cost time that MACs do not count (GCNet's own README: 10.6 -> 10.1 fps for r16 on Mask R-CNN). So, as
the hardware-aware NAS literature does (ProxylessNAS, HW-NAS-Bench), the whole model is timed on the target
device: in eval mode, channels_last, with every BatchNorm folded into the convolution before it (what a
deployment toolchain does; GC's LayerNorm stays), ``batch`` inputs at ``resolution``, with ``threads`` CPU
threads; a warm-up of at least ``warmup_s`` seconds and 20 runs, then at least ``runs`` timed runs (200 at
batch 1); the median and the interquartile range, measured again (up to ``attempts`` times, the steadiest kept)
while the range exceeds ``max_spread`` of the median.

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
import itertools
import json
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
from gcsearch.nn.models import build_model
from gcsearch.settings import BackboneConfig, LatencyConfig

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass(frozen=True)
class Latency:
    median_ms: float
    iqr_ms: float  # interquartile range of the timed runs
    runs: int
    attempts: int  # measurements made (the steadiest kept)

    @property
    def spread(self) -> float:
        return self.iqr_ms / self.median_ms if self.median_ms else float("inf")


def check(cfg: LatencyConfig) -> None:
    """A setting this machine cannot measure, before any compute: one line."""
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("search.latency.device", "must name a device this machine has: cuda is not available "
                          "here (measure on the GPU node, or use cpu)", cfg.device)  # fmt: skip


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """A copy of ``model`` in eval mode with every BatchNorm that follows a convolution folded into it."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    folded = copy.deepcopy(model).eval()
    for module in folded.modules():
        children = list(module.named_children())
        for (name, child), (next_name, following) in itertools.pairwise(children):
            if isinstance(child, nn.Conv2d) and isinstance(following, nn.BatchNorm2d):
                setattr(module, name, fuse_conv_bn_eval(child, following))
                setattr(module, next_name, nn.Identity())
        # torchvision's residual blocks hold conv_i / bn_i as attributes, not in sequence order: pair them by name.
        for i in ("1", "2", "3"):
            conv, bn = getattr(module, f"conv{i}", None), getattr(module, f"bn{i}", None)
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                setattr(module, f"conv{i}", fuse_conv_bn_eval(conv, bn))
                setattr(module, f"bn{i}", nn.Identity())
    return folded


def measure(model: nn.Module, input_size: tuple[int, int, int], cfg: LatencyConfig) -> Latency:
    """Time ``model`` as ``cfg`` says (module docstring)."""
    device = torch.device(cfg.device)
    dtype = DTYPES[cfg.dtype]
    c, h, w = input_size if cfg.resolution is None else (input_size[0], cfg.resolution, cfg.resolution)
    threads = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)
    try:
        net = fold_batchnorm(model).to(device=device, dtype=dtype).to(memory_format=torch.channels_last)
        x = torch.randn(cfg.batch, c, h, w, device=device, dtype=dtype).to(memory_format=torch.channels_last)
        runs = max(cfg.runs, 200 if cfg.batch == 1 else cfg.runs)
        best: Latency | None = None
        with torch.inference_mode():
            for attempt in range(1, cfg.attempts + 1):
                times = _timed(net, x, device, runs, cfg.warmup_s)
                q = statistics.quantiles(times, n=4)
                got = Latency(statistics.median(times), q[2] - q[0], runs, attempt)
                best = got if best is None or got.spread < best.spread else dataclasses.replace(best, attempts=attempt)
                if best.spread <= cfg.max_spread:
                    break
        assert best is not None
        return best
    finally:
        torch.set_num_threads(threads)


def _timed(net: nn.Module, x: torch.Tensor, device: torch.device, runs: int, warmup_s: float) -> list[float]:
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    start, warm = time.perf_counter(), 0
    while warm < 20 or time.perf_counter() - start < warmup_s:
        net(x)
        warm += 1
    sync()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        net(x)
        sync()
        times.append((time.perf_counter() - t0) * 1000)
    return times


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
    blob = json.dumps({"arch": arch.to_dict(), "backbone": shape, "latency": dataclasses.asdict(cfg),
                       "torch": torch.__version__, "hardware": hardware(cfg)}, sort_keys=True, default=str)  # fmt: skip
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


MEASURED = 0  # measurements made by this process (a test checks a resumed search makes none)


def latency(arch: ArchConfig, backbone: BackboneConfig, cfg: LatencyConfig, cache_dir: Path) -> Latency:
    """The configuration's latency from the cache, or measured (under the machine's lock) and cached."""
    global MEASURED
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / f"{key(arch, backbone, cfg)}.json"
    if path.is_file():
        return Latency(**json.loads(path.read_text())["latency"])
    with open(cache_dir / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one measurement at a time on this machine; released if we die
        if path.is_file():  # measured by another trial while this one waited
            return Latency(**json.loads(path.read_text())["latency"])
        model = build_model(gc=arch, **backbone.build_kwargs())
        got = measure(model, backbone.input_size, cfg)
        MEASURED += 1
        write_atomic(path, json.dumps({"arch": arch.to_dict(), "latency": dataclasses.asdict(got),
                                       "settings": dataclasses.asdict(cfg), "torch": torch.__version__,
                                       "hardware": hardware(cfg)}, indent=1))  # fmt: skip
    return got
