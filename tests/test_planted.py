"""The planted-effect check (gcsearch.planted; experiments/planted.py runs it in full) on the committed
fine-tuned recording: a large planted optimum is found by the factorial analysis and by the default search
(real decider, replayed), and a null plant is not "found". No training."""

from gcsearch.analysis import factorial, planted
from gcsearch.bench import curves, replay
from gcsearch.spacefile import load_space
from tests.conftest import ROOT

SPACE = load_space(ROOT / "search_spaces" / "gc.yaml")
POINTS = curves.read(ROOT / "experiments" / "data" / "curves-finetune.csv")
EPOCHS = curves.Curves.of(POINTS).epochs
NOISE = 0.001  # the recording's paired noise, about (experiments/results/planted.md)


def planted_curves(units, permutation=0):
    return curves.Curves.of(planted.plant(planted.background(POINTS, permutation), units * NOISE, EPOCHS))


def test_the_background_keeps_every_label_and_its_costs_but_moves_the_curves():
    before, after = curves.Curves.of(POINTS), planted_curves(0)
    assert set(before.archs) == set(after.archs)
    moved = [a for a in before.archs if before.final(a, 0) != after.final(a, 0)]
    assert len(moved) > len(before.archs) // 2
    assert all(before.runs[(a, 0)][0].macs == after.runs[(a, 0)][0].macs for a in before.archs)


def test_a_large_plant_is_resolved_in_its_direction_and_a_null_one_is_not_reversed():
    strong = {h.name: h.verdict for h in factorial.analyse(factorial.observations(planted_curves(16))).hypotheses}
    assert all(strong[h.name] == "agree" for h in planted.PLANTED)
    null = {h.name: h.verdict for h in factorial.analyse(factorial.observations(planted_curves(0))).hypotheses}
    assert not any(null[h.name] == "disagree" for h in planted.PLANTED)


def test_the_default_search_recommends_the_large_planted_optimum():
    c = planted_curves(16)
    budget = int(len(c.archs) * c.epochs * planted.SHARE)
    hits = [planted.held_out_hit(c, replay.replay(c, SPACE, "default", r, 2, budget), NOISE) for r in range(3)]
    assert all(hits)
