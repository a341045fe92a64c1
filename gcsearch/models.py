"""Backbones with GC blocks inserted.

The ResNets are torchvision's (He et al. 2016), rebuilt here module for module: the same module tree
(conv1, bn1, layer1..4 of BasicBlock/Bottleneck, fc), the same state_dict keys, and, under one seed, the
same initial weights (tests/test_models.py checks all three against torchvision). Not importing
torchvision keeps each trial worker lean: its import pulls in torch._dynamo and sympy, 163 MiB of RSS
and 1.7 s per worker (experiments/results/worker_memory.md). The residual blocks call an optional GC
block at one of three positions (``position`` in the GCNet code):

    after_1x1  after the block's last conv+bn, before the residual addition (for BasicBlock the last
               3x3); the official default
    after_3x3  after conv2+bn2+relu of a Bottleneck, on its mid channels (BasicBlock has no such place)
    after_add  after the residual addition, before the final ReLU

Stages are named as in the paper: c2..c5 are layer1..layer4. ``proxy_resnet`` is the same ResNet with a
small-image stem (3x3 conv, stride 1, no max-pool) and a configurable width and depth, for 28x28 and
32x32 proxies.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gcsearch.arch import BACKBONES, STAGES, ArchConfig, check_choice
from gcsearch.blocks import GlobalContext
from gcsearch.errors import ConfigError
from gcsearch.files import replace_with

STAGE_LAYERS = dict(zip(STAGES, ("layer1", "layer2", "layer3", "layer4"), strict=True))


def conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        # Registration order is torchvision's: it fixes the order of initialisation, hence the weights.
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.stride = stride
        # Registered in __init__, not as class attributes, which would shadow the submodule.
        self.gc: GlobalContext | None = None
        self.gc_position: str | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.gc is not None and self.gc_position == "after_1x1":
            out = self.gc(out)
        out = out + identity
        if self.gc is not None and self.gc_position == "after_add":
            out = self.gc(out)
        return self.relu(out)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = conv1x1(inplanes, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, stride)  # stride on the 3x3 (torchvision's "ResNet V1.5")
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = conv1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride
        self.gc: GlobalContext | None = None
        self.gc_position: str | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        if self.gc is not None and self.gc_position == "after_3x3":
            out = self.gc(out)
        out = self.bn3(self.conv3(out))
        if self.gc is not None and self.gc_position == "after_1x1":
            out = self.gc(out)
        out = out + identity
        if self.gc is not None and self.gc_position == "after_add":
            out = self.gc(out)
        return self.relu(out)


Block = type[BasicBlock] | type[Bottleneck]

# name -> (block class, blocks per stage)
TORCHVISION_RESNETS: dict[str, tuple[Block, list[int]]] = {
    "resnet18": (BasicBlock, [2, 2, 2, 2]),
    "resnet34": (BasicBlock, [3, 4, 6, 3]),
    "resnet50": (Bottleneck, [3, 4, 6, 3]),
    "resnet101": (Bottleneck, [3, 4, 23, 3]),
}
BLOCK_TYPES: dict[str, Block] = {"basic": BasicBlock, "bottleneck": Bottleneck}


def block_positions(block_type: type[nn.Module]) -> tuple[str, ...]:
    """The GC positions a residual block offers."""
    if block_type is Bottleneck:
        return ("after_1x1", "after_3x3", "after_add")
    return ("after_1x1", "after_add")


def backbone_block(backbone: str, block: str = "basic") -> Block:
    """The residual block class a backbone is made of (``block`` matters for proxy_resnet only)."""
    check_choice("backbone", backbone, BACKBONES)
    if backbone == "proxy_resnet":
        return BLOCK_TYPES[check_choice("block", block, tuple(BLOCK_TYPES))]
    return TORCHVISION_RESNETS[backbone][0]


class ResNet(nn.Module):
    """torchvision's ResNet: ``small_images`` swaps its stem (7x7 stride-2 conv + max-pool) for a 3x3
    stride-1 conv, ``width`` scales the stage widths (64 in torchvision), and fewer than 4 stages leave
    the missing ones as Identity (28 -> 14 -> 7 suits small images)."""

    layer1: nn.Module
    layer2: nn.Module
    layer3: nn.Module
    layer4: nn.Module

    def __init__(self, block: Block, layers: list[int], *, num_classes: int, in_channels: int = 3, width: int = 64,
                 small_images: bool = False) -> None:  # fmt: skip
        super().__init__()
        self.inplanes = width
        if small_images:
            self.conv1 = nn.Conv2d(in_channels, width, kernel_size=3, stride=1, padding=1, bias=False)
        else:
            self.conv1 = nn.Conv2d(in_channels, width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool: nn.Module = nn.Identity() if small_images else nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        for i in range(4):
            layer: nn.Module = nn.Identity()
            if i < len(layers):
                layer = self._make_layer(block, width * 2**i, layers[i], stride=1 if i == 0 else 2)
            setattr(self, f"layer{i + 1}", layer)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(width * 2 ** (len(layers) - 1) * block.expansion, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def _make_layer(self, block: Block, planes: int, blocks: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                conv1x1(self.inplanes, planes * block.expansion, stride), nn.BatchNorm2d(planes * block.expansion)
            )
        layers: list[nn.Module] = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


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
        return ResNet(block_type, list(depth), num_classes=num_classes, in_channels=in_channels, width=width,
                      small_images=True)  # fmt: skip
    _, layers = TORCHVISION_RESNETS[backbone]
    return ResNet(block_type, layers, num_classes=num_classes, in_channels=in_channels)


def insert_gc(model: ResNet, arch: ArchConfig) -> int:
    """Put one GC block in every residual block of ``arch.stages``; returns how many were added."""
    added = 0
    for stage in arch.stages:
        layer = getattr(model, STAGE_LAYERS[stage])
        if not isinstance(layer, nn.Sequential):
            present = [s for s, name in STAGE_LAYERS.items() if isinstance(getattr(model, name), nn.Sequential)]
            raise ConfigError("stages", f"must name stages this backbone has: {present}", stage)
        res_block: Any
        for res_block in layer:
            allowed = block_positions(type(res_block))
            position = check_choice("position", arch.position, allowed)
            if position == "after_3x3":
                channels = res_block.conv2.out_channels
            else:
                channels = (
                    res_block.bn2.num_features if isinstance(res_block, BasicBlock) else (res_block.bn3.num_features)
                )
            assert arch.pool and arch.fusion and arch.ratio and arch.norm
            res_block.gc = GlobalContext(channels, pool=arch.pool, fusion=arch.fusion, ratio=arch.ratio, norm=arch.norm)
            res_block.gc_position = position
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
    if not arch.is_baseline:
        allowed = block_positions(type(model.layer1[0]))  # type: ignore[index]
        check_choice("position", arch.position, allowed)
    insert_gc(model, arch)
    return model


def gc_blocks(model: nn.Module) -> list[GlobalContext]:
    return [m for m in model.modules() if isinstance(m, GlobalContext)]


def load_weights(model: nn.Module, weights: Path, source: str) -> nn.Module:
    """Trained weights into ``model``; ``source`` is the file that named them, for the error line."""
    if not weights.is_file():
        raise ConfigError("weights", "must name a file next to the export", str(weights), source)
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return model


def save_weights(checkpoint: Path, out: Path) -> None:
    """A trial checkpoint's model weights alone, for an export (atomic: temporary file, then rename): the
    EMA of the weights when the recipe keeps one, since that is what the trial's accuracy measured."""
    saved = torch.load(checkpoint, map_location="cpu", weights_only=True)
    state = saved.get("ema") or saved["model"]
    replace_with(out, lambda tmp: torch.save(state, tmp))
