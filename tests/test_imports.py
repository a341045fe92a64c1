"""What importing a module loads, checked in a fresh interpreter: the base and the pure parts of the upper
layers load no torch, no ray and no optuna, so the CLI's light commands and the library's light parts stay
fast. (tests/test_layers.py checks the direct imports; this checks what they pull in.)"""

import subprocess
import sys

import pytest

from tests.conftest import ROOT

BASE = sorted(p.stem for p in (ROOT / "gcsearch").glob("*.py") if p.stem not in ("__init__", "__main__", "cli"))
PURE = [*BASE, "search.attrs", "search.strategy", "bench.curves", "bench.design", "bench.fidelity", "bench.replay",
        "analysis.export", "analysis.ablate", "analysis.confirm", "analysis.report", "analysis.factorial",
        "analysis.planted", "analysis.retrain"]  # fmt: skip


def loaded_after(code: str, watched: tuple[str, ...] = ("torch", "ray", "optuna")) -> set[str]:
    probe = f"{code}\nimport sys\nprint(' '.join(m for m in {watched!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr[-1500:]
    return set(out.stdout.split())


@pytest.mark.parametrize("module", PURE)
def test_pure_modules_load_no_torch_and_no_ray(module):
    heavy = loaded_after(f"import gcsearch.{module}")
    assert heavy == set(), f"gcsearch.{module} imports {heavy}"


def test_building_the_decider_with_a_coster_loads_optuna_but_no_ray_and_no_torch():
    # The runner hands it a coster (a search: flops.SpaceCoster; a replay: recorded costs), so deciding stays
    # torch-free: here a coster that knows nothing of torch, and one proposal asked for.
    build = (
        "import optuna\nfrom gcsearch.search.decider import Decider\nfrom gcsearch.spacefile import load_space\n"
        "s = load_space('search_spaces/smoke.yaml')\n"
        "d = Decider(s, optuna.storages.InMemoryStorage(), 2, coster=lambda arch: (1000 * len(arch.stages), 10))\n"
        "assert d.propose() is not None"
    )
    assert loaded_after(build) == {"optuna"}


@pytest.mark.parametrize("command", ["show", "pareto"])
def test_show_and_pareto_load_no_torch(make_run, command):
    run_dir = make_run([({"stages": []}, "COMPLETE", 0.8)])
    heavy = loaded_after(f"from gcsearch.cli import main\nassert main([{command!r}, {str(run_dir)!r}]) == 0")
    assert "torch" not in heavy and "ray" not in heavy


def test_torch_side_modules_load_neither_the_yaml_reader_nor_export():
    # They read typed settings (settings.py); reading files is the space file's and the export's business.
    # One interpreter for all (torch is imported once); after each import, what is loaded so far.
    watched = ("gcsearch.spacefile", "gcsearch.analysis.export", "yaml")
    modules = ["blocks", "models", "data", "flops", "train", "weights", "pretrain"]
    probe = (
        "import importlib, sys\n"
        "for m in " + repr(modules) + ":\n"
        "    importlib.import_module('gcsearch.nn.' + m)\n"
        "    print(m, *[w for w in " + repr(watched) + " if w in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr[-1500:]
    loaded = {line.split()[0]: line.split()[1:] for line in out.stdout.splitlines()}
    assert loaded == {m: [] for m in modules}
