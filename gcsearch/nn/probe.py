"""What a trained model's GC blocks do: how far each moves the features it is given.

A block's movement is ||block(x) - x|| / ||x|| over a batch: 0 for an identity-start block at initialisation
(and for a block that learnt nothing), above 0 once its context changes what the next layer sees. A verdict
"GC adds nothing" means little when the blocks never moved; a positive control shows they did.
"""

from __future__ import annotations

import torch
from torch import nn

from gcsearch.nn.blocks import GlobalContext


def block_movement(model: nn.Module, x: torch.Tensor) -> dict[str, float]:
    """{block's module name: ||out - in|| / ||in||} on the batch ``x`` (already normalised), in eval mode."""
    moved: dict[str, float] = {}

    def hook(name: str):
        def record(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
            given = inputs[0].float()
            moved[name] = float((output.float() - given).norm() / given.norm().clamp_min(1e-12))

        return record

    hooks = [m.register_forward_hook(hook(name)) for name, m in model.named_modules() if isinstance(m, GlobalContext)]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(x)
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    return moved
