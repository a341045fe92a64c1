"""SGD (Nesterov momentum, weight decay) and AdamW as thin owners of state over torch's own functional updates
(``torch.optim.sgd.sgd``, ``torch.optim.adamw.adamw``): the numbers are torch.optim's, bit for bit
(tests/test_sgd.py), and ``state_dict`` has torch.optim's layout, so a checkpoint written by either loads in the
other.

Why not the torch.optim classes: every Optimizer method is wrapped in torch._disable_dynamo, whose first call
imports torch._dynamo and sympy, 150 MiB of every trial worker's resident memory for a compiler the search never
uses (experiments/results/worker_memory.md); the functional updates load neither.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch.optim.adamw import adamw
from torch.optim.sgd import sgd


class SGD:
    def __init__(self, params: Iterable[torch.Tensor], lr: float, momentum: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0):  # fmt: skip
        if nesterov and momentum <= 0:
            raise ValueError("Nesterov momentum needs momentum > 0")  # as torch.optim.SGD
        self.params = list(params)
        self.lr, self.momentum, self.nesterov, self.weight_decay = lr, momentum, nesterov, weight_decay
        self.momentum_buffers: list[torch.Tensor | None] = [None] * len(self.params)

    def zero_grad(self, set_to_none: bool = True) -> None:
        zero_grad(self.params, set_to_none)

    @torch.no_grad()
    def step(self) -> None:
        """torch.optim.SGD's step over the parameters that have a gradient (a parameter whose first gradient
        comes later gets its momentum buffer then, as in torch)."""
        at = [i for i, p in enumerate(self.params) if p.grad is not None]
        buffers = [self.momentum_buffers[i] for i in at]
        sgd([self.params[i] for i in at], [self.params[i].grad for i in at],  # type: ignore[misc]
            buffers, weight_decay=self.weight_decay, momentum=self.momentum, lr=self.lr, dampening=0,
            nesterov=self.nesterov, maximize=False)  # fmt: skip
        for i, buf in zip(at, buffers, strict=True):  # sgd fills in the buffers it created
            self.momentum_buffers[i] = buf

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


class AdamW:
    """torch.optim.AdamW's defaults (betas 0.9, 0.999; eps 1e-8; no amsgrad)."""

    def __init__(self, params: Iterable[torch.Tensor], lr: float, weight_decay: float = 0.01,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):  # fmt: skip
        self.params = list(params)
        self.lr, self.weight_decay, self.betas, self.eps = lr, weight_decay, betas, eps
        self.state: dict[int, dict[str, torch.Tensor]] = {}  # by parameter index: step, exp_avg, exp_avg_sq

    def zero_grad(self, set_to_none: bool = True) -> None:
        zero_grad(self.params, set_to_none)

    @torch.no_grad()
    def step(self) -> None:
        at = [i for i, p in enumerate(self.params) if p.grad is not None]
        for i in at:
            if i not in self.state:  # as torch: state made at a parameter's first step
                p = self.params[i]
                self.state[i] = {"step": torch.tensor(0.0), "exp_avg": torch.zeros_like(p),
                                 "exp_avg_sq": torch.zeros_like(p)}  # fmt: skip
        s = [self.state[i] for i in at]
        adamw([self.params[i] for i in at], [self.params[i].grad for i in at],  # type: ignore[misc]
              [x["exp_avg"] for x in s], [x["exp_avg_sq"] for x in s], [], [x["step"] for x in s], amsgrad=False,
              beta1=self.betas[0], beta2=self.betas[1], lr=self.lr, weight_decay=self.weight_decay, eps=self.eps,
              maximize=False)  # fmt: skip

    def set_lr(self, lr: float) -> None:
        self.lr = lr

    def state_dict(self) -> dict[str, Any]:
        """torch.optim.AdamW's layout."""
        group = {"lr": self.lr, "betas": self.betas, "eps": self.eps, "weight_decay": self.weight_decay,
                 "amsgrad": False, "maximize": False, "foreach": None, "capturable": False, "differentiable": False,
                 "fused": None, "decoupled_weight_decay": True, "params": list(range(len(self.params)))}  # fmt: skip
        return {"state": {i: dict(x) for i, x in self.state.items()}, "param_groups": [group]}

    def load_state_dict(self, saved: dict[str, Any]) -> None:
        self.lr = saved["param_groups"][0]["lr"]
        self.state = {}
        for i, param in enumerate(self.params):
            x = saved["state"].get(i)
            if x:
                self.state[i] = {"step": x["step"].detach().clone().to(torch.float32).cpu(),
                                 "exp_avg": x["exp_avg"].to(param.device, param.dtype),
                                 "exp_avg_sq": x["exp_avg_sq"].to(param.device, param.dtype)}  # fmt: skip


def zero_grad(params: list[torch.Tensor], set_to_none: bool) -> None:
    for p in params:
        if set_to_none:
            p.grad = None
        elif p.grad is not None:
            p.grad.zero_()
