"""A recording's run directory as committed data, while it records or after: curves.csv, the per-image outcomes and
the environments (``gcsearch.bench.record.export``), under experiments/data/<name>.csv (.outcomes.npz, .env.json).

    python experiments/export_recording.py RUN_DIR NAME      # e.g. runs/cue-shapes-record curves-cue-shapes
"""

from __future__ import annotations

import sys
from pathlib import Path

from gcsearch.bench import curves, record

ROOT = Path(__file__).resolve().parent.parent

if __name__ == "__main__":
    run_dir, name = Path(sys.argv[1]), sys.argv[2]
    out = record.export(run_dir, ROOT / "experiments" / "data" / f"{name}.csv")
    c = curves.Curves.of(curves.read(out))
    print(f"wrote {out}: {len(c.archs)} configurations, {len(c.runs)} trainings of {c.epochs} epochs")
