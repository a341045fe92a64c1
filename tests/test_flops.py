import pytest
import torch
from torch import nn

from gcsearch import GlobalContext, build_model, count_macs

GC_C3_C5 = {
    "stages": ["c3", "c4", "c5"],
    "pool": "att",
    "fusion": "add",
    "norm": "layernorm",
    "position": "after_1x1",
}


@pytest.fixture(scope="module")
def resnet50_cost():
    return count_macs(build_model(backbone="resnet50"), (1, 3, 224, 224))


def test_resnet50_matches_published_cost(resnet50_cost):
    macs, params = resnet50_cost
    assert params == 25_557_032
    assert abs(macs - 4.09e9) / 4.09e9 < 0.01


@pytest.mark.parametrize("ratio,added_params,added_macs", [(1 / 16, 2_521_741, 8.71e6), (1 / 4, 10_000_909, 16.18e6)])
def test_gc_c3_c5_adds_paper_reference_cost(resnet50_cost, ratio, added_params, added_macs):
    macs, params = count_macs(build_model(backbone="resnet50", gc={**GC_C3_C5, "ratio": ratio}), (1, 3, 224, 224))
    assert params - resnet50_cost[1] == added_params
    assert abs((macs - resnet50_cost[0]) - added_macs) / added_macs < 0.02


@pytest.mark.parametrize("c,h,w,ratio", [(64, 14, 14, 1 / 16), (256, 7, 9, 1 / 4), (12, 3, 3, 1 / 8)])
def test_block_cost_follows_per_block_formula(c, h, w, ratio):
    block = GlobalContext(c, ratio=ratio)
    macs, params = count_macs(block, (1, c, h, w))
    r = round(c * ratio)
    assert macs == 2 * c * h * w + 2 * c * r
    assert params == 2 * c * r + 3 * r + 2 * c + 1


def test_avg_pool_costs_only_the_transform():
    block = GlobalContext(64, pool="avg", ratio=1 / 16)
    assert count_macs(block, (1, 64, 14, 14))[0] == 2 * 64 * 4


def test_counting_leaves_batchnorm_statistics_and_mode_alone():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    model.train()
    before = model[1].running_mean.clone()
    count_macs(model, (2, 3, 8, 8))
    assert model.training and torch.equal(model[1].running_mean, before)


def test_macs_scale_with_batch():
    model = build_model(backbone="proxy_resnet", gc={}, num_classes=10, in_channels=1, width=8)
    one, _ = count_macs(model, (1, 1, 28, 28))
    four, _ = count_macs(model, (4, 1, 28, 28))
    assert four == 4 * one
