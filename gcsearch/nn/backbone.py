"""A backbone's description, in the manner of timm's ``feature_info``: its stages, their residual blocks, the places
a GC block can sit in each block (its position, the channels there, and the module whose output is the feature map
there), the convolution-BatchNorm pairs a deployment would fold, and its classifier. A backbone family provides it
(``ResNet.describe``, nn/resnet.py); GC insertion (nn/models.py), the MAC counter (nn/flops.py), latency's BN
folding (nn/latency.py) and weight loading (nn/weights.py) read it instead of guessing from attribute names, so a
new family is its own module and one line in models.py's registry.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn


@dataclass(frozen=True)
class Site:
    """A place for a GC block inside a residual block."""

    position: str  # arch.POSITIONS: after_1x1, after_3x3, after_add
    channels: int  # of the feature map there: the block's width
    feature: str  # the submodule (relative to the block; "" = the block) whose output has that feature map's shape


@dataclass(frozen=True)
class Block:
    path: str  # the residual block's module path in the model, e.g. "layer2.0"
    sites: tuple[Site, ...]

    def site(self, position: str) -> Site | None:
        return next((s for s in self.sites if s.position == position), None)


@dataclass(frozen=True)
class Stage:
    name: str  # the paper's: c2..c5
    path: str  # its module path, e.g. "layer1"
    blocks: tuple[Block, ...]


@dataclass(frozen=True)
class Description:
    stages: tuple[Stage, ...]  # the stages the backbone has (a shallow proxy has fewer than four)
    conv_bn: tuple[tuple[str, str], ...]  # (convolution, the BatchNorm that follows it) module paths: BN folding
    classifier: str  # the final linear layer's path: a checkpoint's classifier of another size is left out

    def stage(self, name: str) -> Stage | None:
        return next((s for s in self.stages if s.name == name), None)


def describe(model: nn.Module) -> Description:
    """A model's description: its own (``describe()``); a model without one cannot take GC blocks."""
    method = getattr(model, "describe", None)
    if method is None:
        raise TypeError(f"{type(model).__name__} does not describe itself (nn/backbone.py)")
    return method()  # type: ignore[no-any-return]
