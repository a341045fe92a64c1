import os
import socket

import pytest

from gcsearch import files


def test_the_temporary_name_is_unique_to_this_process_and_host(tmp_path):
    tmp = files.temporary(tmp_path / "0.pt")
    assert tmp.parent == tmp_path and str(os.getpid()) in tmp.name and socket.gethostname() in tmp.name


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "trials.csv"
    files.write_atomic(target, "old\n")

    def broken(tmp):
        tmp.write_text("half")
        raise KeyboardInterrupt  # a kill mid-write

    with pytest.raises(KeyboardInterrupt):
        files.replace_with(target, broken)
    assert target.read_text() == "old\n" and sorted(p.name for p in tmp_path.iterdir()) == ["trials.csv"]


def test_a_figure_is_saved_in_the_format_of_its_suffix(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, _ = plt.subplots()
    files.save_figure(fig, tmp_path / "front.png")
    plt.close(fig)
    assert (tmp_path / "front.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["front.png"]
