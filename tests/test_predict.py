"""An export that deploys (gcsearch/analysis/predict.py, retrain.py, nn/preprocess.py): `gcsearch train --out` keeps
a loadable export; `gcsearch predict` and `gcsearch.preprocessing` classify images as the evaluation did; Ctrl-C
during `train` is a pause."""

import os
import re
import signal
import subprocess
import sys

import pytest
import torch
import yaml
from PIL import Image

import gcsearch
from gcsearch.cli import main
from gcsearch.nn.cache import list_split
from tests.conftest import folder_space

GCSEARCH = [sys.executable, "-m", "gcsearch"]


def test_train_out_keeps_an_export_whose_predictions_score_what_the_evaluation_did(tmp_path, folder, capsys):
    space = folder_space(tmp_path, folder)
    out = tmp_path / "trained"
    assert main(["train", str(space), "--test", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    test_accuracy = float(re.search(r"test acc ([0-9.]+)", printed).group(1))
    export = yaml.safe_load((out / "best.yaml").read_text())
    # What inference needs: the class names in label order, the input size, the rule, the normalisation.
    assert export["preprocess"]["classes"] == ["class0", "class1", "class2"]
    assert export["preprocess"]["input_size"] == [3, 64, 64] and len(export["preprocess"]["mean"]) == 3
    assert export["weights"] == "best.pt" and (out / "best.pt").is_file()
    # The folder's val/ is the test split: every image, in the cache's order, through predict.
    listing = list_split(folder / "val")
    images = [str(listing.folder / rel) for rel, *_ in listing.files]
    assert main(["predict", str(out / "best.yaml"), *images, "--top", "2"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == len(images)
    right = 0
    for line, (rel, label, *_) in zip(lines, listing.files, strict=True):
        path, ranked = line.split(": ", 1)
        first = ranked.split(", ")[0].rsplit(" ", 1)
        assert path.endswith(rel) and 0 <= float(first[1]) <= 1 and len(ranked.split(", ")) == 2
        right += first[0] == listing.classes[label]
    # The same images, decoded and normalised as the evaluation did, the model run as it ran: the same accuracy.
    assert right / len(images) == pytest.approx(test_accuracy, abs=1e-9)

    # In Python, as the README shows: build_model and the export's preprocessing classify a JPEG.
    model, prep = gcsearch.build_model(str(out / "best.yaml")).eval(), gcsearch.preprocessing(str(out / "best.yaml"))
    jpeg = next(p for p in images if p.endswith(".jpg"))
    with torch.no_grad():
        name = prep.classes[model(prep(Image.open(jpeg))[None]).argmax()]
    assert name == lines[images.index(jpeg)].split(": ", 1)[1].split(" ")[0]


def test_predict_refuses_what_cannot_classify(tmp_path, folder, capsys):
    space = folder_space(tmp_path, folder)
    out = tmp_path / "trained"
    assert main(["train", str(space), "--epochs", "1", "--out", str(out)]) == 0
    capsys.readouterr()
    # An unreadable image: one line naming it, exit 2.
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"not an image")
    assert main(["predict", str(out / "best.yaml"), str(junk)]) == 2
    assert str(junk) in capsys.readouterr().err
    # An export without weights cannot classify: it says how to get them.
    data = yaml.safe_load((out / "best.yaml").read_text())
    del data["weights"]
    (tmp_path / "bare.yaml").write_text(yaml.safe_dump(data))
    assert main(["predict", str(tmp_path / "bare.yaml"), str(junk)]) == 2
    assert "--weights" in capsys.readouterr().err


def test_ctrl_c_pauses_train_and_the_same_command_continues_to_the_same_result(tmp_path, folder):
    space = folder_space(tmp_path, folder)
    whole = subprocess.run([*GCSEARCH, "train", str(space), "--epochs", "4", "--out", str(tmp_path / "whole")],
                           capture_output=True, text=True, timeout=300)  # fmt: skip
    assert whole.returncode == 0, whole.stderr[-2000:]
    cmd = [*GCSEARCH, "train", str(space), "--epochs", "4", "--out", str(tmp_path / "paused")]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)  # fmt: skip
    for line in proc.stdout:
        if "epoch   1/4" in line:  # the first epoch is checkpointed: press Ctrl-C in the second
            os.killpg(proc.pid, signal.SIGINT)
            break
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert re.search(r"interrupted: [12] of 4 epochs finished, kept in .*; continue with: the same command", err)
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "continuing after epoch" in again.stdout
    # Resumed to the same weights: the same final accuracy as the training nobody interrupted.
    final = [re.search(r"final: val acc ([0-9.]+)", o.stdout).group(1) for o in (whole, again)]
    assert final[0] == final[1]
