import pathlib

import optuna
import pytest

from gcsearch.nn.flops import SpaceCoster
from gcsearch.search import rundir
from gcsearch.spacefile import load_space

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
