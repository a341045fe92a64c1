import pytest

from gcsearch import ArchConfig
from gcsearch.bench import curves
from gcsearch.cli import main
from gcsearch.errors import ConfigError

GC = ArchConfig(("c4",), "att", "add", 1 / 4, "layernorm", "after_1x1")


def point(arch, seed, epoch, acc, recipe="r1"):
    return curves.CurvePoint(arch, seed, epoch, acc, 1 - acc, 1.0, 10.0 * epoch, 100, 10, recipe)


def test_round_trip(tmp_path):
    pts = [point(a, s, e, 0.5 + 0.1 * e + 0.01 * s) for a in (ArchConfig(), GC) for s in (0, 1) for e in (1, 2)]
    path = tmp_path / "c.csv"
    curves.write(path, pts)
    back = curves.read(path)
    for got, want in zip(sorted(back, key=curves.sort_key), sorted(pts, key=curves.sort_key), strict=True):
        assert (got.arch, got.seed, got.epoch, got.recipe) == (want.arch, want.seed, want.epoch, want.recipe)
        assert (got.accuracy, got.loss, got.seconds) == pytest.approx((want.accuracy, want.loss, want.seconds))
    c = curves.Curves.of(back)
    assert c.epochs == 2 and c.common_seeds() == [0, 1] and set(c.archs) == {ArchConfig(), GC}
    assert c.final_mean(GC) == pytest.approx(0.705)


def test_incomplete_curves_are_left_out_of_the_index():
    pts = [point(GC, 0, 1, 0.5), point(GC, 0, 2, 0.6), point(ArchConfig(), 0, 1, 0.4)]
    c = curves.Curves.of(pts)
    # The baseline's curve stopped at epoch 1 of 2: not a full-fidelity result.
    assert list(c.runs) == [(GC, 0)]


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("", "the file is empty"),
        ("stages,pool\n", "missing ['fusion'"),
        (",".join(curves.COLUMNS) + "\n", "at least one row"),
        (
            ",".join(curves.COLUMNS) + "\nc4,att,add,1/4,layernorm,after_1x1,,0,x,0.5,1,1,,,1,1,1,r\n",
            "`epoch` must be an integer",
        ),
        (",".join(curves.COLUMNS) + "\nc9,att,add,1/4,layernorm,after_1x1,,0,1,0.5,1,1,,,1,1,1,r\n", "`stages`"),
        (
            ",".join(curves.COLUMNS) + "\nnone,,,,,,,0,1,0.5,1,1,,,1,1,1,a\nnone,,,,,,,1,1,0.5,1,1,,,1,1,1,b\n",
            "one training recipe per file",
        ),
    ],
)
def test_bad_curves_files_raise_one_line(tmp_path, text, needle):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        curves.read(path)
    assert needle in str(err.value) and str(path) in str(err.value) and "\n" not in str(err.value)


def test_bad_curves_file_on_the_command_line_exits_2(tmp_path, capsys):
    path = tmp_path / "bad.csv"
    path.write_text("stages,pool\nnone,\n")
    assert main(["bench", "fidelity", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bad.csv" in err and "Traceback" not in err


def test_a_curves_file_with_a_gap_in_its_epochs_is_refused():
    with pytest.raises(ConfigError, match="without gaps"):
        curves.Curves.of([point(GC, 0, 1, 0.5), point(GC, 0, 3, 0.6)])
