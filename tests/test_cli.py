import subprocess
import sys
import time

import pytest

from gcsearch.cli import main


def test_help_is_fast_and_imports_no_torch():
    start = time.perf_counter()
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from gcsearch.cli import main; "
            "import contextlib, io\n"
            "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
            "    main(['--help'])\n"
            "print('torch' in sys.modules, 'ray' in sys.modules)",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "False False"
    assert time.perf_counter() - start < 5  # generous for a loaded CI box; about 0.1 s here


def test_macs_command(capsys):
    assert main(["macs", "resnet50", "--gc", "stages=c3,c4,c5", "ratio=1/16"]) == 0
    out = capsys.readouterr().out
    assert "13 GC blocks" in out and "2,521,741" in out and "8,712,192" in out


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["macs", "resnet50", "--gc", "pool=max"], "`pool` must be one of ['att', 'avg']"),
        (["macs", "resnet50", "--gc", "ratio=0"], "`ratio` must be in (0, 1]"),
        (["macs", "resnet50", "--gc", "stages=c7"], "`stages` must hold stages from"),
        (["macs", "resnet18", "--gc", "position=after_3x3"], "`position` must be one of"),
        (["macs", "alexnet"], "`backbone` must be one of"),
        (["macs", "resnet50", "--input", "1,3,224"], "`--input` must be N,C,H,W"),
        (["macs", "resnet50", "--gc", "ratio"], "`--gc` takes key=value pairs"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv, needle, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1 and "Traceback" not in err
