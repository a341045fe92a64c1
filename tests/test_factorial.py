"""The factorial analysis on synthetic balanced designs with known effects (no training)."""

import dataclasses
import itertools
import random
from pathlib import Path

import pytest

from gcsearch.analysis import factorial
from gcsearch.arch import PAPER_DEFAULT, ArchConfig
from gcsearch.bench import curves
from gcsearch.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent

GRID = [
    ArchConfig(stages=st, pool=p, fusion=f, ratio=r, norm=n, position=pos)
    for st, p, f, r, n, pos in itertools.product(
        [("c3", "c4", "c5"), ("c4", "c5"), ("c5",)],
        ["att", "avg"],
        ["add", "mul", "both"],
        [1 / 4, 1 / 16],
        ["layernorm", "none"],
        ["after_1x1", "after_3x3"],
    )
]


def synthetic(effects, interaction=0.0, noise=0.0005, seeds=4, seed=0, gc_gain=0.0):
    """Scores = 0.9 + the planted main effects (a dict of (axis, level text) -> effect) + an att+mul
    interaction + a seed effect shared by every configuration + per-training noise."""
    rng = random.Random(seed)
    seed_effect = {s: rng.gauss(0, 0.002) for s in range(seeds)}
    obs = []
    for arch in [*GRID, ArchConfig()]:
        for s in range(seeds):
            if arch.is_baseline:
                mean = 0.9
            else:
                mean = 0.9 + gc_gain + sum(effects.get((ax, factorial.level(ax, arch)), 0.0) for ax in factorial.AXES)
                if arch.pool == "att" and arch.fusion == "mul":
                    mean += interaction
            obs.append((arch, s, mean + seed_effect[s] + rng.gauss(0, noise)))
    return obs


def verdicts(analysis):
    return {c.name: c.verdict for c in analysis.hypotheses}


def test_planted_main_effects_are_estimated_and_resolved_in_their_direction():
    planted = {("fusion", "mul"): -0.004, ("pool", "avg"): +0.003}  # add > mul: agree; att > avg: disagree
    a = factorial.analyse(synthetic(planted))
    got = {c.name: c for c in a.hypotheses}
    add_mul = got["fusion: add > mul"]
    assert add_mul.low < 0.004 < add_mul.high
    assert add_mul.verdict == "agree"
    att_avg = got["pool: att > avg"]
    assert att_avg.low < -0.003 < att_avg.high
    assert att_avg.verdict == "disagree"
    # Nothing planted on norm: no direction is claimed.
    assert got["norm: layernorm > none"].verdict in ("equivalent", "not resolved")


def test_the_interaction_is_found_and_does_not_bias_the_main_effect():
    a = factorial.analyse(synthetic({}, interaction=-0.006))
    inter = {x.axes: x for x in a.interactions}[("pool", "fusion")]
    assert inter.p_adjusted < 0.01
    # att+mul alone lost 0.006: averaged over fusion's 3 levels, att loses 0.002 against avg.
    att_avg = {c.name: c for c in a.hypotheses}["pool: att > avg"]
    assert att_avg.low < -0.002 < att_avg.high
    assert {x.axes: x for x in factorial.analyse(synthetic({})).interactions}[("pool", "fusion")].p > 0.01


def test_equivalence_needs_the_interval_inside_the_margin():
    null = factorial.analyse(synthetic({}, noise=0.0003), margin=0.002)
    assert verdicts(null)["ratio: 1/4 > 1/16"] == "equivalent"
    # The same null, far noisier: the interval is wider than the margin, so it is not resolved.
    noisy = factorial.analyse(synthetic({}, noise=0.02), margin=0.002)
    assert verdicts(noisy)["ratio: 1/4 > 1/16"] == "not resolved"
    # An effect just outside the margin, measured precisely, is never called equivalent.
    outside = factorial.analyse(synthetic({("ratio", "1/16"): -0.0025}, noise=0.0003), margin=0.002)
    assert verdicts(outside)["ratio: 1/4 > 1/16"] == "agree"


def test_gc_against_the_baseline_is_paired_by_seed():
    a = factorial.analyse(synthetic({}, gc_gain=0.003, noise=0.0003))
    gc = {c.name: c for c in a.hypotheses}["gc: paper default > baseline"]
    # The seed effect (sd 0.002) is shared by both, so pairing removes it and the gain is resolved.
    assert gc.verdict == "agree"
    assert gc.low < 0.003 < gc.high
    assert PAPER_DEFAULT in GRID


def test_identical_differences_are_not_evidence():
    obs = [(a, s, 0.9) for a in [*GRID, ArchConfig()] for s in range(3)]
    for c in factorial.analyse(obs).hypotheses:
        assert c.verdict == "not resolved" and c.p == 1.0


def test_too_few_configurations_is_one_clear_error():
    few = random.Random(0).sample(GRID, 6)
    obs = [(a, s, 0.9 + random.Random(s).random() / 100) for a in few for s in range(3)]
    with pytest.raises(ConfigError, match="too few for the factorial model"):
        factorial.analyse(obs)


def test_the_committed_recordings_analyse_and_report():
    c = curves.Curves.of(curves.read(ROOT / "experiments" / "data" / "curves-gc.csv"))
    a = factorial.analyse(factorial.observations(c))
    text = factorial.report(a, "curves-gc.csv")
    assert text.count("\n| ") >= len(factorial.PAPER) + 3
    assert a.configurations == 59 and a.seeds == [0, 1, 2]


def test_ablate_balanced_analyses_a_curves_file(tmp_path, capsys):
    import shutil

    from gcsearch.cli import main

    path = tmp_path / "curves.csv"
    shutil.copy(ROOT / "experiments" / "data" / "curves-gc.csv", path)
    assert main(["ablate", "--design", "balanced", "--curves", str(path)]) == 0
    text = (tmp_path / "curves.ablation.md").read_text()
    # 28-px Fashion-MNIST from scratch: GC does not beat the baseline there, so no verdict about the paper.
    assert "No positive control: this proxy cannot show a GC effect" in text
    row = next(line for line in text.splitlines() if line.startswith("| fusion: add > mul |"))
    assert row.endswith("| withheld (no control) |")
    assert main(["ablate", "--design", "balanced", "--curves", str(tmp_path / "missing.csv")]) == 2
    assert "--curves" in capsys.readouterr().err


def test_where_gate_starts_vary_fusion_is_judged_at_each_start():
    """The half-start transient (mul/half below add) must not be read as "add beats mul" when mul started at the
    identity is level with add."""
    rng = random.Random(1)
    obs = []
    archs = [dataclasses.replace(a, gate_init=g) for a in GRID for g in (["half", "identity"] if a.fusion != "add"
             else [None])]  # fmt: skip
    for arch in [*archs, ArchConfig()]:
        for s in range(4):
            mean = 0.9 - (0.006 if arch.gate_init == "half" else 0.0)
            obs.append((arch, s, mean + rng.gauss(0, 0.0003)))
    analysis = factorial.analyse(obs)
    got = verdicts(analysis)
    assert "mul/identity" in factorial.report(analysis, "synthetic")
    assert "fusion: add > mul" not in got
    assert got["fusion: add > mul/half"] == "agree" and got["fusion: add > both/half"] == "agree"
    assert got["fusion: add > mul/identity"] == "equivalent" and got["fusion: add > both/identity"] == "equivalent"


def test_verdicts_are_printed_only_behind_a_positive_control():
    """The same planted effect; only GC against the baseline differs: resolved above zero, the verdicts are
    printed; at zero, they are withheld with one sentence saying why."""
    planted = {("fusion", "mul"): -0.01}
    texts = {}
    for gain in (0.05, 0.0):
        analysis = factorial.analyse(synthetic(planted, gc_gain=gain))
        texts[gain] = (analysis.control.holds, factorial.report(analysis, "synthetic"))
    holds, text = texts[0.05]
    assert holds and "Positive control: paper default - baseline +0.05" in text and "withheld" not in text
    assert "| fusion: add > mul |" in text and "| agree |" in text
    holds, text = texts[0.0]
    assert not holds and "No positive control: this proxy cannot show a GC effect" in text
    row = next(line for line in text.splitlines() if line.startswith("| fusion: add > mul |"))
    assert row.endswith("| withheld (no control) |")


def test_misfit_is_what_the_model_leaves_out_and_seed_noise_the_rest():
    # An interaction the model holds (pool x fusion) is fitted away: what is left is the seeds' noise.
    fitted = factorial.analyse(synthetic({}, interaction=0.02, noise=0.002))
    assert ("pool", "fusion") in fitted.interactions_fitted
    assert fitted.misfit_sd < 0.001 and fitted.seed_sd == pytest.approx(0.002, rel=0.2)
    # One it leaves out (ratio x norm, +0.01 in a quarter of the cells) is misfit: what the main effects cannot
    # absorb, a quarter of it (0.0025), beside the same seed noise.
    grid_obs = synthetic({}, noise=0.002)
    odd = [(a, s, v + (0.01 if not a.is_baseline and a.ratio == 0.25 and a.norm == "none" else 0.0))
           for a, s, v in grid_obs]  # fmt: skip
    misfit = factorial.analyse(odd)
    assert ("norm", "ratio") not in misfit.interactions_fitted and ("ratio", "norm") not in misfit.interactions_fitted
    assert 0.0015 < misfit.misfit_sd < 0.0035 and misfit.seed_sd == pytest.approx(0.002, rel=0.2)


def test_the_claims_are_also_read_within_the_papers_add_fusion():
    # after_1x1 helps only under add (fusion x position, in the model): averaged over the three fusions it is a
    # third as large, at add it is whole.
    obs = [(a, s, v + (0.006 if not a.is_baseline and a.fusion == "add" and a.position == "after_1x1" else 0.0))
           for a, s, v in synthetic({}, noise=0.0005)]  # fmt: skip
    a = factorial.analyse(obs)
    overall = next(c for c in a.position if c.name == "position: after_1x1 - after_3x3")
    at_add = next(c for c in a.within_add if c.name == "position: after_1x1 - after_3x3, at add")
    assert overall.estimate == pytest.approx(0.002, abs=0.0005)
    assert at_add.estimate == pytest.approx(0.006, abs=0.0008) and at_add.verdict == "after_1x1 better"
