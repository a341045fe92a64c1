import pathlib
import warnings

import pytest
import torch
import yaml

import gcsearch
from gcsearch import ConfigError
from gcsearch.analysis.export import load_export
from gcsearch.cli import main
from gcsearch.nn.flops import count_macs

TRIALS = [
    ({"stages": ["c3", "c4"], "pool": "att", "fusion": "add", "ratio": 0.25}, "COMPLETE", 0.90),
    ({"stages": ["c4"], "pool": "avg", "fusion": "mul", "ratio": 0.25}, "COMPLETE", 0.85),
    ({"stages": []}, "COMPLETE", 0.80),
    ({"stages": ["c4"], "pool": "att", "fusion": "mul", "ratio": 0.25}, "PRUNED", 0.30),
]


def structure(model):
    return [(name, type(m).__name__) for name, m in model.named_modules()]


@pytest.mark.parametrize("trial", [0, 1, 2])
def test_export_then_build_model_gives_the_trials_model(make_run, tmp_path, trial):
    run = make_run(TRIALS)
    out = tmp_path / f"t{trial}.yaml"
    assert main(["export", str(run), "--trial", str(trial), "--out", str(out)]) == 0
    # Exported without --weights: the model is the trial's architecture, untrained, and says so.
    with pytest.warns(UserWarning, match="holds no weights: this model is untrained"):
        model = gcsearch.build_model(str(out))
    exp = load_export(out)
    reference = gcsearch.build_model(gc=TRIALS[trial][0], **exp.space.backbone.build_kwargs())
    # Same MACs and params as recorded for the trial, same module tree as building it directly.
    assert count_macs(model, (1, 1, 28, 28)) == (exp.metrics["macs"], exp.metrics["params"])
    assert structure(model) == structure(reference)
    assert exp.source["trial"] == trial and exp.source["gcsearch_version"] == gcsearch.__version__


@pytest.mark.parametrize(
    "argv,trial",
    [
        (["--pick", "max-accuracy"], 0),
        (["--pick", "max-accuracy", "--max-macs", "2366000"], 1),  # trial 0 has more GC blocks
        (["--pick", "min-macs", "--tolerance", "0.2"], 2),
        # Trial 1 buys half the front's accuracy range for 5% of its MAC range: the knee.
        (["--pick", "knee"], 1),
    ],
)
def test_pick_rules_through_the_cli(make_run, tmp_path, argv, trial):
    run = make_run(TRIALS)
    out = tmp_path / "best.yaml"
    assert main(["export", str(run), *argv, "--out", str(out)]) == 0
    assert yaml.safe_load(out.read_text())["source"]["trial"] == trial


def test_weights_round_trip(make_run, tmp_path):
    run = make_run(TRIALS)
    arch = TRIALS[0][0]
    model = gcsearch.build_model(gc=arch, backbone="proxy_resnet", num_classes=10, in_channels=1, width=8,
                                 depth=[1, 1, 1])  # fmt: skip
    (run / "checkpoints").mkdir()
    torch.save({"model": model.state_dict(), "epoch": 2}, run / "checkpoints" / "trial-0000.pt")
    out = tmp_path / "best.yaml"
    assert main(["export", str(run), "--trial", "0", "--weights", "--out", str(out)]) == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an export with its weights builds the trained model without a warning
        rebuilt = gcsearch.build_model(str(out))
    a, b = model.state_dict(), rebuilt.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _one_line_exit_2(argv, capsys, needle):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1 and "Traceback" not in err


def test_bad_runs_and_picks(make_run, tmp_path, capsys):
    _one_line_exit_2(["pareto", str(tmp_path / "none")], capsys, "must be an existing run directory")
    (tmp_path / "empty").mkdir()
    _one_line_exit_2(["show", str(tmp_path / "empty")], capsys, "holding optuna.log and space.yaml")
    no_complete = make_run([TRIALS[3]], name="pruned-only")
    _one_line_exit_2(["export", str(no_complete)], capsys, "has no COMPLETE trial yet")
    _one_line_exit_2(["pareto", str(no_complete)], capsys, "has no COMPLETE trial yet")
    run = make_run(TRIALS)
    _one_line_exit_2(["export", str(run), "--pick", "max-accuracy", "--max-macs", "10", "--out",
                      str(tmp_path / "x.yaml")], capsys, "selects no COMPLETE trial within --max-macs 10")  # fmt: skip
    _one_line_exit_2(["export", str(run), "--trial", "17", "--out", str(tmp_path / "x.yaml")], capsys,
                     "`--trial` must be a trial number of this run (0..3)")  # fmt: skip
    assert not (tmp_path / "x.yaml").exists()


def test_existing_export_is_not_overwritten_without_force(make_run, tmp_path, capsys):
    run = make_run(TRIALS)
    out = tmp_path / "best.yaml"
    out.write_text("precious\n")
    _one_line_exit_2(["export", str(run), "--out", str(out)], capsys, "pass --force to overwrite it")
    assert out.read_text() == "precious\n"
    assert main(["export", str(run), "--out", str(out), "--force"]) == 0
    assert "arch" in yaml.safe_load(out.read_text())


@pytest.mark.parametrize(
    "edit,needle",
    [
        (lambda d: d["arch"].update(pool="max"), "`pool` must be one of ['att', 'avg']"),
        (lambda d: d["arch"].update(ratio=3), "`ratio` must be in (0, 1]"),
        (lambda d: d["arch"].update(stages=["c5"]), "`stages` must hold stages of backbone proxy_resnet"),
        (lambda d: d["backbone"].update(width=-1), "`width` must be >= 1"),
        (lambda d: d.update(extra=1), "`extra` is not a key of an export"),
        (lambda d: d.update(weights="../../etc/passwd"), "`weights` must be a file name next to the export"),
    ],
)
def test_edited_export_with_bad_value(make_run, tmp_path, edit, needle, capsys):
    run = make_run(TRIALS)
    out = tmp_path / "best.yaml"
    assert main(["export", str(run), "--trial", "0", "--out", str(out)]) == 0
    data = yaml.safe_load(out.read_text())
    edit(data)
    out.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as err:
        gcsearch.build_model(str(out))
    assert needle in str(err.value) and str(out) in str(err.value)
    _one_line_exit_2(["train", str(out), "--epochs", "1"], capsys, needle)


def test_export_is_pure_python():
    import subprocess
    import sys

    code = "import sys, gcsearch.analysis.export, gcsearch.pareto, gcsearch.space; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=pathlib.Path(__file__).parent.parent)  # fmt: skip
    assert out.stdout.strip() == "False"


def test_every_pick_rule_honours_the_mac_budget():
    from gcsearch import ArchConfig
    from gcsearch.analysis.export import choose
    from gcsearch.pareto import TrialRecord

    recs = [TrialRecord(n, "COMPLETE", ArchConfig(), acc, macs, 10, 4, 1.0)
            for n, (acc, macs) in enumerate([(0.80, 100), (0.85, 200), (0.90, 400)])]  # fmt: skip
    for rule in ("knee", "max-accuracy", "min-macs"):
        # Once ignored by knee and min-macs: the pick must cost at most the budget.
        assert choose(recs, rule, max_macs=250).record.macs <= 250
    assert choose(recs, "max-accuracy", max_macs=250).record.number == 1
