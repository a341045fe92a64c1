"""Global Context block.

Cao et al., "GCNet: Non-local Networks Meet Squeeze-Excitation Networks and Beyond", 2019
(arXiv 1904.11492). Submodule names follow the official code (mmcv's ContextBlock: ``conv_mask``,
``channel_add_conv``, ``channel_mul_conv``) so its weights load unchanged.

    context   = sum_j softmax_j(W_k x_j) x_j           (att)   or   mean_j x_j   (avg)
    transform = W_v2 ReLU(LN(W_v1 context))
    out       = x + transform_add                       (add)
              = x * sigmoid(transform_mul)              (mul)
              = x * sigmoid(transform_mul) + transform_add   (both)
"""

from __future__ import annotations

import torch
from torch import nn

from gcsearch.arch import FUSIONS, NORMS, POOLS, check_choice, parse_ratio
from gcsearch.errors import ConfigError


def bottleneck_channels(channels: int, ratio: float) -> int:
    """round(C * ratio), at least 1: the width of the transform's bottleneck.

    At widths 1 and 2 LayerNorm returns its bias or a sign, so no gradient reaches the pooling: keep
    round(C * ratio) >= 3 where norm is layernorm (the space validator warns).
    """
    return max(1, round(channels * ratio))


def _transform(channels: int, planes: int, norm: str) -> nn.Sequential:
    last = nn.Conv2d(planes, channels, kernel_size=1)
    # Zero last conv: under add fusion a fresh block is the identity, so it can be dropped into a
    # trained network without disturbing it.
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)  # type: ignore[arg-type]
    return nn.Sequential(
        nn.Conv2d(channels, planes, kernel_size=1),
        # LayerNorm over [planes, 1, 1] as in the official code: it eases optimising the bottleneck.
        nn.LayerNorm([planes, 1, 1]) if norm == "layernorm" else nn.Identity(),
        nn.ReLU(inplace=True),
        last,
    )


class GlobalContext(nn.Module):
    """GC block: pool one context vector, transform it through a bottleneck, fuse it back."""

    def __init__(
        self,
        channels: int,
        *,
        pool: str = "att",
        fusion: str = "add",
        ratio: float | str = 1 / 16,
        norm: str = "layernorm",
    ) -> None:
        super().__init__()
        if not isinstance(channels, int) or isinstance(channels, bool) or channels < 1:
            raise ConfigError("channels", "must be a positive integer", channels)
        self.pool = check_choice("pool", pool, POOLS)
        self.fusion = check_choice("fusion", fusion, FUSIONS)
        self.norm = check_choice("norm", norm, NORMS)
        self.ratio = parse_ratio(ratio)
        self.channels = channels
        self.planes = bottleneck_channels(channels, self.ratio)

        if self.pool == "att":
            self.conv_mask = nn.Conv2d(channels, 1, kernel_size=1)
            nn.init.kaiming_normal_(self.conv_mask.weight, mode="fan_in", nonlinearity="relu")
            nn.init.zeros_(self.conv_mask.bias)  # type: ignore[arg-type]
        self.channel_add_conv = _transform(channels, self.planes, norm) if fusion in ("add", "both") else None
        self.channel_mul_conv = _transform(channels, self.planes, norm) if fusion in ("mul", "both") else None

    def extra_repr(self) -> str:
        return f"{self.channels}, pool={self.pool}, fusion={self.fusion}, ratio={self.ratio:g}, norm={self.norm}"

    def spatial_pool(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        if self.pool == "avg":
            return x.mean(dim=(2, 3), keepdim=True)  # [N, C, 1, 1]
        mask = self.conv_mask(x).view(n, h * w, 1)  # [N, H*W, 1]
        mask = mask.softmax(dim=1)
        # One batched matmul over a view of x: [N, C, H*W] @ [N, H*W, 1]. The view costs no copy in
        # NCHW (strides H*W, 1) nor in channels_last (strides 1, C), and BLAS reads either layout.
        context = torch.bmm(x.view(n, c, h * w), mask)  # [N, C, 1]
        return context.view(n, c, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        context = self.spatial_pool(x)  # [N, C, 1, 1]
        out = x
        if self.channel_mul_conv is not None:
            out = out * torch.sigmoid(self.channel_mul_conv(context))
        if self.channel_add_conv is not None:
            out = out + self.channel_add_conv(context)
        return out
