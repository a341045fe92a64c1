"""MACs and parameters, with the convention written down.

Convention (what papers call "GFLOPs" for ResNet-50, about 4.09 G at 224x224):
- counted: multiply-accumulates of convolutions, linear layers and matrix products (mm, bmm, addmm,
  baddbmm, ...), which includes the GC block's attention pooling (its 1x1 mask conv, C*H*W, and the
  weighted sum, another C*H*W) and its transform (2*C*C*ratio);
- not counted: biases, softmax, normalisation, activations, pooling and other elementwise work;
- params: ``sum(p.numel() for p in model.parameters())``.

MACs come from one forward pass at the given input size under PyTorch's ``FlopCounterMode``, which
sees every matrix product the model runs rather than only the module types a hook list knows; its
FLOPs are 2 per MAC.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from gcsearch.arch import ArchConfig
from gcsearch.nn.backbone import describe
from gcsearch.nn.blocks import GlobalContext, bottleneck_channels
from gcsearch.nn.models import build_model, gc_blocks
from gcsearch.settings import BackboneConfig


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, input_size: tuple[int, ...] = (1, 3, 224, 224)) -> tuple[int, int]:
    """(MACs, params) of one forward pass at ``input_size`` (batch included); see module docstring."""
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None else torch.float32
    was_training = model.training
    model.eval()  # eval: the count must not move BatchNorm's running statistics
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(torch.zeros(input_size, device=device, dtype=dtype))
    finally:
        model.train(was_training)
    return counter.get_total_flops() // 2, count_params(model)


class SpaceCoster:
    """(MACs, params) of any ArchConfig on one backbone, without building each model.

    GC blocks keep their input's shape, so a model's cost is the baseline's plus the cost of each
    block at the feature shape where it sits. The baseline and the shapes come from one forward pass;
    each distinct block is counted once. Tests check it against counting whole models.
    """

    def __init__(self, backbone: BackboneConfig):
        self.backbone = backbone
        model = build_model(**backbone.build_kwargs())
        self.input_size = (1, *backbone.input_size)
        self.base = count_macs(model, self.input_size)
        self.shapes: dict[tuple[str, str], list[tuple[int, int, int]]] = {}
        hooks = []
        for stage in describe(model).stages:  # each block's GC sites: the feature map there, by a hook on its module
            for block in stage.blocks:
                res_block = model.get_submodule(block.path)
                for site in block.sites:
                    where = res_block.get_submodule(site.feature) if site.feature else res_block
                    hooks.append(where.register_forward_hook(self._recorder(stage.name, site.position)))
        count_macs(model, self.input_size)
        for hook in hooks:
            hook.remove()
        self._block_cache: dict[tuple[object, ...], tuple[int, int]] = {}

    def _recorder(self, stage: str, position: str):
        def record(module: nn.Module, inputs: object, output: torch.Tensor) -> None:
            self.shapes.setdefault((stage, position), []).append(tuple(output.shape[1:]))  # type: ignore[arg-type]

        return record

    def block_cost(self, shape: tuple[int, int, int], arch: ArchConfig) -> tuple[int, int]:
        key = (shape, arch.pool, arch.fusion, arch.ratio, arch.norm)
        if key not in self._block_cache:
            c, h, w = shape
            assert arch.pool and arch.fusion and arch.ratio and arch.norm
            block = GlobalContext(c, pool=arch.pool, fusion=arch.fusion, ratio=arch.ratio, norm=arch.norm)
            self._block_cache[key] = count_macs(block, (1, c, h, w))
        return self._block_cache[key]

    def bottleneck_widths(self, arch: ArchConfig) -> dict[str, int]:
        """Narrowest transform width per stage: below 3, LayerNorm cuts the context's gradient."""
        assert arch.position and arch.ratio
        return {
            stage: min(bottleneck_channels(shape[0], arch.ratio) for shape in self.shapes[(stage, arch.position)])
            for stage in arch.stages
        }

    def __call__(self, arch: ArchConfig) -> tuple[int, int]:
        macs, params = self.base
        for stage in arch.stages:
            assert arch.position
            for shape in self.shapes[(stage, arch.position)]:
                block_macs, block_params = self.block_cost(shape, arch)
                macs, params = macs + block_macs, params + block_params
        return macs, params


class GcCost(NamedTuple):
    blocks: int  # GC blocks in the model
    macs: int
    params: int
    added_macs: int  # over the same backbone without GC
    added_params: int

    def text(self) -> str:
        macs, params = (
            f"{self.macs:>15,d}  ({self.macs / 1e9:.3f} G)",
            f"{self.params:>15,d}  ({self.params / 1e6:.3f} M)",
        )
        return (f"{self.blocks} GC blocks\n  MACs   {macs}   GC adds {self.added_macs:>12,d}\n"
                f"  params {params}   GC adds {self.added_params:>12,d}")  # fmt: skip


def gc_cost(gc: ArchConfig | Mapping[str, Any] | None, input_size: tuple[int, ...], **backbone: Any) -> GcCost:
    """What GC blocks cost a backbone (``models.build_model``'s keywords) at ``input_size`` (batch included)."""
    base_macs, base_params = count_macs(build_model(**backbone), input_size)
    model = build_model(gc=gc, **backbone)
    macs, params = count_macs(model, input_size)
    return GcCost(len(gc_blocks(model)), macs, params, macs - base_macs, params - base_params)
