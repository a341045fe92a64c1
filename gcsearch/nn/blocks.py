"""Global Context block.

Cao et al., "GCNet: Non-local Networks Meet Squeeze-Excitation Networks and Beyond", 2019
(arXiv 1904.11492). Submodule names follow the official code (mmcv's ContextBlock: ``conv_mask``,
``channel_add_conv``, ``channel_mul_conv``) so its weights load unchanged.

    context   = sum_j softmax_j(W_k x_j) x_j           (att)   or   mean_j x_j   (avg)
    transform = W_v2 ReLU(LN(W_v1 context))
    out       = x + transform_add                       (add)
              = x * gate(transform_mul)                 (mul)
              = x * gate(transform_mul) + transform_add (both)
    gate      = sigmoid         (gate_init "half": the official code; a fresh block scales x by 0.5)
              = 2 * sigmoid     (gate_init "identity", beyond the official code: a fresh block is exactly x)

Every transform's last conv starts at zero, as in the official code: with add fusion, and with an identity-start
gate, a fresh block leaves a trained network's features as they were, so it can be fine-tuned in without
first undoing a halving.
"""

from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from gcsearch.arch import FUSIONS, GATE_INITS, GATED, NORMS, POOLS, check_choice, parse_ratio
from gcsearch.errors import ConfigError


def bottleneck_channels(channels: int, ratio: float) -> int:
    """round(C * ratio), at least 1: the width of the transform's bottleneck.

    At widths 1 and 2 LayerNorm returns its bias or a sign, so no gradient reaches the pooling: keep
    round(C * ratio) >= 3 where norm is layernorm (`gcsearch validate` warns; a search does not stop for it).
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
        gate_init: str | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(channels, int) or isinstance(channels, bool) or channels < 1:
            raise ConfigError("channels", "must be a positive integer", channels)
        self.pool = check_choice("pool", pool, POOLS)
        self.fusion = check_choice("fusion", fusion, FUSIONS)
        self.norm = check_choice("norm", norm, NORMS)
        # A gate only where there is one (mul, both); not named, it starts as the official code's (half).
        gated = self.fusion in GATED
        self.gate_init = check_choice("gate_init", gate_init or "half", GATE_INITS) if gated else None
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
        gate = f", gate_init={self.gate_init}" if self.gate_init else ""
        return f"{self.channels}, pool={self.pool}, fusion={self.fusion}, ratio={self.ratio:g}, norm={self.norm}{gate}"

    def spatial_pool(self, x: torch.Tensor) -> torch.Tensor:
        """The context vector, [N, C]."""
        n, c, h, w = x.shape
        if self.pool == "avg":
            return F.adaptive_avg_pool2d(x, 1).view(n, c)  # its backward kernel beats mean's on CPU
        # A view, no copy, in NCHW (strides H*W, 1) and in channels_last (strides 1, C); BLAS reads both.
        flat = x.view(n, c, h * w)  # [N, C, H*W]
        # The 1x1 mask conv as one batched matmul over that view (bmm, not matmul: matmul would fold the
        # broadcast through a transposed copy of x in NCHW). Its bias is left out: softmax ignores a shift.
        logits = torch.bmm(self.conv_mask.weight.view(1, 1, c).expand(n, 1, c), flat)  # [N, 1, H*W]
        weights = logits.softmax(dim=2)
        return torch.bmm(flat, weights.transpose(1, 2)).view(n, c)  # [N, C]

    @staticmethod
    def transform(seq: nn.Sequential, context: torch.Tensor) -> torch.Tensor:
        """conv1x1 -> LayerNorm -> ReLU -> conv1x1 on [N, C, 1, 1], run as linear layers on [N, C]
        (same weights and result; a 1x1 conv on a 1x1 map pays conv set-up for a matrix product)."""
        first, norm, _, last = cast("tuple[nn.Conv2d, nn.Module, nn.Module, nn.Conv2d]", tuple(seq))
        y = F.linear(context, first.weight.flatten(1), first.bias)  # [N, P]
        if isinstance(norm, nn.LayerNorm):
            y = F.layer_norm(y, y.shape[1:], norm.weight.flatten(), norm.bias.flatten(), norm.eps)  # type: ignore[union-attr]
        return F.linear(F.relu(y), last.weight.flatten(1), last.bias)  # [N, C]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c = x.shape[:2]
        context = self.spatial_pool(x)  # [N, C]
        add = self.transform(self.channel_add_conv, context).view(n, c, 1, 1) if self.channel_add_conv else None
        if self.channel_mul_conv is None:
            assert add is not None
            return x + add
        scale = torch.sigmoid(self.transform(self.channel_mul_conv, context)).view(n, c, 1, 1)
        if self.gate_init == "identity":
            scale = scale * 2  # sigmoid(0) * 2 = 1: the fresh block passes x through unchanged
        return x * scale if add is None else torch.addcmul(add, x, scale)  # both: one pass over x
