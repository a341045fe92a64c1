import dataclasses
import math

import numpy as np
import pytest
import torch

from gcsearch import ArchConfig, TrainingDiverged
from gcsearch.nn.train import lr_factor, train
from gcsearch.spacefile import load_space


@pytest.fixture(scope="module")
def smoke():
    return load_space("search_spaces/smoke.yaml")


def with_train(space, **kwargs):
    return dataclasses.replace(space, train=dataclasses.replace(space.train, **kwargs))


def test_synthetic_data_is_learnable(smoke):
    reports = []
    metrics = train(ArchConfig.from_dict({"stages": ["c4"]}), smoke, reports.append)
    # Chance is 10%; a tiny model learns the class templates within 3 epochs.
    assert metrics.accuracy > 0.6
    assert [r.epoch for r in reports] == [0, 1, 2]
    assert reports[-1].images_per_s > 0 and reports[-1].loss > 0
    assert reports[-1].seconds >= reports[0].seconds > 0


def test_resumed_training_reaches_the_same_weights(smoke, tmp_path):
    arch = ArchConfig.from_dict({"stages": ["c3", "c4"], "pool": "att"})
    full = tmp_path / "full.pt"
    train(arch, smoke, checkpoint=full)

    class Killed(Exception):
        pass

    first = []

    def die_after_first_epoch(metrics):
        first.append(metrics)
        if metrics.epoch == 0:
            raise Killed

    part = tmp_path / "part.pt"
    with pytest.raises(Killed):
        train(arch, smoke, die_after_first_epoch, checkpoint=part)
    assert torch.load(part, weights_only=True)["epoch"] == 0
    resumed_reports = []
    train(arch, smoke, resumed_reports.append, checkpoint=part)
    # The finished epoch is said again first, marked replayed, as it was (a kill may have eaten its report).
    replayed = [r for r in resumed_reports if r.replayed]
    assert [r.epoch for r in replayed] == [0] and replayed[0].accuracy == first[0].accuracy
    # Only the remaining epochs ran, and the weights match the uninterrupted run bit for bit.
    fresh = [r for r in resumed_reports if not r.replayed]
    assert [r.epoch for r in fresh] == [1, 2]
    assert all(r.start_epoch == 1 for r in fresh)
    # Resuming a checkpoint that finished every epoch reports the final epoch again, same accuracy.
    again = []
    final = train(arch, smoke, again.append, checkpoint=part)
    assert [r.epoch for r in again if not r.replayed] == [2]
    assert final.accuracy == fresh[-1].accuracy
    a = torch.load(full, weights_only=True)["model"]
    b = torch.load(part, weights_only=True)["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_same_seed_same_result_other_seed_differs(smoke):
    arch = ArchConfig()
    one = train(arch, with_train(smoke, epochs=1))
    two = train(arch, with_train(smoke, epochs=1))
    other = train(arch, with_train(smoke, epochs=1, seed=1))
    assert one.loss == two.loss and one.loss != other.loss


def test_non_finite_loss_raises(smoke):
    with pytest.raises(TrainingDiverged, match="training loss became"):
        train(ArchConfig(), with_train(smoke, lr=1e12, schedule="constant", epochs=2))


def test_test_split_only_on_request(smoke):
    assert train(ArchConfig(), smoke).test_accuracy is None
    metrics = train(ArchConfig(), smoke, test=True)
    # The test split shares the classes of the training data: accuracy tracks validation's.
    assert abs(metrics.test_accuracy - metrics.accuracy) < 0.15


@pytest.mark.parametrize("schedule", ["onecycle", "cosine", "constant"])
def test_lr_schedules(schedule):
    values = [lr_factor(schedule, s, 100) for s in range(101)]
    assert max(values) == pytest.approx(1.0) and min(values) >= 0
    if schedule != "constant":
        assert values[-1] == pytest.approx(0, abs=1e-9)
    if schedule == "onecycle":
        # Warm-up: the peak is reached at 20% of the steps.
        assert values.index(max(values)) == 20 and math.isclose(values[10], 0.5)


def test_ema_is_what_is_scored_and_raw_too_evaluates_both(tmp_path):
    space = load_space("search_spaces/smoke.yaml")
    space = dataclasses.replace(space, train=dataclasses.replace(space.train, ema=0.9, epochs=2))
    arch = ArchConfig()
    only = train(arch, space, seed=1)
    both = train(arch, space, seed=1, raw_too=True)
    # The EMA weights are scored: accuracy is theirs unless the raw weights are asked for too.
    assert only.accuracy == only.ema_accuracy == both.ema_accuracy
    assert both.accuracy != both.ema_accuracy or both.loss != both.ema_loss
    plain = train(arch, dataclasses.replace(space, train=dataclasses.replace(space.train, ema=0.0)), seed=1)
    # The EMA does not change training: the raw weights end where a run without it ends.
    assert plain.ema_accuracy is None and plain.loss == pytest.approx(both.loss, abs=1e-6)


def test_outcomes_are_the_scored_weights_per_image_predictions(smoke, tmp_path):
    out = tmp_path / "outcomes.npz"
    metrics = train(ArchConfig.from_dict({"stages": ["c4"]}), smoke, outcomes=out, test=True)
    with np.load(out) as z:
        val, val_labels, test, test_labels = z["val"], z["val_labels"], z["test"], z["test_labels"]
    # The predictions the reported accuracies were counted from: the same share right, split by split.
    assert (val == val_labels).mean() == pytest.approx(metrics.accuracy, abs=1e-9)
    assert (test == test_labels).mean() == pytest.approx(metrics.test_accuracy, abs=1e-9)
    assert val.dtype == np.int16 and len(val) == len(val_labels)
