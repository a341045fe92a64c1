"""Backbones with GC blocks inserted.

Every backbone is ``nn/resnet.py``'s ResNet (torchvision's architecture and initialisation): torchvision's
resnet18/34/50/101, and ``proxy_resnet``, the same with a small-image stem (3x3 conv, stride 1, no max-pool)
and a configurable width and depth, for 28x28 and 32x32 proxies. Stages are named as in the paper: c2..c5
are layer1..layer4; the GC positions are described in nn/resnet.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from gcsearch.arch import BACKBONES, ArchConfig, block_kind, check_choice
from gcsearch.errors import ConfigError
from gcsearch.nn.backbone import describe
from gcsearch.nn.blocks import GlobalContext
from gcsearch.nn.resnet import BasicBlock, Bottleneck, ResidualBlock, ResNet

# Residual blocks per stage c2..c5 (the block kind of each is arch.TORCHVISION_BLOCKS's).
TORCHVISION_RESNETS: dict[str, list[int]] = {
    "resnet18": [2, 2, 2, 2],
    "resnet34": [3, 4, 6, 3],
    "resnet50": [3, 4, 6, 3],
    "resnet101": [3, 4, 23, 3],
}
BLOCK_TYPES: dict[str, type[ResidualBlock]] = {"basic": BasicBlock, "bottleneck": Bottleneck}


def backbone_block(backbone: str, block: str = "basic") -> type[ResidualBlock]:
    """The residual block class a backbone is made of (``block`` matters for proxy_resnet only)."""
    check_choice("backbone", backbone, BACKBONES)
    if backbone == "proxy_resnet":
        check_choice("block", block, tuple(BLOCK_TYPES))
    return BLOCK_TYPES[block_kind(backbone, block)]


def _make_backbone(
    backbone: str,
    *,
    num_classes: int,
    in_channels: int,
    width: int,
    depth: list[int],
    block: str,
) -> ResNet:
    block_type = backbone_block(backbone, block)
    if backbone == "proxy_resnet":
        if not isinstance(width, int) or isinstance(width, bool) or width < 1:
            raise ConfigError("width", "must be a positive integer", width)
        if (
            not isinstance(depth, (list, tuple))
            or not 1 <= len(depth) <= 4
            or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in depth)
        ):
            raise ConfigError("depth", "must be 1 to 4 positive integers, blocks per stage c2..c5", depth)
        return ResNet(block_type, list(depth), num_classes=num_classes, width=width, in_channels=in_channels,
                      small_stem=True)  # fmt: skip
    model = ResNet(block_type, TORCHVISION_RESNETS[backbone], num_classes=num_classes)
    if in_channels != 3:  # after the initialisation, as gcsearch did on torchvision's class: the same seeded weights
        model.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
    return model


def insert_gc(model: nn.Module, arch: ArchConfig) -> int:
    """Put one GC block in every residual block of ``arch.stages``, at the site of ``arch.position`` the model's
    description names (nn/backbone.py); returns how many were added."""
    info = describe(model)
    added = 0
    for name in arch.stages:
        stage = info.stage(name)
        if stage is None:
            raise ConfigError("stages", f"must name stages this backbone has: {[s.name for s in info.stages]}", name)
        for block in stage.blocks:
            site = block.site(str(arch.position))
            if site is None:
                check_choice("position", arch.position, tuple(s.position for s in block.sites))
            assert site is not None and arch.pool and arch.fusion and arch.ratio and arch.norm
            res_block: Any = model.get_submodule(block.path)
            res_block.gc = GlobalContext(site.channels, pool=arch.pool, fusion=arch.fusion, ratio=arch.ratio,
                                         norm=arch.norm, gate_init=arch.gate_init)  # fmt: skip
            res_block.gc_position = site.position
            added += 1
    return added


def build_model(
    *,
    backbone: str = "resnet50",
    gc: ArchConfig | Mapping[str, Any] | None = None,
    num_classes: int = 1000,
    in_channels: int = 3,
    width: int = 16,
    depth: list[int] | None = None,
    block: str = "basic",
) -> nn.Module:
    """A backbone with GC blocks; ``gc=None`` or ``stages=[]`` is the baseline without GC.

    ``width``, ``depth`` (blocks per stage c2..c5) and ``block`` apply to ``proxy_resnet`` only.
    ``gcsearch.build_model("best.yaml")`` rebuilds an exported configuration (the package reads the export:
    models import no export).
    """
    arch = gc if isinstance(gc, ArchConfig) else ArchConfig.from_dict(gc)
    model = _make_backbone(
        backbone,
        num_classes=num_classes,
        in_channels=in_channels,
        width=width,
        depth=list(depth) if depth is not None else [1, 1, 1, 1],
        block=block,
    )
    insert_gc(model, arch)
    avoid_strided_pointwise_fault(model)
    return model


class SubsampledPointwise(nn.Conv2d):
    """A 1x1 convolution of stride s, computed as a stride-1 one on every s-th pixel: the same function, the
    same weights and state_dict, and a different oneDNN kernel.

    Why: torch 2.14.1's bundled oneDNN (v3.12.0) writes past a buffer in the weight gradient of a strided 1x1
    convolution under channels_last when its input has fewer than 16 channels (not a multiple of 16: the
    jit_avx512 1x1 backward-weights kernel steps through channels 16 at a time), and the process dies with
    SIGSEGV or "double free or corruption" from about 48 px up. Minimal case: ``w = torch.randn(16, 8, 1, 1)``,
    ``x = torch.randn(16, 8, 64, 64)``, both channels_last, ``F.conv2d(x, w.requires_grad_(), stride=2)
    .backward(...)``. In the proxy backbone it is the downsample of c3 (8 -> 16 channels at width 8); stride 1
    never reaches that kernel."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sh, sw = self.stride
        return nn.functional.conv2d(x[:, :, ::sh, ::sw], self.weight, self.bias, 1, 0, 1, self.groups)


def avoid_strided_pointwise_fault(model: nn.Module) -> None:
    """Every strided 1x1 convolution whose input channels are not a multiple of 16 becomes a
    ``SubsampledPointwise`` (the class only: parameters and state_dict keys stay)."""
    for m in model.modules():
        if (type(m) is nn.Conv2d and m.kernel_size == (1, 1) and m.padding == (0, 0) and m.stride != (1, 1)
                and m.dilation == (1, 1) and m.padding_mode == "zeros" and m.in_channels % 16):  # fmt: skip
            m.__class__ = SubsampledPointwise


def gc_blocks(model: nn.Module) -> list[GlobalContext]:
    return [m for m in model.modules() if isinstance(m, GlobalContext)]
