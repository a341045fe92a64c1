"""gcsearch's SGD and AdamW (over torch's functional updates) against torch.optim.SGD and AdamW: the same numbers bit
for bit, checkpoints that load either way, and a training that never imports torch._dynamo (the reason they
exist)."""

import subprocess
import sys

import pytest
import torch

from gcsearch.nn.sgd import SGD, AdamW
from tests.conftest import ROOT


def model_and_batches(seed: int):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
                                torch.nn.Flatten(), torch.nn.Linear(8 * 6 * 6, 4))  # fmt: skip
    batches = [(torch.randn(5, 3, 8, 8), torch.randint(0, 4, (5,))) for _ in range(6)]
    return model, batches


def train(model, optimizer, batches, lrs):
    for (x, y), lr in zip(batches, lrs, strict=True):
        for group in getattr(optimizer, "param_groups", []):
            group["lr"] = lr
        if isinstance(optimizer, (SGD, AdamW)):
            optimizer.set_lr(lr)
        optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()


@pytest.mark.parametrize("momentum, nesterov, weight_decay", [(0.9, True, 5e-4), (0.9, False, 0.0), (0.0, False, 1e-3)])
def test_the_same_updates_as_torch_optim_sgd_bit_for_bit_across_a_checkpoint(momentum, nesterov, weight_decay):
    ours, batches = model_and_batches(0)
    theirs, _ = model_and_batches(0)
    settings = dict(lr=0.1, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay)
    ours_opt, theirs_opt = SGD(ours.parameters(), **settings), torch.optim.SGD(theirs.parameters(), **settings)
    lrs = [0.0, 0.05, 0.1, 0.1, 0.07, 0.02]
    train(ours, ours_opt, batches[:3], lrs[:3])
    train(theirs, theirs_opt, batches[:3], lrs[:3])
    # each resumes from the other's checkpoint, fresh objects on the same weights
    saved_ours, saved_theirs = ours_opt.state_dict(), theirs_opt.state_dict()
    ours_opt, theirs_opt = SGD(ours.parameters(), **settings), torch.optim.SGD(theirs.parameters(), **settings)
    ours_opt.load_state_dict(saved_theirs)
    theirs_opt.load_state_dict(saved_ours)
    train(ours, ours_opt, batches[3:], lrs[3:])
    train(theirs, theirs_opt, batches[3:], lrs[3:])
    for a, b in zip(ours.state_dict().values(), theirs.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    start = model_and_batches(0)[0].state_dict().values()
    assert any(not torch.equal(a, b) for a, b in zip(ours.state_dict().values(), start, strict=True))  # it trained


def test_a_training_imports_no_dynamo():
    code = """
        import sys
        from gcsearch.nn import train
        from gcsearch.spacefile import load_space
        import dataclasses
        space = load_space("search_spaces/smoke.yaml")
        train.train(space.reference(), space, epochs=1)
        adamw = dataclasses.replace(space, train=dataclasses.replace(space.train, optimizer="adamw", lr=1e-3))
        train.train(space.reference(), adamw, epochs=1)
        print("torch._dynamo" in sys.modules, "sympy" in sys.modules)
    """
    out = subprocess.run([sys.executable, "-c", "\n".join(line[8:] for line in code.splitlines())], cwd=ROOT,
                         capture_output=True, text=True, timeout=300, check=True)  # fmt: skip
    assert out.stdout.split()[-2:] == ["False", "False"]


def test_a_parameter_whose_first_gradient_comes_later_gets_its_buffer_then_as_in_torch():
    ours, batches = model_and_batches(1)
    theirs, _ = model_and_batches(1)
    settings = dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-4)
    ours_opt, theirs_opt = SGD(ours.parameters(), **settings), torch.optim.SGD(theirs.parameters(), **settings)
    for step, (x, y) in enumerate(batches):
        for model, optimizer in ((ours, ours_opt), (theirs, theirs_opt)):
            optimizer.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(model(x), y).backward()
            if step < 2:
                model[-1].weight.grad = None  # the last layer's weight sits out the first two steps
            optimizer.step()
    for a, b in zip(ours.state_dict().values(), theirs.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_a_step_without_any_gradient_changes_nothing_as_in_torch():
    p = torch.nn.Parameter(torch.ones(2))
    SGD([p], lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4).step()
    assert torch.equal(p.detach(), torch.ones(2))


def test_adamw_makes_torch_optim_adamws_updates_bit_for_bit_across_a_checkpoint():
    ours, batches = model_and_batches(2)
    theirs, _ = model_and_batches(2)
    settings = dict(lr=0.01, weight_decay=0.05)
    ours_opt, theirs_opt = AdamW(ours.parameters(), **settings), torch.optim.AdamW(theirs.parameters(), **settings)
    lrs = [0.01, 0.005, 0.01, 0.002, 0.007, 0.003]
    train(ours, ours_opt, batches[:3], lrs[:3])
    train(theirs, theirs_opt, batches[:3], lrs[:3])
    saved_ours, saved_theirs = ours_opt.state_dict(), theirs_opt.state_dict()
    ours_opt, theirs_opt = AdamW(ours.parameters(), **settings), torch.optim.AdamW(theirs.parameters(), **settings)
    ours_opt.load_state_dict(saved_theirs)  # each resumes from the other's checkpoint
    theirs_opt.load_state_dict(saved_ours)
    train(ours, ours_opt, batches[3:], lrs[3:])
    train(theirs, theirs_opt, batches[3:], lrs[3:])
    for a, b in zip(ours.state_dict().values(), theirs.state_dict().values(), strict=True):
        assert torch.equal(a, b)
