import copy
import pathlib

import optuna
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from yaml_paths import yaml_paths

from gcsearch import ArchConfig, ConfigError, GcsearchError
from gcsearch.cli import main
from gcsearch.space import space_to_dict
from gcsearch.spacefile import load_space, parse_space

ROOT = pathlib.Path(__file__).resolve().parent.parent
SPACES = sorted((ROOT / "search_spaces").glob("*.yaml"))
BAD = sorted((ROOT / "tests" / "bad_spaces").glob("*.yaml"))


@pytest.fixture(autouse=True)
def _at_repo_root(monkeypatch):
    # Error messages name files as the user typed them: relative to where gcsearch runs.
    monkeypatch.chdir(ROOT)


@pytest.mark.parametrize("path", SPACES, ids=lambda p: p.name)
def test_shipped_spaces_validate(path):
    space = load_space(path)
    assert space.grid() and space.search.trials >= 1


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.stem)
def test_each_mistake_gets_its_one_line_error(path, capsys):
    rel = path.relative_to(ROOT).as_posix()
    expected = path.read_text().splitlines()[0].removeprefix("# expect: ")
    with pytest.raises(ConfigError) as err:
        load_space(rel)
    assert expected in str(err.value)
    # The message names the file it came from.
    assert rel in str(err.value)
    # Through the CLI: exactly one line on stderr, exit 2, no traceback.
    assert main(["validate", rel]) == 2
    out = capsys.readouterr()
    assert out.err.count("\n") == 1 and "Traceback" not in out.err and out.out == ""


def test_missing_file():
    with pytest.raises(ConfigError, match=r"`path` must name an existing space file, but got 'nope.yaml'"):
        load_space("nope.yaml")


def test_grid_sizes():
    # gc.yaml: 2 pools x 3 fusions x 3 ratios x 2 norms x 3 positions x 4 GC stage sets + 1 baseline.
    # 4 stage sets x 2 pools x 3 ratios x 2 norms x 3 positions x (add, mul and both with 2 gate starts each), + 1
    assert len(load_space("search_spaces/gc.yaml").grid()) == 4 * 2 * 3 * 2 * 3 * (1 + 2 + 2) + 1
    # The paper's full space: every subset of c2..c5, 4 ratios.
    assert len(load_space("search_spaces/resnet50_imagenet.yaml").grid()) == 2 * 3 * 4 * 2 * 3 * 15 + 1


@pytest.mark.parametrize("name", ["gc", "smoke"])
def test_fixed_trial_reproduces_every_grid_point(name):
    space = load_space(f"search_spaces/{name}.yaml")
    grid = [a for a in space.grid() if not a.is_baseline]
    rebuilt = [space.suggest(optuna.trial.FixedTrial(space.params_of(arch))) for arch in grid]
    assert rebuilt == grid
    assert len(set(grid)) == len(grid)


def test_the_baseline_is_no_category_of_the_sampler():
    space = load_space("search_spaces/smoke.yaml")
    # The baseline has no parameters: it is trained as a reference trial, never drawn.
    assert space.params_of(ArchConfig()) == {}
    assert set(space.params_of(space.grid()[0])) == {"stages", "pool", "fusion"}
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    drawn = [space.suggest(study.ask()) for _ in range(100)]
    assert not any(a.is_baseline for a in drawn) and ArchConfig() in space.grid()


def test_study_samples_only_valid_architectures():
    space = load_space("search_spaces/gc.yaml")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    grid = set(space.grid())
    for _ in range(30):
        trial = study.ask()
        assert space.suggest(trial) in grid
        study.tell(trial, 0.0)


def test_arch_config_round_trips_through_plain_dict():
    for arch in load_space("search_spaces/gc.yaml").grid():
        assert ArchConfig.from_dict(yaml.safe_load(yaml.safe_dump(arch.to_dict()))) == arch


@pytest.mark.parametrize("path", SPACES, ids=lambda p: p.name)
def test_resolved_space_loads_back_identically(path):
    space = load_space(path)
    text = yaml.safe_dump(space_to_dict(space))
    assert parse_space(yaml.safe_load(text), space.path) == space


def test_per_stage_on_off_and_flat_stage_list():
    per_stage = parse_space({"space": {"stages": {"c4": [True, False], "c5": [True, False]}}})
    assert set(per_stage.axes.stages) == {("c4", "c5"), ("c4",), ("c5",), ()}
    # A flat list is one stage set, not a list of single-stage sets.
    flat = parse_space({"space": {"stages": ["c5", "c3"]}})
    assert flat.axes.stages == (("c3", "c5"),)


def test_ratio_strings_and_numbers_mean_the_same():
    space = parse_space({"space": {"ratio": ["1/4", 0.25, 0.125]}})
    assert space.axes.ratio == (0.25, 0.125)


def test_scientific_notation_written_without_dot_is_a_number():
    # PyYAML reads `5e-4` as a string (YAML 1.1); users write it anyway.
    space = parse_space(yaml.safe_load("train: {weight_decay: 5e-4}"))
    assert space.train.weight_decay == 5e-4


def test_validate_prints_what_the_file_means(capsys):
    assert main(["validate", "search_spaces/gc.yaml"]) == 0
    out = capsys.readouterr().out
    for needle in (
        "721 distinct architectures",
        "paper default",
        "sampler tpe",
        "pruner pareto",
        "farcue",
        "min               10.870 M MACs       129,858 params   baseline (no GC)",
        "max               11.149 M MACs       219,062 params   c2,c3,c4,c5 att+both r=1/4 ln after_1x1",
        "18 trials = 6 references (baseline, paper default) + 3 random start-up + 9 guided by tpe",
        "warning: with LayerNorm",
    ):
        assert needle in out


# --------------------------------------------------------------------------- property test

VALID = yaml.safe_load((ROOT / "search_spaces" / "gc.yaml").read_text())
JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.floats(allow_nan=True),
    st.text(max_size=6),
    st.lists(st.integers(-1, 2), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.sampled_from(["c3", "att", "1/0", "1/16", "none", "tpe", "after_3x3", [], [[]], [["c9"]]]),
)


ALL_PATHS = [p for p in yaml_paths(VALID) if p]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(ALL_PATHS), JUNK, st.booleans()), min_size=1, max_size=3))
def test_random_mutations_load_or_raise_the_projects_error(mutations):
    data = copy.deepcopy(VALID)
    for path, value, delete in mutations:
        node = data
        try:
            for key in path[:-1]:
                node = node[key]
            if delete and isinstance(node, dict):
                node.pop(path[-1], None)
            else:
                node[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed this path
    try:
        space = parse_space(data, "mutated.yaml")
    except GcsearchError as err:
        assert "\n" not in str(err)
    else:
        assert space.grid()


@pytest.mark.parametrize("got", [1.5, None, "x"])
def test_config_errors_survive_copy_and_pickle(got):
    # Ray copies and pickles a trial's exception; the message must come through whole.
    import copy
    import pickle

    from gcsearch.errors import NOTHING

    for value in (got, NOTHING):
        err = ConfigError("ratio", "must be in (0, 1]", value, "f.yaml: space.ratio[0]")
        assert str(copy.copy(err)) == str(pickle.loads(pickle.dumps(err))) == str(err)
    assert "but got" not in str(pickle.loads(pickle.dumps(ConfigError("k", "rule"))))
