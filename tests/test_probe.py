"""A GC block's movement (gcsearch/nn/probe.py): what shows a block moved the features it was given."""

import pytest
import torch

from gcsearch.arch import ArchConfig
from gcsearch.nn.models import build_model
from gcsearch.nn.probe import block_movement


def model_with(fusion, gate_init=None):
    arch = ArchConfig(("c3", "c4"), "att", fusion, 0.25, "layernorm", "after_1x1", gate_init)
    torch.manual_seed(0)
    return build_model(gc=arch, backbone="proxy_resnet", block="basic", width=8, depth=[1, 1, 1], num_classes=10)


@pytest.mark.parametrize(("fusion", "gate", "expected"), [("add", None, 0.0), ("mul", "identity", 0.0),
                                                          ("both", "identity", 0.0), ("mul", "half", 0.5)])  # fmt: skip
def test_a_fresh_block_moves_what_its_start_says(fusion, gate, expected):
    moved = block_movement(model_with(fusion, gate), torch.randn(4, 3, 32, 32))
    assert len(moved) == 2  # one block in c3, one in c4
    assert all(v == pytest.approx(expected, abs=1e-6) for v in moved.values())


def test_a_block_that_learnt_reads_above_zero():
    model = model_with("add")
    for block in (m for m in model.modules() if hasattr(m, "channel_add_conv") and m.channel_add_conv is not None):
        torch.nn.init.normal_(block.channel_add_conv[-1].weight, std=0.5)
    assert min(block_movement(model, torch.randn(4, 3, 32, 32)).values()) > 0.01
    assert model.training  # the probe leaves the mode as it found it
