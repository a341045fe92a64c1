"""backbone.weights: a trained baseline's weights under freshly inserted GC blocks (the paper's protocol)."""

import dataclasses
import os
from pathlib import Path

import pytest
import torch

from gcsearch.arch import ArchConfig
from gcsearch.cli import main
from gcsearch.errors import ConfigError
from gcsearch.nn import pretrain, weights
from gcsearch.nn.models import build_model, gc_blocks
from gcsearch.search import rundir
from gcsearch.settings import PretrainConfig
from gcsearch.spacefile import load_space, parse_space
from tests.conftest import ROOT

SMOKE = ROOT / "search_spaces" / "smoke.yaml"
PAPER_ADD = ArchConfig.from_dict({"stages": ["c3", "c4"], "ratio": 0.25})


def baseline_file(tmp_path, space, seed=7, name="base.pt"):
    torch.manual_seed(seed)
    model = build_model(gc=ArchConfig(), **space.backbone.build_kwargs())
    path = tmp_path / name
    torch.save(model.state_dict(), path)
    return path, model


def with_weights(space, path, sha=None):
    return dataclasses.replace(
        space, backbone=dataclasses.replace(space.backbone, weights=str(path), weights_sha256=sha)
    )


def test_a_gc_model_takes_the_baselines_tensors_and_starts_as_the_baseline(tmp_path):
    space = load_space(SMOKE)
    path, base = baseline_file(tmp_path, space)
    torch.manual_seed(0)  # another seed than the file's: without the load the backbones would differ
    model = build_model(gc=PAPER_ADD, **space.backbone.build_kwargs())
    weights.load_backbone(model, path)
    own = model.state_dict()
    for key, tensor in torch.load(path, weights_only=True).items():
        assert torch.equal(own[key], tensor), key
    assert gc_blocks(model)  # the GC blocks are there, as built
    x = torch.randn(4, 1, 28, 28)
    base.eval(), model.eval()
    # add fusion with a zero-initialised last conv: the fine-tuning starts from the baseline's function
    assert torch.allclose(model(x), base(x), atol=1e-6)


def test_a_training_fine_tunes_from_the_file(tmp_path):
    from gcsearch.nn.train import train

    space = load_space(SMOKE)
    path, _ = baseline_file(tmp_path, space)
    ft = dataclasses.replace(with_weights(space, path), train=dataclasses.replace(space.train, epochs=1, lr=1e-9))
    ckpt = tmp_path / "ckpt.pt"
    train(PAPER_ADD, ft, checkpoint=ckpt)
    trained = torch.load(ckpt, weights_only=True)["model"]
    # at a vanishing learning rate the backbone's weights stay the file's
    assert torch.allclose(trained["conv1.weight"], torch.load(path, weights_only=True)["conv1.weight"], atol=1e-6)


def test_a_file_of_another_backbone_is_refused_naming_the_first_mismatched_key(tmp_path):
    space = load_space(SMOKE)
    wide = dataclasses.replace(space, backbone=dataclasses.replace(space.backbone, width=16))
    path, _ = baseline_file(tmp_path, wide)
    with pytest.raises(ConfigError, match=r"'conv1.weight' is \(16, 1, 3, 3\) in the file and \(8, 1, 3, 3\)"):
        weights.check(with_weights(space, path))


def test_a_file_missing_a_tensor_is_refused(tmp_path):
    space = load_space(SMOKE)
    path, model = baseline_file(tmp_path, space)
    state = model.state_dict()
    del state["bn1.running_mean"]
    torch.save(state, path)
    with pytest.raises(ConfigError, match=r"'bn1\.running_mean' is missing"):
        weights.check(with_weights(space, path))


def test_bad_weights_give_one_line_and_exit_2(tmp_path, capsys):
    space_file = tmp_path / "ft.yaml"
    wide = dataclasses.replace(load_space(SMOKE), backbone=dataclasses.replace(load_space(SMOKE).backbone, width=16))
    path, _ = baseline_file(tmp_path, wide)
    text = SMOKE.read_text().replace("  width: 8\n", f"  width: 8\n  weights: {path}\n")
    space_file.write_text(text)
    assert main(["validate", str(space_file)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "backbone.weights" in err and str(path) in err and "conv1.weight" in err


def test_a_resume_with_other_weights_is_refused(tmp_path):
    space = load_space(SMOKE)
    first, _ = baseline_file(tmp_path, space, seed=1, name="a.pt")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    rundir.save_space(run_dir, pretrain.resolve(with_weights(space, first)))
    (run_dir / "optuna.log").write_text("")
    # the same file again: accepted
    rundir.check_same_recipe(run_dir, pretrain.resolve(with_weights(space, first)))
    other, _ = baseline_file(tmp_path, space, seed=2, name="b.pt")
    with pytest.raises(ConfigError, match="weights_sha256"):
        rundir.check_same_recipe(run_dir, pretrain.resolve(with_weights(space, other)))
    # the run's own space.yaml pins the hash: its file replaced under it is refused too
    torch.save(torch.load(other, weights_only=True), first)
    with pytest.raises(ConfigError, match="must match the weights the run started from"):
        pretrain.resolve(rundir.load_run_space(run_dir))


def test_pretrain_makes_the_file_once_and_the_search_reuses_it(tmp_path):
    space = load_space(SMOKE)
    pre = PretrainConfig(epochs=1)
    space = dataclasses.replace(
        space, backbone=dataclasses.replace(space.backbone, pretrain=pre), output_dir=str(tmp_path / "runs")
    )
    resolved = pretrain.resolve(space)
    made = os.stat(resolved.backbone.weights).st_mtime_ns
    assert resolved.backbone.weights_sha256 == weights.sha256_of(Path(resolved.backbone.weights))
    again = pretrain.resolve(space)
    assert again.backbone.weights == resolved.backbone.weights
    assert os.stat(again.backbone.weights).st_mtime_ns == made  # cached by recipe, not trained again
    # a run's resolved space (weights, pin and pretrain together) reads back through the loader
    round_trip = parse_space(rundir.space_to_dict(resolved), "space.yaml")
    assert round_trip.backbone == resolved.backbone


def test_weights_and_pretrain_together_are_refused_in_a_users_file(tmp_path):
    raw = {"backbone": {"weights": "x.pt", "pretrain": {"epochs": 1}}}
    with pytest.raises(ConfigError, match="pretrain"):
        parse_space(raw, "my.yaml")
