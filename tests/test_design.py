import itertools
from collections import Counter

from gcsearch import ArchConfig
from gcsearch.bench import design
from gcsearch.spacefile import load_space
from tests.conftest import ROOT

SPACE = load_space(ROOT / "search_spaces" / "gc.yaml")


def test_references_first_then_distinct_grid_points():
    refs = [SPACE.reference(), ArchConfig()]
    picked = design.balanced(SPACE.grid(), 30, refs)
    assert picked[:2] == refs and len(set(picked)) == 30 and set(picked) <= set(SPACE.grid())


def test_each_value_of_each_axis_about_equally_often():
    picked = [a for a in design.balanced(SPACE.grid(), 60, [SPACE.reference(), ArchConfig()]) if not a.is_baseline]
    for axis in design.AXES:
        # A gate start exists for the gated fusions only: its values are balanced among them.
        counts = Counter(getattr(a, axis) for a in picked if axis != "gate_init" or a.gate_init)
        # All values used, and no value more than 2 uses ahead of another (random draws spread far wider).
        assert len(counts) == len(getattr(SPACE.axes, axis)) - (axis == "stages")
        assert max(counts.values()) - min(counts.values()) <= 2, (axis, counts)


def test_every_pair_of_values_is_covered_at_60():
    picked = [a for a in design.balanced(SPACE.grid(), 60, [SPACE.reference(), ArchConfig()]) if not a.is_baseline]
    seen = {(x, getattr(a, x), y, getattr(a, y)) for a in picked for x, y in itertools.combinations(design.AXES, 2)}
    grid = [a for a in SPACE.grid() if not a.is_baseline]
    wanted = {(x, getattr(a, x), y, getattr(a, y)) for a in grid for x, y in itertools.combinations(design.AXES, 2)}
    assert seen == wanted


def test_a_sample_is_a_prefix_of_a_larger_one():
    # Greedy and seeded: a recording can be extended without changing what it already holds.
    refs = [SPACE.reference(), ArchConfig()]
    assert design.balanced(SPACE.grid(), 60, refs)[:16] == design.balanced(SPACE.grid(), 16, refs)
