"""The fault campaign's kill points (gcsearch/failpoints.py) and the fixes the campaign (experiments/faults.py)
asked for: writers killed mid-write leave nothing behind once the next writer starts, a torn journal record is
repaired, and a pretraining killed after an epoch continues from it."""

import os
import signal
import socket
import subprocess
import sys
import textwrap

import optuna
import pytest
import torch
import yaml

from gcsearch import failpoints
from gcsearch.files import sweep_temporaries, temporary
from gcsearch.search import rundir
from gcsearch.testing import image_folder
from tests.conftest import ROOT

SMOKE = ROOT / "search_spaces" / "smoke.yaml"


def armed(point: str, code: str, cwd) -> subprocess.CompletedProcess:
    """``code`` in a fresh interpreter with ``point`` armed (no process group named: it kills itself only)."""
    env = {**os.environ, failpoints.ENV: point}
    env.pop(failpoints.PGID_ENV, None)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)  # fmt: skip


def test_an_unarmed_point_does_nothing():
    assert failpoints._ARMED is None  # the test session runs unarmed
    failpoints.hit("journal")
    assert not failpoints.due("written", "x")


def test_the_armed_point_kills_at_its_count_and_only_on_matching_paths(tmp_path):
    code = """
        from pathlib import Path
        from gcsearch.files import write_atomic
        for name in ("a.txt", "b.txt", "a.txt", "b.txt", "c.txt"):
            write_atomic(Path(name), name)
    """
    out = armed("replaced@*/b.txt:2", code.replace("Path(name)", "Path.cwd() / name"), tmp_path)
    assert out.returncode == -signal.SIGKILL
    # killed just after the second b.txt was renamed into place: c.txt never written
    assert (tmp_path / "b.txt").read_text() == "b.txt"
    assert not (tmp_path / "c.txt").exists()


def test_a_kill_between_write_and_rename_keeps_the_old_file_and_the_next_writer_sweeps_the_litter(tmp_path):
    code = """
        from pathlib import Path
        from gcsearch.files import write_atomic
        write_atomic(Path.cwd() / "a.txt", "one")
        write_atomic(Path.cwd() / "a.txt", "two")
    """
    assert armed("written@*/a.txt:2", code, tmp_path).returncode == -signal.SIGKILL
    assert (tmp_path / "a.txt").read_text() == "one"
    litter = list(tmp_path.glob(".a.txt.tmp-*"))
    assert len(litter) == 1 and litter[0].read_text() == "two"
    live = temporary(tmp_path / "b.txt")  # a writer of this host that is alive (this process): kept
    live.write_text("in progress")
    assert sweep_temporaries(tmp_path) == litter
    assert not litter[0].exists() and live.exists()
    other_host = tmp_path / f".c.txt.tmp-{socket.gethostname()}x-1"  # another host's: unknowable, kept
    other_host.write_text("?")
    assert sweep_temporaries(tmp_path) == []
    assert set(sweep_temporaries(tmp_path, everyone=True)) == {live, other_host}  # under a run's lock: all


def test_a_torn_journal_record_is_repaired_and_the_study_goes_on(tmp_path):
    code = f"""
        from pathlib import Path
        import optuna
        from gcsearch.search import rundir
        study = optuna.create_study(study_name="s", storage=rundir.storage(Path({str(tmp_path)!r})))
        for i in range(10):
            study.enqueue_trial({{"x": i}})
    """
    assert armed("journal-torn:4", code, tmp_path).returncode == -signal.SIGKILL
    data = (tmp_path / "optuna.log").read_bytes()
    assert not data.endswith(b"\n")  # half a record on disk
    (tmp_path / "optuna.log.lock").unlink(missing_ok=True)
    assert rundir.repair_journal(tmp_path) > 0
    study = optuna.load_study(study_name="s", storage=rundir.storage(tmp_path))
    assert len(study.trials) == 2  # the two whole enqueue records; the torn third is gone
    study.enqueue_trial({"x": 99})
    assert len(optuna.load_study(study_name="s", storage=rundir.storage(tmp_path)).trials) == 3


def test_a_bad_failpoint_setting_is_one_line_and_exit_2(tmp_path):
    out = armed("journal:zero", "import gcsearch.files", tmp_path)
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and "POINT[@GLOB]:N" in out.stderr


def pretrain_space(tmp_path, out_dir):
    doc = yaml.safe_load(SMOKE.read_text())
    doc["backbone"]["pretrain"] = {"epochs": 2, "lr": 0.1}
    doc["train"]["threads"] = 1
    doc["output"] = {"dir": str(out_dir)}
    path = tmp_path / f"{out_dir.name}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_a_pretraining_killed_after_an_epoch_continues_from_it_to_the_same_weights(tmp_path):
    import io

    from gcsearch.nn import pretrain
    from gcsearch.spacefile import load_space

    code = f"""
        from gcsearch.nn import pretrain
        from gcsearch.spacefile import load_space
        pretrain.resolve(load_space({str(pretrain_space(tmp_path, tmp_path / "killed"))!r}))
    """
    assert armed("replaced@*.pretraining.pt:1", code, tmp_path).returncode == -signal.SIGKILL
    folder = tmp_path / "killed" / "pretrained"
    made = {p.name for p in folder.iterdir()}
    assert not [n for n in made if n.endswith(".pt") and not n.startswith(".")]  # no weights from half a pretraining
    assert [n for n in made if n.endswith(".pretraining.pt")]  # but its first epoch, kept
    said = io.StringIO()
    resumed = pretrain.resolve(load_space(pretrain_space(tmp_path, tmp_path / "killed")), said)
    assert "continuing the pretraining from its checkpoint: 1 of 2 epochs done" in said.getvalue()
    straight = pretrain.resolve(load_space(pretrain_space(tmp_path, tmp_path / "straight")))
    a = torch.load(resumed.backbone.weights, weights_only=True)
    b = torch.load(straight.backbone.weights, weights_only=True)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # the weights and the lock, as an uninterrupted pretraining leaves: no checkpoint, no temporary file
    straight_files = sorted(p.name for p in (tmp_path / "straight" / "pretrained").iterdir())
    assert sorted(p.name for p in folder.iterdir()) == straight_files


@pytest.mark.parametrize("point", ["cache-chunk:1", "written@*/manifest.json:1"])
def test_a_cache_build_killed_midway_leaves_nothing_once_the_next_build_runs(tmp_path, point):
    from gcsearch.nn import cache
    from gcsearch.spacefile import load_space

    root = image_folder(tmp_path / "images", per_class=50, size=32, odd_modes=False)
    doc = yaml.safe_load(SMOKE.read_text())
    doc["backbone"].update(input_size=[3, 32, 32], num_classes=3)
    doc["data"] = {"dataset": "imagefolder", "root": str(root), "val_size": 20, "cache_dir": str(tmp_path / "cache")}
    path = tmp_path / "folder.yaml"
    path.write_text(yaml.safe_dump(doc))
    code = f"""
        from gcsearch.nn import cache
        from gcsearch.spacefile import load_space
        cache.prepare(load_space({str(path)!r}))
    """
    assert armed(point, code, tmp_path).returncode == -signal.SIGKILL
    assert list((tmp_path / "cache").glob(".*.tmp-*"))  # the killed build's temporary directory
    cache.prepare(load_space(path))
    left = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert len(left) == 1 and not left[0].startswith(".")  # the cache, whole, and nothing else


@pytest.mark.slow
def test_a_search_killed_in_its_pretraining_continues_with_resume(tmp_path):
    """Found by the campaign (replaced@*.pretraining.pt:1): the kill came before the journal existed, and
    `--resume` refused the run directory while `gcsearch run SPACE --name` refused the name as taken."""
    path = pretrain_space(tmp_path, tmp_path / "out")
    cli = [sys.executable, "-m", "gcsearch", "run"]
    env = {**os.environ, failpoints.ENV: "replaced@*.pretraining.pt:1"}
    env.pop(failpoints.PGID_ENV, None)
    killed = subprocess.run([*cli, str(path), "--name", "run"], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=300)  # fmt: skip
    assert killed.returncode == -signal.SIGKILL
    run_dir = tmp_path / "out" / "run"
    assert not (run_dir / "optuna.log").exists()  # killed before the search began
    resumed = subprocess.run([*cli, "--resume", str(run_dir), "--trials", "1"], cwd=tmp_path, capture_output=True,
                             text=True, timeout=600)  # fmt: skip
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-2000:]
    assert "continuing the pretraining from its checkpoint: 1 of 2 epochs done" in resumed.stdout
    assert "Traceback" not in resumed.stdout + resumed.stderr
    study = rundir.load_main_study(run_dir)
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE]
    assert rundir.load_run_space(run_dir).backbone.weights_sha256  # the weights it finished, pinned


@pytest.mark.parametrize("point", ["written@*/space.yaml:1", "replaced@*/space.yaml:1"])
def test_a_run_directory_is_created_whole_or_not_at_all(tmp_path, point):
    """Found by the campaign: a kill while the new run directory's space.yaml was written left a directory
    without it, which `--resume` refused and whose name `gcsearch run --name` refused as taken."""
    from gcsearch.spacefile import load_space

    code = f"""
        from pathlib import Path
        from gcsearch.search import rundir
        from gcsearch.spacefile import load_space
        rundir.create_run_dir(Path({str(tmp_path / "out" / "run")!r}), load_space({str(SMOKE)!r}))
    """
    assert armed(point, code, tmp_path).returncode == -signal.SIGKILL
    out = tmp_path / "out"
    assert [p.name for p in out.iterdir()] != [] and not (out / "run").exists()  # only the creator's temporary
    rundir.create_run_dir(out / "run", load_space(SMOKE))
    assert [p.name for p in out.iterdir()] == ["run"]  # the killed creator's temporary swept
    assert load_space(out / "run" / "space.yaml").search == load_space(SMOKE).search
