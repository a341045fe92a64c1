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
        for i, param in enumerate(self.params):
            if param.grad is None:
                continue
            grad = param.grad
            if self.weight_decay != 0:
                grad = grad.add(param, alpha=self.weight_decay)
            if self.momentum != 0:
                buf = self.momentum_buffers[i]
                if buf is None:
                    buf = self.momentum_buffers[i] = grad.detach().clone()
                else:
                    buf.mul_(self.momentum).add_(grad)
                grad = grad.add(buf, alpha=self.momentum) if self.nesterov else buf
            param.add_(grad, alpha=-self.lr)

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
