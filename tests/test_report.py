import struct

from gcsearch.cli import main

TRIALS = [
    ({"stages": ["c3", "c4"], "pool": "att", "fusion": "add", "ratio": 0.25}, "COMPLETE", 0.90),
    ({"stages": ["c4"], "pool": "avg", "fusion": "mul", "ratio": 0.25}, "COMPLETE", 0.85),
    ({"stages": []}, "COMPLETE", 0.80),
    ({"stages": ["c4"], "pool": "att", "fusion": "mul", "ratio": 0.25}, "PRUNED", 0.30),
    ({"stages": ["c3", "c4"], "pool": "avg", "fusion": "add", "ratio": 0.25}, "COMPLETE", 0.87),
]


def png_size(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"  # the PNG signature
    return struct.unpack(">II", data[16:24])  # IHDR width, height


def test_pareto_writes_a_table_and_a_valid_png(make_run, capsys):
    run = make_run(TRIALS)
    assert main(["pareto", str(run)]) == 0
    out = capsys.readouterr().out
    assert "baseline (no GC)" in out and "c3,c4 att+add" in out
    width, height = png_size(run / "pareto.png")
    assert 600 <= width <= 2000 and 400 <= height <= 1500
    assert (run / "pareto.png").stat().st_size > 10_000  # points, lines and labels, not an empty canvas


def test_show_summarises_states_and_pruning(make_run, capsys):
    run = make_run(TRIALS)
    assert main(["show", str(run)]) == 0
    out = capsys.readouterr().out
    assert "(4 complete, 1 pruned)" in out and "best accuracy: 0.9000 (trial 0" in out
    # 4 complete trials ran 3 epochs, 1 pruned trial ran 1: 13 of 15 trial-epochs.
    assert "13 of 15 trial-epochs run by the trials that ended: pruning saved 13%" in out


def test_importance_table_and_chart(make_run, capsys):
    # Every configuration of smoke.yaml's grid (9, fewer than 10): the ranking covers the whole grid.
    grid = [({"stages": st, "pool": p, "fusion": f, "ratio": 0.25}, "COMPLETE", 0.80 + 0.05 * (p == "att") + i / 1000)
            for i, (st, p, f) in enumerate((st, p, f) for st in (["c3", "c4"], ["c4"]) for p in ("att", "avg")
                                           for f in ("add", "mul"))]  # fmt: skip
    run = make_run([*grid, ({"stages": []}, "COMPLETE", 0.8)])
    assert main(["importance", str(run)]) == 0
    out = capsys.readouterr().out
    assert "pool" in out
    png_size(run / "importance.png")


def test_importance_refuses_to_rank_a_few_configurations(make_run, capsys):
    run = make_run(TRIALS)  # 4 COMPLETE configurations of a grid of 9
    assert main(["importance", str(run)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "at least 9 COMPLETE configurations" in err and "got 4" in err
    assert not (run / "importance.png").exists()
