"""Start-up time: `import studio`, and the window shown after `studio` starts.

    python -m bench.startup [--runs 5]

"Cold" here means a fresh process each run (the OS file cache is warm after the first).
The app writes the moment its main window is first shown to the file named by
``STUDIO_BENCH_SHOWN_FILE`` and quits; we time from just before ``Popen``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def time_import(runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import studio"], check=True)
        out.append(time.perf_counter() - t0)
    return out


def time_window(runs: int, home: Path) -> list[float]:
    out = []
    studio = str(Path(sys.executable).with_name("studio"))
    for i in range(runs):
        shown = home / f"shown-{i}.txt"
        env = {**os.environ, "STUDIO_HOME": str(home), "STUDIO_BENCH_SHOWN_FILE": str(shown)}
        env.setdefault("QT_QPA_PLATFORM", "offscreen")
        t0 = time.time()
        subprocess.run([studio], env=env, check=True, timeout=120)
        out.append(float(shown.read_text()) - t0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        window = time_window(args.runs, Path(tmp))
    imports = time_import(args.runs)
    res = {
        "window_shown_s_median": statistics.median(window),
        "window_shown_s_all": [round(x, 3) for x in window],
        "import_studio_s_median": statistics.median(imports),
        "qpa": os.environ.get("QT_QPA_PLATFORM", "offscreen"),
    }
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
