"""Screenshots of every working view: ``python -m studio.screenshots OUTDIR``.

Opens the window (offscreen unless a display is set) on a temporary data home, adds a
small generated library (WAV tones written with the stdlib) through ``library.add`` —
or builds the demo library with ``--demo`` — selects a track and saves:

- ``library.png``   the library with the selected track's waveform
- ``palette.png``   the command palette open over the window
- ``settings.png``  the settings dialog
- ``jobs.png``      the jobs dock with a running job

``--plugin MODULE`` (repeatable) and ``--isolated`` pass through to the engine host,
e.g. to shoot against a stand-in library while the real one is not installed.
"""

from __future__ import annotations

import argparse
import array
import math
import os
import shutil
import sys
import tempfile
import time
import wave
from collections.abc import Callable
from pathlib import Path

TRACKS = [
    ("Night Drive", 110.0), ("Calm Piano Sketch", 220.0), ("Rain on Glass", 164.8), ("Festival Lights", 329.6),
    ("Slow Morning", 146.8), ("Chase Sequence", 392.0), ("Paper Boats", 261.6), ("Low Tide", 98.0),
    ("Neon Alley", 196.0), ("Hymn for Strings", 174.6), ("Desert Road", 123.5), ("Glass Bells", 523.3),
]


def write_tone(path: Path, freq: float, seconds: float, bpm: float, sr: int = 22050) -> None:
    """A short plucked-tone loop at ``bpm`` (real, decodable 16-bit WAV)."""
    beat = 60.0 / bpm
    n = int(seconds * sr)
    out = array.array("h")
    for i in range(n):
        t = i / sr
        tb = t % beat
        env = math.exp(-tb * 6.0)
        v = env * (math.sin(2 * math.pi * freq * t) + 0.4 * math.sin(2 * math.pi * freq * 1.5 * t))
        out.append(int(max(-1.0, min(1.0, 0.45 * v)) * 32767))
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes(out.tobytes())


def make_library(folder: Path) -> Path:
    for i, (title, freq) in enumerate(TRACKS):
        write_tone(folder / f"{title}.wav", freq, seconds=4.0 + (i % 5), bpm=70 + 9 * i)
    return folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m studio.screenshots", description=__doc__.splitlines()[0])
    parser.add_argument("outdir")
    parser.add_argument("--demo", action="store_true", help="build the demo library instead (about a minute)")
    parser.add_argument("--plugin", action="append", default=[], metavar="MODULE")
    parser.add_argument("--isolated", action="store_true")
    parser.add_argument("--theme", choices=("system", "dark", "light"), default="dark")
    ns = parser.parse_args(argv)
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("QT_LOGGING_RULES", "qt.multimedia.*=false;qt.qpa.*=false")

    from PySide6.QtCore import QCoreApplication, QEvent, QPoint
    from PySide6.QtGui import QColor, QPainter, QPixmap
    from PySide6.QtWidgets import QWidget

    from engines.core.home import DataHome, Settings
    from engines.core.plugins import default_registry, load_plugins
    from engines.core.registry import Registry
    from studio.app import create_window, ensure_app
    from studio.state import GuiState

    out = Path(ns.outdir)
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="cue-shots-"))
    app = ensure_app()
    try:
        home = DataHome(tmp / "home")
        home.save_settings(Settings(theme=ns.theme))
        if not ns.demo:
            GuiState(home).set("demo_started", True)  # we bring our own small library
        if ns.isolated or ns.plugin:
            registry = load_plugins(Registry(), extra_modules=tuple(ns.plugin), installed=not ns.isolated)
        else:
            registry = default_registry()
        if "library.list" not in registry:
            print("warning: no library engine installed; the library view will say so", file=sys.stderr)

        def wait_until(pred: Callable[[], bool], timeout: float, what: str) -> None:
            t0 = time.monotonic()
            while not pred():
                if time.monotonic() - t0 > timeout:
                    raise SystemExit(f"screenshots: timed out waiting for {what}")
                app.processEvents()
                time.sleep(0.02)

        def settle(seconds: float = 0.3) -> None:
            t0 = time.monotonic()
            while time.monotonic() - t0 < seconds:
                app.processEvents()
                time.sleep(0.02)

        window = create_window(home, registry=registry, plugins=tuple(ns.plugin), isolated=ns.isolated)
        window.resize(1320, 820)
        window.show()
        window.start()
        lib = window.library
        if "library.list" in registry:
            if ns.demo:
                wait_until(lambda: lib.demo_job is not None and lib.demo_job.done, 600, "the demo library")
            else:
                job = window.add_paths([str(make_library(tmp / "music"))])
                wait_until(lambda: job is not None and job.done, 300, "library.add")
                if job is not None and job.state != "done":
                    raise SystemExit(f"screenshots: library.add failed: {job.error_message}")
            wait_until(lambda: lib.model.rowCount() > 0, 60, "the library list")
            lib.select_row(1)
            wait_until(lambda: bool(lib.waveform.peaks), 60, "the waveform")
        window.jobs_dock.clear_finished()
        settle()

        def grab_with(dialog: QWidget | None, name: str) -> Path:
            shot = window.grab()
            if dialog is not None:
                dlg = dialog.grab()
                p = QPainter(shot)
                p.fillRect(shot.rect(), QColor(0, 0, 0, 90))
                pos = dialog.pos() - window.pos()
                if not shot.rect().contains(pos):
                    pos = QPoint((shot.width() - dlg.width()) // 2, 70)
                p.drawPixmap(pos, dlg)
                p.end()
            path = out / name
            if not QPixmap(shot).save(str(path)):
                raise SystemExit(f"screenshots: cannot write {path}")
            return path

        made = [grab_with(None, "library.png")]

        window.open_palette()
        settle()
        window.palette.search.setText("lib")
        settle()
        made.append(grab_with(window.palette, "palette.png"))
        window.palette.reject()

        dlg = window.open_settings()
        settle()
        made.append(grab_with(dlg, "settings.png"))
        dlg.reject()

        if "test.sleep" in registry:
            running = window.submit("test.sleep", {"seconds": 60.0, "steps": 600})
        elif "library.demo" in registry:
            running = window.submit("library.demo", {}, title="Build the demo library")
        else:
            running = None
        if running is not None:
            wait_until(lambda: running.fraction > 0.02 or running.done, 120, "job progress")
            settle(1.2)
        made.append(grab_with(None, "jobs.png"))
        if running is not None:
            window.client.cancel(running)
        window.close()
        window.deleteLater()
        QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete.value)
        QCoreApplication.processEvents()
        for p in made:
            print(p)
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
