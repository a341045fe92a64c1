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

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


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
