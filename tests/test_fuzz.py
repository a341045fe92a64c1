"""Bad input beyond the space file: random CLI arguments and mutated best.yaml files either work or
give the project's one-line error with exit code 2; never a traceback, never a partly written output."""

import copy
import pathlib

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from yaml_paths import yaml_paths

from gcsearch import GcsearchError
from gcsearch.analysis.export import load_export
from gcsearch.cli import main

ROOT = pathlib.Path(__file__).resolve().parent.parent
TRIALS = [
    ({"stages": ["c3", "c4"], "pool": "att", "fusion": "add", "ratio": 0.25}, "COMPLETE", 0.90),
    ({"stages": []}, "COMPLETE", 0.80),
]
# Commands that inspect or validate (the fuzz must not start searches or trainings).
COMMANDS = ["validate", "macs", "pareto", "show", "importance", "export"]
TOKENS = st.one_of(
    st.sampled_from(["--pick", "knee", "max-accuracy", "--trial", "-1", "0", "99", "--max-macs", "nan", "1e9",
                     "--out", "--force", "--weights", "--gc", "ratio=0", "stages=c9", "pool=att", "--input",
                     "1,1,28,28", "proxy_resnet", "resnet18", "RUN", "SPACE", "OUT", "--tolerance", "--"]),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"), max_size=8),
)  # fmt: skip


def _check_outcome(code, err, out_file, before):
    assert code in (0, 2)
    assert "Traceback" not in err
    if code == 2:
        assert err.count("\n") == 1 and "error:" in err
    # The export target is either untouched or a complete, loadable export.
    if out_file.exists() and out_file.read_bytes() != before:
        assert "arch" in yaml.safe_load(out_file.read_text())


@pytest.fixture(scope="module")
def fuzz_run(tmp_path_factory):
    import optuna

    from gcsearch import ArchConfig
    from gcsearch.nn.flops import SpaceCoster
    from gcsearch.search import rundir
    from gcsearch.spacefile import load_space

    run_dir = tmp_path_factory.mktemp("fuzz") / "run"
    run_dir.mkdir()
    space = load_space(ROOT / "search_spaces" / "smoke.yaml")
    rundir.save_space(run_dir, space)
    study = optuna.create_study(
        study_name="gcsearch", storage=rundir.storage(run_dir), directions=["maximize", "minimize"]
    )
    coster = SpaceCoster(space.backbone)
    for number, (arch_dict, _, acc) in enumerate(TRIALS):
        arch = ArchConfig.from_dict(arch_dict)
        macs, params = coster(arch)
        study.enqueue_trial(space.params_of(arch))
        t = study.ask()
        if not arch.is_baseline:
            space.suggest(t)
        for key, value in (("arch", arch.to_dict()), ("macs", macs), ("params", params), ("twin", number),
                           ("epochs", 3)):  # fmt: skip
            t.set_user_attr(key, value)
        study.tell(t, [acc, macs])
    return run_dir


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(command=st.sampled_from(COMMANDS), tokens=st.lists(TOKENS, max_size=6))
def test_random_cli_arguments(fuzz_run, tmp_path, monkeypatch, capsys, command, tokens):
    monkeypatch.chdir(tmp_path)  # `export` without --out writes best.yaml here, never into the checkout
    out_file = tmp_path / "best.yaml"
    out_file.write_text("precious\n")
    before = out_file.read_bytes()
    subst = {"RUN": str(fuzz_run), "SPACE": str(ROOT / "search_spaces" / "smoke.yaml"), "OUT": str(out_file)}
    argv = [command, *(subst.get(t, t) for t in tokens)]
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse: --help exits 0, usage errors 2
        code = exit_.code
    _check_outcome(code, capsys.readouterr().err, out_file, before)


@pytest.fixture(scope="module")
def valid_export(fuzz_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "best.yaml"
    assert main(["export", str(fuzz_run), "--trial", "0", "--out", str(out)]) == 0
    return yaml.safe_load(out.read_text())


JUNK = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 5), st.floats(allow_nan=True), st.text(max_size=6),
    st.lists(st.integers(-1, 3), max_size=3), st.sampled_from(["c9", "att", "after_3x3", "1/0", [], {}, "x.pt"]),
)  # fmt: skip


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_mutated_exports_load_or_raise_the_projects_error(valid_export, tmp_path, data):
    doc = copy.deepcopy(valid_export)
    paths = [p for p in yaml_paths(doc) if p]
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(paths))
        node = doc
        try:
            for key in path[:-1]:
                node = node[key]
            node[path[-1]] = data.draw(JUNK)
        except (KeyError, IndexError, TypeError):
            continue
    f = tmp_path / "mutated.yaml"
    f.write_text(yaml.safe_dump(doc))
    try:
        exp = load_export(f)
    except GcsearchError as err:
        assert "\n" not in str(err)
    else:
        # What loads is a point of the export's own backbone: every GC stage exists in it.
        assert set(exp.arch.stages) <= set(exp.space.backbone.stages)
