"""Peak memory of the GUI process and of the engine host.

    python -m bench.memory [--music DIR]

Opens the real main window offscreen on a fresh data home, indexes DIR (default: the
demo library, built by the host), runs three searches and selects tracks, then reports the
peak resident set size (VmHWM) of this GUI process and of the engine-host process.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path


def vm_hwm_mb(pid: int | str = "self") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--music", help="folder to index (default: build the 30-piece demo library)")
    args = ap.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QEventLoop, QTimer

    from engines.core.home import DataHome
    from studio.app import create_window, ensure_app
    from studio.state import GuiState

    app = ensure_app()
    with tempfile.TemporaryDirectory() as tmp:
        home = DataHome(Path(tmp) / "home")
        GuiState(home).set("demo_started", True)  # we start the indexing job ourselves
        window = create_window(home)
        window.show()
        window.start()
        client = window.client

        def run(command: str, params: dict) -> object:
            loop = QEventLoop()
            job = client.submit(command, params, title=command)
            out: dict[str, object] = {}
            job.finished.connect(lambda r: (out.setdefault("r", r), loop.quit()))
            job.failed.connect(lambda e: (out.setdefault("e", e), loop.quit()))
            QTimer.singleShot(900_000, loop.quit)
            loop.exec()
            if "e" in out:
                raise SystemExit(f"{command} failed: {out['e']}")
            return out.get("r")

        t0 = time.time()
        while not client.ready:  # the host starts in the background
            app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 100)
            if time.time() - t0 > 120:
                raise SystemExit("engine host did not start")
        if args.music:
            run("library.add", {"paths": [args.music]})
        else:
            run("library.demo", {})
        for text in ("calm piano", "fast energetic minor", "around 120 bpm strings"):
            run("library.search", {"text": text, "top": 20})
        for _ in range(20):
            app.processEvents()
        res = {
            "gui_peak_rss_mb": round(vm_hwm_mb(), 1),
            "host_peak_rss_mb": round(vm_hwm_mb(client.host_pid), 1),
            "tracks": args.music or "demo (30)",
            "date": time.strftime("%Y-%m-%d %H:%M"),
        }
        client.shutdown()
        window.close()
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
