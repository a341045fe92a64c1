"""Forward+backward time and memory of gcsearch.GlobalContext against the official code's formulation.

The reference is written here from the paper's equations the way the official code writes them
(xvjiarui/GCNet, mmcv ContextBlock): a 1x1 conv for the mask, reshape/unsqueeze/matmul for the
attention pooling, Conv2d-LayerNorm-ReLU-Conv2d on the [N, C, 1, 1] context. Both run with the same
weights on the same input, side by side in one process, alternating, median of repeats.

Memory: the bytes autograd keeps for backward (saved tensors, each storage counted once), which is
what a block adds to a training step's peak; on CUDA also torch.cuda.max_memory_allocated.

    python experiments/bench_block.py [--device cpu|cuda] [--repeats 20] [--threads N]

Writes experiments/results/bench_block-<device>.md.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from gcsearch.nn.blocks import GlobalContext


class ReferenceGC(nn.Module):
    """The official formulation, sharing the parameters of a GlobalContext."""

    def __init__(self, block: GlobalContext):
        super().__init__()
        self.block = block

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = self.block
        n, c, h, w = x.shape
        if b.pool == "att":
            input_x = x.view(n, c, h * w).unsqueeze(1)  # [N, 1, C, HW]
            mask = b.conv_mask(x).view(n, 1, h * w)
            mask = F.softmax(mask, dim=2).unsqueeze(-1)  # [N, 1, HW, 1]
            context = torch.matmul(input_x, mask).view(n, c, 1, 1)
        else:
            context = F.adaptive_avg_pool2d(x, 1)
        out = x
        if b.channel_mul_conv is not None:
            out = out * torch.sigmoid(b.channel_mul_conv(context))
        if b.channel_add_conv is not None:
            out = out + b.channel_add_conv(context)
        return out


def saved_bytes(fn, x: torch.Tensor) -> int:
    storages: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn(x)
    out.sum().backward()
    storages.pop(x.untyped_storage().data_ptr(), None)  # the input is the caller's, not the block's
    return sum(storages.values())


def step_time(fn, x: torch.Tensor, grad: torch.Tensor, device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    fn(x).backward(grad)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def cuda_peak(fn, x: torch.Tensor, grad: torch.Tensor) -> int:
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    fn(x).backward(grad)
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() - base


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=0, help="torch threads on CPU (0 = torch's default)")
    args = parser.parse_args()
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    sizes = {"proxy (C=64, 14x14, N=256)": (256, 64, 14, 14), "ResNet-50 c4 (C=1024, 14x14, N=32)": (32, 1024, 14, 14)}
    rows = []
    for size_name, (n, c, h, w) in sizes.items():
        for pool in ("att", "avg"):
            for fusion in ("add", "mul"):
                for layout in ("NCHW", "channels_last"):
                    torch.manual_seed(0)
                    block = GlobalContext(c, pool=pool, fusion=fusion, ratio=1 / 16).to(device, dtype)
                    with torch.no_grad():  # non-zero last convs, so every term is live
                        for p in block.parameters():
                            p.normal_(0, 0.05)
                    ref = ReferenceGC(block)
                    fmt = torch.channels_last if layout == "channels_last" else torch.contiguous_format
                    x = torch.randn(n, c, h, w, device=device, dtype=dtype).to(memory_format=fmt).requires_grad_()
                    grad = torch.randn_like(x)
                    with torch.no_grad():
                        diff = (block(x) - ref(x)).abs().max().item()
                    times: dict[str, list[float]] = {"ours": [], "ref": []}
                    for i in range(args.repeats + 3):
                        for name, fn in (("ours", block), ("ref", ref)):
                            x.grad = None
                            t = step_time(fn, x, grad, device)
                            if i >= 3:  # warm-up
                                times[name].append(t)
                    ours, theirs = statistics.median(times["ours"]), statistics.median(times["ref"])
                    mem = (saved_bytes(block, x), saved_bytes(ref, x))
                    peak = (cuda_peak(block, x, grad), cuda_peak(ref, x, grad)) if device.type == "cuda" else None
                    rows.append((size_name, pool, fusion, layout, ours, theirs, mem, peak, diff, x))
                    print(f"{size_name} {pool}+{fusion} {layout}: {ours * 1e3:.2f} ms vs {theirs * 1e3:.2f} ms "
                          f"({ours / theirs:.2f}x), saved {mem[0] / 2**20:.1f} vs {mem[1] / 2**20:.1f} MiB, "
                          f"max diff {diff:.2e}", flush=True)  # fmt: skip

    name = torch.cuda.get_device_name() if device.type == "cuda" else platform.processor() or platform.machine()
    lines = [
        "# GlobalContext vs the official formulation: forward + backward",
        "",
        f"Command: `python {' '.join(sys.argv)}`",
        f"Machine: {device.type} ({name}), {torch.get_num_threads()} threads, {dtype}, torch {torch.__version__}; "
        f"median of {args.repeats} alternating repeats after 3 warm-ups; ratio 1/16, LayerNorm",
        "",
        "| size | pool+fusion | layout | ours ms | reference ms | ratio | saved for backward MiB (ours / ref) |"
        + (" CUDA peak MiB (ours / ref) |" if device.type == "cuda" else "")
        + " max abs diff |",
        "|---|---|---|---|---|---|---|" + ("---|" if device.type == "cuda" else "") + "---|",
    ]
    for size_name, pool, fusion, layout, ours, theirs, mem, peak, diff, _ in rows:
        peak_text = f" {peak[0] / 2**20:.1f} / {peak[1] / 2**20:.1f} |" if peak else ""
        lines.append(
            f"| {size_name} | {pool}+{fusion} | {layout} | {ours * 1e3:.2f} | {theirs * 1e3:.2f} | "
            f"{ours / theirs:.2f} | {mem[0] / 2**20:.1f} / {mem[1] / 2**20:.1f} |{peak_text} {diff:.1e} |"
        )
    ratios = [r[4] / r[5] for r in rows]
    lines += ["", f"**Median ratio ours/reference: {statistics.median(ratios):.2f}** (worst {max(ratios):.2f}; "
              "target <= 0.8 on CPU)"]  # fmt: skip
    if device.type == "cuda":
        # Bytes a fused forward+backward must move at least: read x and write y forward; read x, dy and
        # write dx backward (5 passes over the feature map).
        bandwidth = {"H100": 3.35e12, "H200": 4.8e12}
        peak_bw = next((v for k, v in bandwidth.items() if k in name), None)
        lines.append("")
        for size_name, pool, fusion, layout, ours, _, _, _, _, x in rows:
            moved = 5 * x.numel() * x.element_size()
            achieved = moved / ours
            frac = f", {achieved / peak_bw:.0%} of the device's {peak_bw / 1e12:.2f} TB/s" if peak_bw else ""
            lines.append(f"- {size_name} {pool}+{fusion} {layout}: {achieved / 1e9:.0f} GB/s effective{frac}")
    out = Path(__file__).parent / "results" / f"bench_block-{device.type}.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines[-3:]))


if __name__ == "__main__":
    main()
