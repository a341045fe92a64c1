import dataclasses
import pathlib

import pytest

from gcsearch import ArchConfig
from gcsearch.analysis import ablate
from gcsearch.arch import PAPER_DEFAULT
from gcsearch.cli import main
from gcsearch.spacefile import load_space

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_points_vary_one_axis_at_a_time_around_the_paper_default():
    space = load_space(ROOT / "search_spaces" / "gc.yaml")
    pts = ablate.points(space)
    ref = space.reference()
    assert pts[0].arch == ref and pts[-1].arch == ArchConfig()
    for p in pts[1:-1]:
        # Exactly the named axis differs from the reference (a gated fusion brings its gate start along).
        changed = [a for a in ablate.AXES if getattr(p.arch, a) != getattr(ref, a)]
        assert changed == [p.axis] or (p.axis == "fusion" and changed == ["fusion", "gate_init"])
    # gc.yaml's fusions: mul and both, each with both gate starts.
    fusion = [p.value for p in pts if p.axis == "fusion"]
    assert fusion == ["mul (half gate)", "mul (identity gate)", "both (half gate)", "both (identity gate)"]
    assert len(pts) == len({p.arch for p in pts}) == 15


def row(axis, value, accs, arch=None):
    return ablate.Row(ablate.Point(axis, value, arch or ArchConfig()), dict(enumerate(accs)), 1, 1)


def test_axis_results_rank_and_separate_by_noise():
    rows = [
        row("reference", "reference", [0.80, 0.81, 0.79, 0.80, 0.82]),  # pool=att, fusion=add
        # Far below (0.095 to 0.105): separable. Exactly 0.10 in every seed would not be: zero variance.
        row("pool", "avg", [0.70, 0.715, 0.69, 0.705, 0.72]),
        row("fusion", "mul", [0.805, 0.80, 0.81, 0.79, 0.83]),  # within noise of the reference
    ]
    results = {r.axis: r for r in ablate.axis_results(rows)}
    assert results["pool"].ranking[0] != "avg" and results["pool"].separable
    assert not results["fusion"].separable
    assert results["pool"].lead == pytest.approx(0.098)


def test_a_small_consistent_paired_lead_is_separable_where_the_unpaired_rule_was_not():
    # Seeds move both points together (seed 3 is a good seed for both); att leads by 0.002-0.004 in every
    # seed. Unpaired: lead 0.003 against 2 x sqrt(se_a^2 + se_b^2) = 0.0114, "not separable".
    # Paired: differences 0.002, 0.003, 0.004, 0.003, 0.003, 0.003: t = 10.6 on 5 df, p = 0.0001.
    att = [0.860, 0.852, 0.871, 0.880, 0.865, 0.858]
    avg = [a - d for a, d in zip(att, [0.002, 0.003, 0.004, 0.003, 0.003, 0.003], strict=True)]
    rows = [row("reference", "reference", att), row("pool", "avg", avg)]
    (pool,) = ablate.axis_results(rows)
    a, b = rows
    unpaired_noise = (a.std**2 / 6 + b.std**2 / 6) ** 0.5
    assert pool.lead < 2 * unpaired_noise  # the old rule's verdict: not separable
    assert pool.best != "avg" and pool.separable
    assert pool.comparisons[0].interval.low > 0 and pool.comparisons[0].sign_p == pytest.approx(2 / 64)


def test_holm_corrects_over_the_whole_ablation():
    # One comparison at p ~ 0.03 alone is separable; among 3 comparisons Holm multiplies it by up to 3.
    base = [0.80, 0.81, 0.79, 0.80, 0.82]
    marginal = [b - d for b, d in zip(base, [0.004, 0.0, 0.006, 0.003, 0.002], strict=True)]
    alone = ablate.axis_results([row("reference", "reference", base), row("pool", "avg", marginal)])
    assert alone[0].comparisons[0].interval.p < 0.05 and alone[0].separable
    noisy = [b + d for b, d in zip(base, [0.01, -0.01, 0.005, -0.004, 0.0], strict=True)]
    family = ablate.axis_results([row("reference", "reference", base), row("pool", "avg", marginal),
                                  row("fusion", "mul", noisy), row("norm", "none", noisy)])  # fmt: skip
    pool = next(r for r in family if r.axis == "pool")
    p = pool.comparisons[0].interval.p
    assert 0.05 / 3 < p < 0.05  # separable alone, not after multiplying by the 3 comparisons
    # The smallest of the 3 p-values is multiplied by 3 (the noisy ones have larger p).
    assert pool.comparisons[0].holm_p == pytest.approx(3 * p)
    assert not pool.separable


def test_default_seeds_are_powered_for_the_holm_correction():
    # gc.yaml's ablation: 15 points (mul and both each with two gate starts), 13 comparisons. At the measured
    # paired noise 0.0055 and effect 0.005 a paired t-test at 5% needs 12 seeds; Holm tests the smallest p at
    # 0.05 / 13, which needs 21.
    space = load_space(ROOT / "search_spaces" / "gc.yaml")
    assert ablate.comparisons(space) == 13
    assert ablate.default_seeds(comparisons=1) == 12
    assert ablate.default_seeds(comparisons=ablate.comparisons(space)) == 21
    # And the seeds do what they are for: 80% power at 0.05 / 11 for the effect, not at 0.05 only.
    from gcsearch import stats

    assert stats.detectable(ablate.PAIRED_SD, 21, alpha=0.05 / 13) <= ablate.EFFECT
    assert stats.detectable(ablate.PAIRED_SD, 20, alpha=0.05 / 13) > ablate.EFFECT
    assert ablate.default_seeds(sd=0.0010, comparisons=11) == ablate.MIN_SEEDS  # never below 5


def test_the_ablate_command_trains_the_holm_powered_default(tmp_path, monkeypatch, capsys):
    from gcsearch.search import tune

    plans = []

    def fake_run(space, run_dir, plan=None, **kwargs):  # records what would be trained; trains nothing
        run_dir.mkdir(parents=True)
        plans.append(plan)
        return []

    monkeypatch.setattr(tune, "run", fake_run)
    assert main(["ablate", str(ROOT / "search_spaces" / "gc.yaml"), "--name", str(tmp_path / "ablation")]) == 0
    space = load_space(ROOT / "search_spaces" / "gc.yaml")
    # 21 seeds for every point: the default powered at Holm's first step over 13 comparisons.
    assert len(plans[0]) == 21 * len(ablate.points(space)) and "13 comparisons" in capsys.readouterr().out


def test_a_point_whose_every_seed_failed_ranks_last_and_is_shown_as_failed():
    # Issue 24: reference (fusion add) 0.80, "both" failed, "mul" 0.90. NaN broke the sort: the table named
    # add best and put mul at -0.10.
    ref = load_space(ROOT / "search_spaces" / "gc.yaml").reference()  # fusion: add
    rows = [
        row("reference", "reference", [0.80, 0.81, 0.79, 0.80, 0.82], ref),
        row("fusion", "both", []),
        row("fusion", "mul", [0.90, 0.91, 0.895, 0.905, 0.92]),
    ]
    (fusion,) = ablate.axis_results(rows)
    assert fusion.ranking == ("mul", "add", "both") and fusion.best == "mul" and fusion.failed == ("both",)
    assert fusion.runner_up == "add" and fusion.lead == pytest.approx(0.102) and fusion.separable
    assert fusion.comparisons[-1].failed and not fusion.comparisons[-1].separable
    text = ablate.table(rows)
    assert "| fusion | both | failed (no seed completed) |" in text
    assert "| fusion | mul | add | +0.1020" in text and "| fusion | mul | both | failed (no seed completed) |" in text
    assert "nan" not in text
    # Failed wherever it sits in the input, and even when the reference is the one that failed.
    again = ablate.axis_results([rows[1], rows[2], rows[0]])
    assert again[0].ranking == ("mul", "add", "both")
    all_failed = ablate.axis_results([row("reference", "reference", []), row("fusion", "mul", [])])
    assert all_failed[0].best == "" and not all_failed[0].separable and all_failed[0].comparisons == ()
    assert "every value failed" in ablate.table([row("reference", "reference", []), row("fusion", "mul", [])])


def test_the_table_states_the_positive_control_and_withholds_verdicts_without_it():
    ref = [0.80, 0.81, 0.79, 0.80, 0.82]
    avg = row("pool", "avg", [0.70, 0.715, 0.69, 0.705, 0.72])  # separable from the reference
    with_control = ablate.table([row("reference", "reference", ref, PAPER_DEFAULT), avg,
                                 row("baseline", "no GC", [0.60, 0.62, 0.59, 0.61, 0.60], ArchConfig())])  # fmt: skip
    assert with_control.startswith("**Positive control: paper default - baseline +0.2000")
    assert "| pool | att | avg | +0.0980" in with_control and with_control.count("| yes |") == 1
    level = ablate.table([row("reference", "reference", ref, PAPER_DEFAULT), avg,
                          row("baseline", "no GC", [0.805, 0.80, 0.80, 0.79, 0.81], ArchConfig())])  # fmt: skip
    assert level.startswith("**No positive control: this proxy cannot show a GC effect")
    assert "| yes |" not in level and "| withheld (no control) |" in level


@pytest.mark.slow
def test_ablate_command_trains_every_point_with_every_seed(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["ablate", str(ROOT / "search_spaces" / "smoke.yaml"), "--seeds", "3", "--name", "ab"]) == 0
    out = capsys.readouterr().out
    table = (tmp_path / "runs" / "ab" / "ablation.md").read_text()
    # smoke.yaml: reference, avg pool, mul fusion, stage set c4, baseline; 3 seeds each.
    for needle in ("| reference | reference |", "| pool | avg |", "| fusion | mul |", "| baseline | no GC |"):
        assert needle in table and needle in out
    assert table.count("| 3 |") == 5  # every point trained with every seed


def test_reference_falls_back_to_the_space_where_it_lacks_the_paper_value():
    space = load_space(ROOT / "search_spaces" / "smoke.yaml")  # ratio fixed at 1/4, stages c3-c4 or c4
    ref = space.reference()
    assert ref.ratio == 0.25 and ref.stages == ("c3", "c4") and ref.pool == "att" and ref.fusion == "add"
    # gc.yaml holds the paper default itself; a space without GC stage sets has no reference.
    assert load_space(ROOT / "search_spaces" / "gc.yaml").reference() == PAPER_DEFAULT
    assert dataclasses.replace(space, axes=dataclasses.replace(space.axes, stages=((),))).reference() is None


def test_the_papers_claims_are_judged_one_factor_at_a_time_with_their_detectable_effect():
    space = load_space(ROOT / "search_spaces" / "gc.yaml")
    pts = {(p.axis, p.value): p for p in ablate.points(space)}
    base = [0.60, 0.62, 0.58, 0.61, 0.63, 0.59, 0.60, 0.62, 0.61, 0.60]  # the paper default, 10 seeds
    shift = {("baseline", "no GC"): -0.20, ("pool", "avg"): -0.10, ("norm", "none"): -0.001,
             ("ratio", "1/4"): +0.08, ("position", "after_add"): +0.05}  # fmt: skip
    rows = []
    for key, p in pts.items():
        jitter = [0.004 * ((3 * s + len(p.value)) % 5 - 2) for s in range(10)]  # seed noise, paired
        accs = [
            b + shift.get(key, 0.0) + (0 if p.axis == "reference" else j) for b, j in zip(base, jitter, strict=True)
        ]
        rows.append(ablate.Row(p, dict(enumerate(accs)), 1, 1))
    family, position = ablate.claims(rows, margin=0.01)
    got = {c.name: c for c in family}
    # The paper default against the neighbour that changes one axis, in the paper's direction.
    assert got["gc: paper default > baseline"].verdict == "agree"
    assert (
        got["pool: att > avg"].estimate == pytest.approx(0.10, abs=0.01) and got["pool: att > avg"].verdict == "agree"
    )
    # ratio 1/4 > 1/16: the 1/4 neighbour against the default (which holds 1/16).
    assert got["ratio: 1/4 > 1/16"].estimate == pytest.approx(0.08, abs=0.01)
    # A gated fusion at each gate start; a null effect within the margin is equivalent, with its detectable size.
    assert {"fusion: add > mul/half", "fusion: add > mul/identity", "fusion: add > both/identity"} <= set(got)
    assert got["norm: layernorm > none"].verdict == "equivalent" and 0 < got["norm: layernorm > none"].detectable < 0.02
    # Position, pairwise in a family of its own.
    assert next(c for c in position if "after_add" in c.name and "after_1x1" in c.name).verdict == "after_add better"
