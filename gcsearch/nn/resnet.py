"""The ResNet every backbone is: torchvision's architecture, module names and initialisation, without
importing torchvision.

Why not torchvision's class: importing ``torchvision.models`` imports all of torchvision, whose ``ops`` import
torch._dynamo and sympy; with its CUDA extension that is about 320 MiB of every trial worker's resident
memory, for a skeleton of 100 lines (experiments/results/worker_memory.md). This one builds the same modules
in the same order and draws the same random numbers, so a seed gives torchvision's weights bit for bit and
torchvision's ImageNet state dicts load unchanged (tests/test_models.py compares the two).

The residual blocks call an optional GC block (``gc``) at one of three positions (``gc_position``, as in
the GCNet code):

    after_1x1  after the block's last conv+bn, before the residual addition (for BasicBlock the last
               3x3); the official default
    after_3x3  after conv2+bn2+relu of a Bottleneck, on its mid channels (BasicBlock has no such place)
    after_add  after the residual addition, before the final ReLU
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from gcsearch.arch import STAGES as STAGE_NAMES
from gcsearch.nn.backbone import Block, Description, Site, Stage

if TYPE_CHECKING:
    from gcsearch.nn.blocks import GlobalContext


def conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class ResidualBlock(nn.Module):
    expansion = 1

    def __init__(self, stride: int) -> None:
        super().__init__()
        self.gc: GlobalContext | None = None  # set in __init__, not on the class, which would shadow the module
        self.gc_position: str | None = None
        self.stride = stride
        self.downsample: nn.Module | None = None  # set last: torchvision's module order is its init order

    def _gc(self, x: torch.Tensor, here: str) -> torch.Tensor:
        return self.gc(x) if self.gc is not None and self.gc_position == here else x

    def sites(self) -> tuple[Site, ...]:
        """Where a GC block can sit in this block (backbone.Site)."""
        raise NotImplementedError

    def conv_bn(self) -> tuple[tuple[str, str], ...]:
        """Its (convolution, BatchNorm) pairs, relative to the block, as forward applies them."""
        pairs = tuple((f"conv{i}", f"bn{i}") for i in range(1, 4) if hasattr(self, f"conv{i}"))
        return pairs + ((("downsample.0", "downsample.1"),) if self.downsample is not None else ())


class BasicBlock(ResidualBlock):
    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__(stride)
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def sites(self) -> tuple[Site, ...]:
        width = self.bn2.num_features
        return (Site("after_1x1", width, "bn2"), Site("after_add", width, ""))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self._gc(self.bn2(self.conv2(out)), "after_1x1")
        return self.relu(self._gc(out + identity, "after_add"))


class Bottleneck(ResidualBlock):
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__(stride)
        self.conv1 = conv1x1(inplanes, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = conv1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def sites(self) -> tuple[Site, ...]:
        width = self.bn3.num_features
        return (Site("after_1x1", width, "bn3"), Site("after_3x3", self.bn2.num_features, "bn2"),
                Site("after_add", width, ""))  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self._gc(self.relu(self.bn2(self.conv2(out))), "after_3x3")
        out = self._gc(self.bn3(self.conv3(out)), "after_1x1")
        return self.relu(self._gc(out + identity, "after_add"))


class ResNet(nn.Module):
    """Stages c2..c5 (layer1..layer4) of ``layers[i]`` blocks at width ``width * 2**i``; stages past
    ``len(layers)`` are Identity (small images: 28 -> 14 -> 7). ``small_stem``: a 3x3 stride-1 conv and no
    max-pool, for 28-40 px proxies; otherwise torchvision's 7x7 stride-2 conv and 3x3 max-pool."""

    # Set with setattr in __init__; declared so that type checkers know them.
    layer1: nn.Sequential
    layer2: nn.Module
    layer3: nn.Module
    layer4: nn.Module

    def __init__(self, block: type[ResidualBlock], layers: list[int], *, num_classes: int, width: int = 64,
                 in_channels: int = 3, small_stem: bool = False) -> None:  # fmt: skip
        super().__init__()
        self.inplanes = width
        if small_stem:
            self.conv1 = nn.Conv2d(in_channels, width, kernel_size=3, stride=1, padding=1, bias=False)
        else:
            self.conv1 = nn.Conv2d(in_channels, width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool: nn.Module = nn.Identity() if small_stem else nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        for i in range(4):
            stride = 1 if i == 0 else 2
            layer = nn.Identity() if i >= len(layers) else self._stage(block, width * 2**i, layers[i], stride)
            setattr(self, f"layer{i + 1}", layer)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(width * 2 ** (len(layers) - 1) * block.expansion, num_classes)
        for m in self.modules():  # torchvision's initialisation (BatchNorm's defaults are its constants)
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def _stage(self, block: type[ResidualBlock], planes: int, blocks: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(conv1x1(self.inplanes, planes * block.expansion, stride),
                                       nn.BatchNorm2d(planes * block.expansion))  # fmt: skip
        stage = [block(self.inplanes, planes, stride, downsample)]  # type: ignore[call-arg]
        self.inplanes = planes * block.expansion
        stage += [block(self.inplanes, planes) for _ in range(1, blocks)]  # type: ignore[call-arg]
        return nn.Sequential(*stage)

    def describe(self) -> Description:
        """Stages c2..c5 (layer1..layer4, those it has), their blocks and GC sites, its conv-BN pairs, its
        classifier (nn/backbone.py)."""
        stages, pairs = [], [("conv1", "bn1")]
        for i, name in enumerate(STAGE_NAMES):
            layer = getattr(self, f"layer{i + 1}")
            if not isinstance(layer, nn.Sequential):
                continue
            blocks = []
            for j, module in enumerate(layer):
                assert isinstance(module, ResidualBlock)
                path = f"layer{i + 1}.{j}"
                blocks.append(Block(path, module.sites()))
                pairs += [(f"{path}.{conv}", f"{path}.{bn}") for conv, bn in module.conv_bn()]
            stages.append(Stage(name, f"layer{i + 1}", tuple(blocks)))
        return Description(tuple(stages), tuple(pairs), "fc")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))
