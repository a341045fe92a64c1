"""The decode-once image cache (gcsearch/nn/cache.py) on generated image folders: prepared once, reused, rebuilt
when the folder changes, read by trials without decoding; every bad folder one line and exit 2."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from gcsearch.cli import main
from gcsearch.nn import batches, cache
from gcsearch.nn import data as datasets
from gcsearch.spacefile import load_space
from tests.conftest import ROOT, folder_space

N_TRAIN = 3 * 40 + 3  # image_folder: 3 classes x 40, plus its grayscale, RGBA and palette images


def caches(tmp_path):
    return sorted(p.name for p in (tmp_path / "runs" / "cache").iterdir())


def test_prepare_decodes_once_reuses_and_rebuilds_when_the_folder_changes(tmp_path, folder, capsys):
    path = folder_space(tmp_path, folder)
    assert main(["prepare", str(path)]) == 0
    assert "built" in capsys.readouterr().out
    (key,) = caches(tmp_path)
    manifest = json.loads((tmp_path / "runs" / "cache" / key / "manifest.json").read_text())
    x = np.load(tmp_path / "runs" / "cache" / key / "train_x.npy", mmap_mode="r")
    # Only what the search uses: every training image but the 20 held out, at 3x64x64, one label mapping.
    assert x.shape == (N_TRAIN - 20, 3, 64, 64) and manifest["counts"] == {"train": N_TRAIN - 20, "val": 20}
    assert manifest["classes"] == ["class0", "class1", "class2"] and len(manifest["sha256"]) == 64
    # The grayscale, RGBA and palette images were converted to 3 channels (all were decoded: none skipped).
    assert manifest["skipped"] == []
    before = (tmp_path / "runs" / "cache" / key / "manifest.json").stat().st_mtime_ns
    assert main(["prepare", str(path)]) == 0
    assert "reused" in capsys.readouterr().out and caches(tmp_path) == [key]
    assert (tmp_path / "runs" / "cache" / key / "manifest.json").stat().st_mtime_ns == before
    # One more image: another key, decoded again; the old cache is left as it was.
    (folder / "train" / "class1" / "new.png").write_bytes((folder / "train" / "class1" / "0.png").read_bytes())
    assert main(["prepare", str(path)]) == 0
    out = capsys.readouterr().out
    assert "built" in out and len(caches(tmp_path)) == 2
    # The older cache is listed with its size and how to remove it.
    assert f"older caches of this folder: {key} (" in out and "MiB" in out and "--prune" in out


def test_prune_removes_the_older_caches_no_run_uses(tmp_path, folder, capsys):
    path = folder_space(tmp_path, folder)
    keys = []
    for name in ("a.png", "b.png", "c.png"):  # three versions of the folder, three caches
        (folder / "train" / "class1" / name).write_bytes((folder / "train" / "class1" / "0.png").read_bytes())
        assert main(["prepare", str(path)]) == 0
        keys.append(next(k for k in caches(tmp_path) if k not in keys))
    # A run that trains from the first: its space.yaml pins it.
    (tmp_path / "runs" / "old-run").mkdir()
    (tmp_path / "runs" / "old-run" / "space.yaml").write_text(yaml.safe_dump({"data": {"cache_key": keys[0]}}))
    capsys.readouterr()
    assert main(["prepare", "--prune", str(path)]) == 0
    assert "removed 1 older caches" in capsys.readouterr().out
    # The current cache and the one a run uses stay; the unused one is gone.
    assert caches(tmp_path) == sorted([keys[0], keys[2]])


def test_trials_read_the_cache_and_never_the_folder(tmp_path, folder):
    with open(os.devnull, "w") as quiet:
        space = cache.prepare(load_space(folder_space(tmp_path, folder, train_subset=50)), quiet)
    os.rename(folder, tmp_path / "moved")  # what a trial reads must not be the images any more
    splits = datasets.load(space.data, (3, 64, 64), 3, seed=0)
    assert splits.train_x.shape == (50, 3, 64, 64) and splits.val_x.shape == (20, 3, 64, 64)
    assert splits.train_x.dtype == torch.uint8 and len(splits.mean) == 3
    # Memory-mapped, not read whole: the cache's file is mapped into this process (its pages the page cache's).
    mapped = Path("/proc/self/maps").read_text()
    assert str(tmp_path / "runs" / "cache" / space.data.cache_key / "train_x.npy") in mapped
    assert int(splits.train_y.max()) <= 2 and set(splits.val_y.tolist()) <= {0, 1, 2}


def test_an_unprepared_folder_is_refused_inside_a_trial_not_decoded(tmp_path, folder):
    space = load_space(folder_space(tmp_path, folder))
    with pytest.raises(Exception, match="not prepared"):
        datasets.load(space.data, (3, 64, 64), 3, seed=0)


def test_every_unreadable_image_is_named_in_one_line_or_skipped_and_counted(tmp_path, folder, capsys):
    bad = folder / "train" / "class2" / "3.jpg"
    bad.write_bytes(bad.read_bytes()[:-400])  # truncated: its header opens, its pixels do not
    junk = folder / "train" / "class0" / "junk.jpg"
    junk.write_bytes(b"not an image at all")
    # validate opens every header (no decode): it finds the junk file, not the truncated one.
    assert main(["validate", str(folder_space(tmp_path, folder))]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(junk) in err and str(bad) not in err
    # prepare decodes: both, in one line, in one attempt.
    assert main(["prepare", str(folder_space(tmp_path, folder))]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(bad) in err and str(junk) in err and "2 images" in err and "skip_bad" in err
    # Nothing half-built is left where the next prepare would look.
    assert not (tmp_path / "runs" / "cache").exists() or caches(tmp_path) == []
    assert main(["prepare", str(folder_space(tmp_path, folder, "skip.yaml", skip_bad=True))]) == 0
    out = capsys.readouterr().out
    assert "skipped 2 unreadable images" in out


def add_two_classes(root):
    for split in ("train", "val"):
        for k in range(2):
            (root / split / f"more{k}").mkdir()
            (root / split / f"more{k}" / "a.png").write_bytes((root / "train" / "class0" / "0.png").read_bytes())


def remove_class_from_val(root):
    for f in (root / "val" / "class2").iterdir():
        f.unlink()
    (root / "val" / "class2").rmdir()


@pytest.mark.parametrize(
    "change,settings,needle",
    [
        (remove_class_from_val, {}, "'class2' is only in train/"),
        (lambda r: (r / "val" / "extra").mkdir(), {}, "'extra' is only in val/"),
        (lambda r: (r / "train" / "empty").mkdir(), {}, "holds none"),
        (lambda r: None, {"val_size": 500}, "`val_size` must leave training images"),
        (add_two_classes, {}, "`num_classes` must be at least the 5 classes"),
        (lambda r: os.rename(r / "train", r / "training"), {}, "must hold train/"),
    ],
)  # fmt: skip
def test_a_folder_that_cannot_serve_is_one_line_and_exit_2(tmp_path, folder, capsys, change, settings, needle):
    change(folder)
    path = folder_space(tmp_path, folder, **settings)
    assert main(["prepare", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and err.count("\n") == 0
    assert main(["validate", str(path)]) == 2  # validate says it too, before any compute
    assert needle in capsys.readouterr().err


def test_a_relative_root_is_resolved_against_the_working_directory(tmp_path, folder, monkeypatch):
    monkeypatch.chdir(tmp_path)
    space = load_space(folder_space(tmp_path, "images"))
    assert space.data.root == str(folder) and os.path.isabs(space.data.cache_dir)


def test_a_run_refused_at_start_leaves_no_directory_behind(tmp_path, folder, capsys):
    bad = folder / "train" / "class0" / "4.jpg"
    good = bad.read_bytes()
    bad.write_bytes(good[:200])
    path = folder_space(tmp_path, folder)
    assert main(["run", str(path), "--name", "first"]) == 2
    assert str(bad) in capsys.readouterr().err
    assert not (tmp_path / "runs" / "first").exists()  # the name is free for the run that follows the fix


def test_validate_checks_the_folder_and_states_the_cache_size(tmp_path, folder, capsys):
    assert main(["validate", str(folder_space(tmp_path, folder, train_subset=60))]) == 0
    out = capsys.readouterr().out
    assert "123 images in 3 classes" in out and "60 training + 20 validation images at 3x64x64" in out
    assert "0.9 MiB" in out and "not prepared yet" in out


def test_validate_of_a_space_whose_files_are_missing_is_one_line_and_exit_2(tmp_path, folder, capsys):
    # The resnet50 template names weights and a folder this machine lacks: said in one line, before any compute.
    assert main(["validate", str(ROOT / "search_spaces" / "resnet50_imagenet.yaml")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "backbone.weights" in err and "/data/weights" in err
    # A root that does not exist.
    missing = folder_space(tmp_path, tmp_path / "nowhere", "missing.yaml")
    assert main(["validate", str(missing)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "data.root" in err and "nowhere" in err


def test_random_resized_crop_keeps_shape_and_moves_pixels():
    x = torch.arange(4 * 3 * 16 * 16, dtype=torch.float32).view(4, 3, 16, 16).remainder(256).to(torch.uint8)
    out = batches.random_resized_crop(x, 0.3, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.dtype == torch.uint8 and not torch.equal(out, x)
    # Seeded, and each image gets its own crop: two copies of one image come out different.
    again = batches.random_resized_crop(x, 0.3, torch.Generator().manual_seed(0))
    assert torch.equal(out, again)
    twins = batches.random_resized_crop(x[:1].repeat(2, 1, 1, 1), 0.3, torch.Generator().manual_seed(1))
    assert not torch.equal(twins[0], twins[1])


@pytest.mark.slow
def test_a_two_trial_search_trains_from_the_cache(tmp_path, folder):
    path = folder_space(tmp_path, folder)
    out = subprocess.run([sys.executable, "-m", "gcsearch", "run", str(path), "--name", "folder"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=600)  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    run = tmp_path / "runs" / "folder"
    rows = list(__import__("csv").DictReader((run / "trials.csv").open()))
    # Two trained, both COMPLETE (a duplicate proposal, answered without training, is a FAIL row).
    trained = [r for r in rows if not r["reason"].startswith("same configuration")]
    assert [r["state"] for r in trained] == ["COMPLETE", "COMPLETE"]
    # The export of a search's trial classifies an image by name: the trial recorded its preprocessing.
    assert main(["export", str(run), "--pick", "max-accuracy", "--weights", "--out", str(tmp_path / "best.yaml")]) == 0
    jpeg = str(folder / "val" / "class1" / "1.jpg")
    predicted = subprocess.run([sys.executable, "-m", "gcsearch", "predict", str(tmp_path / "best.yaml"), jpeg],
                               capture_output=True, text=True, timeout=120)  # fmt: skip
    assert predicted.returncode == 0 and re.match(rf"{re.escape(jpeg)}: class[012] [01]\.\d{{3}}", predicted.stdout)
    # The run pinned the cache it trained from: a resume over a changed folder is refused.
    pinned = yaml.safe_load((run / "space.yaml").read_text())["data"]["cache_key"]
    assert pinned == caches(tmp_path)[0]
    (folder / "train" / "class0" / "new.png").write_bytes((folder / "train" / "class0" / "0.png").read_bytes())
    again = subprocess.run([sys.executable, "-m", "gcsearch", "run", "--resume", str(run)], cwd=tmp_path,
                           capture_output=True, text=True, timeout=600)  # fmt: skip
    assert again.returncode == 2 and "data.cache_key" in again.stderr
