"""A backbone's description (gcsearch/nn/backbone.py): what the ResNets say of themselves, and a new family that only
describes itself taking GC blocks, BN folding and weight loading with no change elsewhere."""

import pytest
import torch
from torch import nn

from gcsearch.arch import ArchConfig
from gcsearch.nn.backbone import Block, Description, Site, Stage, describe
from gcsearch.nn.blocks import GlobalContext
from gcsearch.nn.latency import fold_batchnorm
from gcsearch.nn.models import build_model, insert_gc


@pytest.mark.parametrize(
    ("kwargs", "blocks", "widths"),
    [({"backbone": "resnet50"}, [3, 4, 6, 3], {"after_1x1": 256, "after_3x3": 64, "after_add": 256}),
     ({"backbone": "resnet18"}, [2, 2, 2, 2], {"after_1x1": 64, "after_add": 64}),
     ({"backbone": "proxy_resnet", "width": 8, "depth": [1, 2, 1], "block": "bottleneck"}, [1, 2, 1],
      {"after_1x1": 32, "after_3x3": 8, "after_add": 32})],
)  # fmt: skip
def test_resnets_describe_their_stages_blocks_and_sites(kwargs, blocks, widths):
    d = describe(build_model(num_classes=10, **kwargs))
    assert [s.name for s in d.stages] == ["c2", "c3", "c4", "c5"][: len(blocks)]
    assert [len(s.blocks) for s in d.stages] == blocks
    # c2's first block: the positions it offers and the channels at each.
    assert {site.position: site.channels for site in d.stages[0].blocks[0].sites} == widths
    assert d.classifier == "fc" and ("conv1", "bn1") in d.conv_bn


class Toy(nn.Module):
    """A family of one: a stem and one stage of two plain conv-BN blocks, offering GC after each block."""

    class Unit(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.conv, self.bn = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)
            self.gc, self.gc_position = None, None

        def forward(self, x):
            y = torch.relu(self.bn(self.conv(x)))
            return self.gc(y) if self.gc is not None else y

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, padding=1)
        self.stage = nn.Sequential(Toy.Unit(16), Toy.Unit(16))
        self.head = nn.Linear(16, 4)

    def forward(self, x):
        return self.head(self.stage(self.stem(x)).mean((2, 3)))

    def describe(self):
        blocks = tuple(Block(f"stage.{i}", (Site("after_add", 16, ""),)) for i in range(2))
        return Description((Stage("c3", "stage", blocks),), (("stage.0.conv", "stage.0.bn"), ("stage.1.conv",
                           "stage.1.bn")), "head")  # fmt: skip


def test_a_new_family_that_describes_itself_takes_gc_blocks_and_folds_its_batchnorms():
    model = Toy()
    added = insert_gc(model, ArchConfig.from_dict({"stages": ["c3"], "position": "after_add"}))
    assert added == 2 and all(isinstance(model.stage[i].gc, GlobalContext) for i in range(2))
    x = torch.randn(2, 3, 8, 8)
    model.eval()
    folded = fold_batchnorm(model)
    # BatchNorm folded into the conv before it: the same function, without the BatchNorm.
    assert isinstance(folded.stage[0].bn, nn.Identity) and torch.allclose(folded(x), model(x), atol=1e-5)
    with pytest.raises(Exception, match="stages"):
        insert_gc(Toy(), ArchConfig.from_dict({"stages": ["c4"], "position": "after_add"}))
