"""optuna-dashboard on a real run, checked through its API and photographed by a headless Chromium.

Starts `gcsearch dashboard RUN` on a free port of 127.0.0.1, reads what its web page reads (the studies,
their objective names, trial counts and learning curves), then loads the main study's page and the
accuracy study's page in Debian's Chromium (`apt-get install chromium`) and saves a screenshot of each.

    python experiments/dashboard_screenshot.py runs/NAME [--out dashboard.png]

Writes the screenshots (OUT and OUT with -curves before the suffix) and experiments/results/dashboard.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from gcsearch import rundir

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as r:
        return dict(json.loads(r.read()))


def screenshot(url: str, out: Path) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("no chromium on PATH: apt-get install chromium")
    # virtual time lets the page's scripts fetch and draw before the picture is taken
    subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    "--window-size=1400,1800", "--virtual-time-budget=20000", f"--screenshot={out}", url],
                   check=True, capture_output=True, timeout=120)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run", type=Path)
    parser.add_argument("--out", type=Path, default=ROOT / "dashboard.png")
    args = parser.parse_args()
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "gcsearch", "dashboard", str(args.run), "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline, studies = time.monotonic() + 60, None
        while studies is None and time.monotonic() < deadline:
            try:
                studies = get(f"{base}/api/studies")["study_summaries"]
            except OSError:
                time.sleep(0.5)
        if studies is None:
            raise SystemExit("the dashboard never answered")
        ids = {s["study_name"]: s["study_id"] for s in studies}
        main_study = get(f"{base}/api/studies/{ids[rundir.MAIN_STUDY]}")
        twin = get(f"{base}/api/studies/{ids[rundir.TWIN_STUDY]}")
        curves = sum(bool(t["intermediate_values"]) for t in twin["trials"])
        pages = {args.out: f"{base}/dashboard/studies/{ids[rundir.MAIN_STUDY]}",
                 args.out.with_name(f"{args.out.stem}-curves{args.out.suffix}"):
                 f"{base}/dashboard/studies/{ids[rundir.TWIN_STUDY]}"}  # fmt: skip
        for out, url in pages.items():
            screenshot(url, out)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    lines = [
        "# optuna-dashboard on a run",
        "",
        f"Command: `python {' '.join(sys.argv)}`",
        "",
        f"- studies served: {sorted(ids)}",
        f"- main study objective names: {main_study['objective_names']}, trials: {len(main_study['trials'])}",
        f"- accuracy study: trials {len(twin['trials'])}, with a learning curve {curves}, "
        f"has_intermediate_values {twin['has_intermediate_values']}",
        "- screenshots: " + ", ".join(f"`{p.relative_to(ROOT) if p.is_relative_to(ROOT) else p}`" for p in pages),
    ]
    out_md = ROOT / "experiments" / "results" / "dashboard.md"
    out_md.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
