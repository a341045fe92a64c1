import itertools

import pytest
import torch
import torch.nn.functional as F

from gcsearch import ConfigError, GlobalContext


def reference_gc(block: GlobalContext, x: torch.Tensor) -> torch.Tensor:
    """The paper's equations, written as the official code writes them (reshape/unsqueeze/matmul)."""
    n, c, h, w = x.shape
    if block.pool == "att":
        inp = x.reshape(n, c, h * w).unsqueeze(1)  # [N, 1, C, HW]
        mask = F.conv2d(x, block.conv_mask.weight, block.conv_mask.bias)  # [N, 1, H, W]
        mask = torch.softmax(mask.reshape(n, 1, h * w), dim=2).unsqueeze(-1)  # [N, 1, HW, 1]
        context = torch.matmul(inp, mask).reshape(n, c, 1, 1)
    else:
        context = x.sum(dim=(2, 3), keepdim=True) / (h * w)

    def transform(seq):
        y = F.conv2d(context, seq[0].weight, seq[0].bias)
        if block.norm == "layernorm":
            mu = y.mean(dim=(1, 2, 3), keepdim=True)
            var = y.var(dim=(1, 2, 3), keepdim=True, unbiased=False)
            y = (y - mu) / torch.sqrt(var + seq[1].eps) * seq[1].weight + seq[1].bias
        return F.conv2d(torch.relu(y), seq[3].weight, seq[3].bias)

    out = x
    if block.fusion in ("mul", "both"):
        out = out * torch.sigmoid(transform(block.channel_mul_conv))
    if block.fusion in ("add", "both"):
        out = out + transform(block.channel_add_conv)
    return out


def randomise(block: GlobalContext) -> None:
    # Fresh blocks have zero last convs; random weights make every term of the equations matter.
    torch.manual_seed(1)
    with torch.no_grad():
        for p in block.parameters():
            p.normal_(0, 0.3)


COMBOS = list(itertools.product(["att", "avg"], ["add", "mul", "both"], ["layernorm", "none"]))


@pytest.mark.parametrize("pool,fusion,norm", COMBOS)
@pytest.mark.parametrize("channels_last", [False, True])
def test_block_matches_paper_equations(pool, fusion, norm, channels_last):
    block = GlobalContext(32, pool=pool, fusion=fusion, ratio=1 / 4, norm=norm).double()
    randomise(block)
    x = torch.randn(3, 32, 7, 9, dtype=torch.float64)
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    got = block(x)
    want = reference_gc(block, x.contiguous())
    assert (got - want).abs().max().item() < 1e-5
    # The block keeps the input's memory format, so channels_last networks stay channels_last.
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    assert got.is_contiguous(memory_format=fmt)


@pytest.mark.parametrize("pool", ["att", "avg"])
def test_fresh_add_block_is_identity(pool):
    block = GlobalContext(16, pool=pool, fusion="add")
    x = torch.randn(2, 16, 5, 5)
    assert torch.equal(block(x), x)


def test_fresh_mul_block_halves_features():
    # Documented in paper_reference.yaml: sigmoid(0) = 0.5, so mul fusion does not start as identity.
    block = GlobalContext(16, fusion="mul")
    x = torch.randn(2, 16, 5, 5)
    assert torch.allclose(block(x), 0.5 * x)


def test_mask_conv_init_is_kaiming_fan_in():
    block = GlobalContext(4096, pool="att")
    std = block.conv_mask.weight.std().item()
    assert abs(std - (2 / 4096) ** 0.5) < 0.1 * (2 / 4096) ** 0.5


@pytest.mark.parametrize("channels,ratio,planes", [(64, 1 / 16, 4), (64, "1/4", 16), (8, 1 / 32, 1)])
def test_bottleneck_width(channels, ratio, planes):
    assert GlobalContext(channels, ratio=ratio).planes == planes


def test_gradients_reach_every_parameter():
    block = GlobalContext(8, fusion="both", ratio=1 / 2)
    randomise(block)
    block(torch.randn(2, 8, 4, 4)).square().sum().backward()
    # conv_mask.bias shifts every logit equally and softmax ignores that, so the block never uses it
    # (it stays for the official code's weight layout): no gradient.
    dead = {"conv_mask.bias"}
    for name, p in block.named_parameters():
        live = p.grad is not None and p.grad.abs().sum() > 1e-6
        assert live == (name not in dead), name


@pytest.mark.parametrize(
    "kwargs,key",
    [
        ({"pool": "max"}, "pool"),
        ({"fusion": "concat"}, "fusion"),
        ({"norm": "batchnorm"}, "norm"),
        ({"ratio": 0}, "ratio"),
        ({"ratio": 1.5}, "ratio"),
        ({"ratio": "-1/4"}, "ratio"),
        ({"ratio": "a/b"}, "ratio"),
    ],
)
def test_bad_arguments_name_key_allowed_and_given(kwargs, key):
    with pytest.raises(ConfigError) as err:
        GlobalContext(16, **kwargs)
    msg = str(err.value)
    # The message names the argument and what was given.
    assert f"`{key}`" in msg and repr(next(iter(kwargs.values()))) in msg


@pytest.mark.parametrize("ratio", [1 / 8, 1 / 4])
def test_layernorm_over_one_or_two_channels_blocks_the_context_gradient(ratio):
    # Why the space validator warns about bottlenecks under 3 wide: LN of 1 value is its bias, LN of 2
    # values is their sign; either way no gradient reaches the pooling.
    block = GlobalContext(8, ratio=ratio, norm="layernorm")
    randomise(block)
    block(torch.randn(2, 8, 4, 4)).square().sum().backward()
    assert block.planes == round(8 * ratio)
    assert block.conv_mask.weight.grad.abs().max() == 0
