import pathlib

import optuna
import pytest
import yaml

from gcsearch.nn.flops import SpaceCoster
from gcsearch.search import rundir
from gcsearch.spacefile import load_space
from gcsearch.testing import image_folder

ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.fixture
def make_run(tmp_path):
    """A run directory with a real Optuna journal holding hand-made trials (no Ray, no training):
    trials are (arch dict, state, accuracy)."""

    def make(trials, name="run"):
        run_dir = tmp_path / name
        run_dir.mkdir()
        space = load_space(ROOT / "search_spaces" / "smoke.yaml")
        rundir.save_space(run_dir, space)
        coster = SpaceCoster(space.backbone)
        study = optuna.create_study(
            study_name=rundir.MAIN_STUDY, storage=rundir.storage(run_dir), directions=["maximize", "minimize"]
        )
        from gcsearch import ArchConfig

        for number, (arch_dict, state, acc) in enumerate(trials):
            arch = ArchConfig.from_dict(arch_dict)
            macs, params = coster(arch)
            # Sampled define-by-run like a real search, so the trial carries Optuna parameters.
            if arch.is_baseline:
                t = study.ask()  # the baseline has no parameters to draw
            else:
                study.enqueue_trial(space.params_of(arch))
                t = study.ask()
                assert space.suggest(t) == arch
            for key, value in (("arch", arch.to_dict()), ("macs", macs), ("params", params), ("twin", number),
                               ("epochs", 3 if state == "COMPLETE" else 1), ("accuracy", acc)):  # fmt: skip
                t.set_user_attr(key, value)
            if state == "COMPLETE":
                study.tell(t, [acc, macs])
            elif state == "PRUNED":
                study.tell(t, state=optuna.trial.TrialState.PRUNED)
        return run_dir

    return make


def token_authentication(monkeypatch) -> None:
    """Run an in-process Ray cluster (ray.cluster_utils) as the README runs one: token authentication, one
    token for every node. Ray caches its auth mode when first imported; ``ray start`` reads it from a
    fresh environment, but an in-process cluster needs the cache refreshed (Ray's own ray.init does the
    same when it turns tokens on)."""
    import os
    import secrets

    from ray._raylet import AuthenticationTokenLoader, Config

    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    # An earlier local search of this process left its token; Ray caches tokens too, so keep that one.
    monkeypatch.setenv("RAY_AUTH_TOKEN", os.environ.get("RAY_AUTH_TOKEN") or secrets.token_hex(32))
    Config.initialize("")
    AuthenticationTokenLoader.instance().reset_cache()


def folder_space(tmp_path, root, name="folder.yaml", **data):
    space = {
        "space": {"pool": ["att", "avg"], "fusion": ["add"], "ratio": ["1/4"], "norm": ["layernorm"],
                  "stages": [["c3", "c4"], []], "position": ["after_1x1"]},
        "backbone": {"name": "proxy_resnet", "block": "basic", "width": 8, "depth": [1, 1, 1],
                     "input_size": [3, 64, 64], "num_classes": 3},
        "data": {"dataset": "imagefolder", "root": str(root), "val_size": 20,
                 "augment": {"flip": True, "crop_padding": 4, "resized_crop": 0.5}, **data},
        "train": {"epochs": 2, "batch_size": 16, "lr": 0.1},
        "search": {"trials": 2, "sampler": "random", "pruner": "none", "resources": {"cpu": 1}},
        "output": {"dir": str(tmp_path / "runs")},
    }  # fmt: skip
    path = tmp_path / name
    path.write_text(yaml.safe_dump(space))
    return path


@pytest.fixture
def folder(tmp_path):
    """A generated image folder: 3 classes of JPEGs and PNGs (odd modes too), train/ and val/."""
    return image_folder(tmp_path / "images")
