"""Measured latency (gcsearch/nn/latency.py): folded BatchNorm changes nothing, one measurement per configuration
and machine, every bad setting one line; a search with latency as an objective measures each configuration once
and a resumed one measures nothing again."""

import csv
import dataclasses
import subprocess
import sys

import pytest
import torch
import yaml

from gcsearch.arch import ArchConfig
from gcsearch.cli import main
from gcsearch.nn import latency
from gcsearch.nn.models import build_model
from gcsearch.settings import LatencyConfig
from gcsearch.spacefile import load_space
from tests.conftest import ROOT

SMOKE = load_space(ROOT / "search_spaces" / "smoke.yaml")
FAST = LatencyConfig(runs=5, warmup_s=0.0, attempts=1)  # a quick measurement: the tests check behaviour, not time


def test_folding_batchnorm_leaves_the_function_and_no_batchnorm():
    model = build_model(gc=SMOKE.reference(), **SMOKE.backbone.build_kwargs()).eval()
    folded = latency.fold_batchnorm(model)
    x = torch.randn(3, 1, 28, 28)
    assert torch.allclose(model(x), folded(x), atol=1e-5)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())  # the model itself untouched


def test_a_configuration_is_measured_once_per_machine_and_settings(tmp_path):
    before = latency.MEASURED
    first = latency.latency(SMOKE.reference(), SMOKE.backbone, FAST, tmp_path)  # the baseline first, then it
    again = latency.latency(SMOKE.reference(), SMOKE.backbone, FAST, tmp_path)
    assert before + 2 == latency.MEASURED and again == first and first.median_ms > 0 and first.runs == 200
    base = latency.latency(ArchConfig(), SMOKE.backbone, FAST, tmp_path)  # measured already, for the reference
    assert before + 2 == latency.MEASURED and base.vs_baseline == 1.0
    # A configuration's ms are its ratio to the baseline, timed in alternation, on the baseline's scale.
    assert first.median_ms == pytest.approx(first.vs_baseline * base.median_ms)
    latency.latency(SMOKE.reference(), SMOKE.backbone, dataclasses.replace(FAST, batch=4), tmp_path)  # other settings
    assert before + 4 == latency.MEASURED and len(list(tmp_path.glob("*.json"))) == 4


class PhasedClock:
    """A machine whose speed changes in phases: every run costs its model's cost times the phase's factor (3x for
    the 150 runs after each 150 at 1x), and the clock advances by exactly that. No real time passes."""

    def __init__(self):
        self.now, self.runs = 0.0, 0

    def __call__(self) -> float:
        return self.now

    def factor(self) -> float:
        return 3.0 if (self.runs // 150) % 2 else 1.0

    def run(self, cost_s: float) -> None:
        self.now += cost_s * self.factor()
        self.runs += 1


class DriftingClock(PhasedClock):
    """A machine that slows steadily, 0.1% a run: whichever side always ran second would look slower."""

    def factor(self) -> float:
        return 1.0 + 1e-3 * self.runs


class Costs(torch.nn.Module):
    """A model that costs ``cost_s`` on the phased clock per run (a class attribute: measuring deep-copies the
    model, and the copy must run on the same clock)."""

    clock: PhasedClock

    def __init__(self, cost_s: float):
        super().__init__()
        self.cost_s = cost_s

    def forward(self, x):
        self.clock.run(self.cost_s)
        return x


def test_timed_against_the_baseline_a_slow_phase_falls_on_both_sides(monkeypatch):
    clock = PhasedClock()
    monkeypatch.setattr(latency, "_clock", clock)
    monkeypatch.setattr(Costs, "clock", clock, raising=False)
    settings = LatencyConfig(runs=200, warmup_s=0.0, attempts=1)
    alone = latency.measure(Costs(2e-3), (1, 4, 4), settings)
    paired = latency.measure(Costs(2e-3), (1, 4, 4), settings, against=Costs(1e-3))
    # Alone, the phases show as spread (runs at 2 ms and at 6 ms); against the baseline, the ratio is exact.
    assert alone.spread > 0.5
    assert paired.vs_baseline == pytest.approx(2.0) and paired.runs == 200


def test_timed_against_the_baseline_neither_side_always_goes_first(monkeypatch):
    clock = DriftingClock()
    monkeypatch.setattr(latency, "_clock", clock)
    monkeypatch.setattr(Costs, "clock", clock, raising=False)
    paired = latency.measure(Costs(2e-3), (1, 4, 4), LatencyConfig(runs=200, warmup_s=0.0, attempts=1),
                             against=Costs(1e-3))  # fmt: skip
    # Always A then B, the ratio comes out 1.964: the second side looks slower.
    assert paired.vs_baseline == pytest.approx(2.0, rel=0.005)


@pytest.mark.parametrize(
    "settings,needle",
    [
        ({"device": "tpu"}, "`device` must be one of ['cpu', 'cuda']"),
        ({"batch": 0}, "`batch` must be >= 1"),
        ({"runs": 0}, "`runs` must be >= 1"),
        ({"dtype": "int8"}, "`dtype` must be one of"),
    ],
)
def test_a_bad_latency_setting_is_one_line_and_exit_2(tmp_path, capsys, settings, needle):
    space = yaml.safe_load((ROOT / "search_spaces" / "smoke.yaml").read_text())
    space["search"].update(objectives=["accuracy", "latency"], latency=settings)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(space))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert needle in err and "search.latency" in err and err.count("\n") == 1


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_a_cuda_latency_on_a_machine_without_cuda_is_refused_before_any_compute(tmp_path, capsys):
    space = yaml.safe_load((ROOT / "search_spaces" / "smoke.yaml").read_text())
    space["search"].update(objectives=["accuracy", "latency"], latency={"device": "cuda"})
    path = tmp_path / "cuda.yaml"
    path.write_text(yaml.safe_dump(space))
    assert main(["validate", str(path)]) == 2
    assert "cuda is not available here" in capsys.readouterr().err


@pytest.mark.slow
def test_a_search_with_latency_measures_each_configuration_once_and_a_resume_none_again(tmp_path):
    space = yaml.safe_load((ROOT / "search_spaces" / "smoke.yaml").read_text())
    # 4 trials: the budget then holds the references (the baseline, whose latency the others are read against).
    space["search"].update(objectives=["accuracy", "latency"], trials=4, pruner="none", pruner_settings={},
                           latency={"runs": 5, "warmup_s": 0.0, "attempts": 1})  # fmt: skip
    space["output"] = {"dir": str(tmp_path / "runs")}
    path = tmp_path / "latency.yaml"
    path.write_text(yaml.safe_dump(space))
    run = [sys.executable, "-m", "gcsearch", "run"]
    first = subprocess.run([*run, str(path), "--name", "l"], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr[-2000:]
    rows = [r for r in csv.DictReader((tmp_path / "runs" / "l" / "trials.csv").open()) if r["state"] == "COMPLETE"]
    assert len(rows) == 4 and all(float(r["latency_ms"]) > 0 for r in rows)
    assert any(float(r["latency_vs_baseline"]) == 1.0 for r in rows)  # the baseline, 1.0x itself
    cached = {p: p.stat().st_mtime_ns for p in (tmp_path / "runs" / "latency").glob("*.json")}
    assert len(cached) == 4
    again = subprocess.run([*run, "--resume", str(tmp_path / "runs" / "l"), "--trials", "6"], cwd=tmp_path,
                           capture_output=True, text=True, timeout=600)  # fmt: skip
    assert again.returncode == 0, again.stderr[-2000:]
    after = {p: p.stat().st_mtime_ns for p in (tmp_path / "runs" / "latency").glob("*.json")}
    # The 4 configurations measured before are not measured again; the 2 new ones are, once each.
    assert all(after[p] == t for p, t in cached.items()) and len(after) == 6
