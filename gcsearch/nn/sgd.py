"""SGD with (Nesterov) momentum and weight decay, the update torch.optim.SGD makes, without torch.optim.

Why not torch.optim: every Optimizer method is wrapped in torch._disable_dynamo, whose first call imports
torch._dynamo and sympy, 150 MiB of every trial worker's resident memory for a compiler the search never uses
(experiments/results/worker_memory.md). The update is torch.optim.SGD's single-tensor one, operation for
operation, so the numbers are the same bit for bit (tests/test_sgd.py), and ``state_dict`` has its layout, so
a checkpoint written by either loads in the other.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch


class SGD:
    def __init__(self, params: Iterable[torch.Tensor], lr: float, momentum: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0):  # fmt: skip
        if nesterov and momentum <= 0:
            raise ValueError("Nesterov momentum needs momentum > 0")  # as torch.optim.SGD
        self.params = list(params)
        self.lr, self.momentum, self.nesterov, self.weight_decay = lr, momentum, nesterov, weight_decay
        self.momentum_buffers: list[torch.Tensor | None] = [None] * len(self.params)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.zero_()

    @torch.no_grad()
    def step(self) -> None:
        """torch.optim.SGD's update, on all parameters at once (torch._foreach_*: one kernel per operation on
        CUDA; on the CPU the same per-tensor operations, in the same order)."""
        at = [i for i, p in enumerate(self.params) if p.grad is not None]
        if not at:  # nothing to update (torch's foreach ops refuse empty lists)
            return
        params = [self.params[i] for i in at]
        grads: list[torch.Tensor] = [p.grad for p in params if p.grad is not None]
        if self.weight_decay != 0:
            grads = list(torch._foreach_add(grads, params, alpha=self.weight_decay))
        if self.momentum != 0:
            held = [(k, b) for k, i in enumerate(at) if (b := self.momentum_buffers[i]) is not None]
            if held:
                held_bufs = [b for _, b in held]
                torch._foreach_mul_(held_bufs, self.momentum)
                torch._foreach_add_(held_bufs, [grads[k] for k, _ in held])
            bufs: list[torch.Tensor] = []
            for k, i in enumerate(at):
                buf = self.momentum_buffers[i]
                if buf is None:  # a parameter's first step: its buffer is its gradient
                    buf = self.momentum_buffers[i] = grads[k].detach().clone()
                bufs.append(buf)
            grads = list(torch._foreach_add(grads, bufs, alpha=self.momentum)) if self.nesterov else bufs
        torch._foreach_add_(params, grads, alpha=-self.lr)

    def set_lr(self, lr: float) -> None:
        self.lr = lr

    def state_dict(self) -> dict[str, Any]:
        """torch.optim.SGD's layout: per-parameter state by index, one parameter group."""
        group = {"lr": self.lr, "momentum": self.momentum, "dampening": 0, "weight_decay": self.weight_decay,
                 "nesterov": self.nesterov, "maximize": False, "params": list(range(len(self.params)))}  # fmt: skip
        state = {i: {"momentum_buffer": b} for i, b in enumerate(self.momentum_buffers) if b is not None}
        return {"state": state, "param_groups": [group]}

    def load_state_dict(self, saved: dict[str, Any]) -> None:
        self.lr = saved["param_groups"][0]["lr"]
        for i, param in enumerate(self.params):
            buf = saved["state"].get(i, {}).get("momentum_buffer")
            self.momentum_buffers[i] = None if buf is None else buf.to(param.device, param.dtype)
