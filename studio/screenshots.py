"""Screenshots of every working view: ``python -m studio.screenshots OUTDIR``.

Opens the window (offscreen unless a display is set) on a temporary data home, adds a
small generated library (WAV tones written with the stdlib) through ``library.add`` —
or builds the demo library with ``--demo`` — selects a track and saves:

- ``library.png``   the library with the selected track's waveform
- ``palette.png``   the command palette open over the window
- ``settings.png``  the settings dialog
- ``jobs.png``      the jobs dock with a running job
- ``video.png``     the Video → Music workspace after matching a generated clip
- ``instruments.png`` the Instruments workspace after finding a rendered song's instruments
- ``sheet.png``     the Sheet Music workspace following a rendered chorale in its score
- ``generate.png``  the Generate workspace after one generation
- ``compare.png``   the Compare workspace rating pairs lined up from that recent work, one vote in
                    the history

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
        made += shoot_video(window, tmp, wait_until, settle, grab_with)
        made += shoot_instruments(window, tmp, wait_until, settle, grab_with)
        made += shoot_sheet(window, tmp, wait_until, settle, grab_with)
        made += shoot_generate(window, tmp, wait_until, settle, grab_with)
        made += shoot_compare(window, tmp, wait_until, settle, grab_with)
        window.close()
        window.deleteLater()
        QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete.value)
        QCoreApplication.processEvents()
        for p in made:
            print(p)
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_cut_clip(path: Path, *, seconds: float = 4.0, fps: int = 24, cuts: tuple[float, ...] = (
        0.5, 1.0, 1.5, 2.25, 2.75, 3.5)) -> Path:
    """A small silent H.264 clip with hard cuts (a new colour and stripe pattern per shot), via PyAV."""
    import av
    import numpy as np

    colours = [(200, 70, 60), (40, 120, 200), (230, 190, 60), (60, 160, 90), (150, 80, 190), (240, 130, 40),
               (90, 200, 210)]
    w, h = 320, 180
    with av.open(str(path), "w") as box:
        stream = box.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        for i in range(int(seconds * fps)):
            t = i / fps
            shot = sum(1 for c in cuts if t >= c)
            img = np.empty((h, w, 3), np.uint8)
            img[:] = colours[shot % len(colours)]
            x = (np.arange(w) + 4 * i) // (12 + 6 * (shot % 3)) % 2 == 0
            img[:, x] = (np.asarray(colours[shot % len(colours)]) * 0.55).astype(np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                box.mux(packet)
        for packet in stream.encode():
            box.mux(packet)
    return path


def shoot_video(window, tmp: Path, wait_until, settle, grab_with) -> list[Path]:  # noqa: ANN001
    """``video.png``: the Video → Music workspace after matching a generated clip."""
    ws = getattr(window, "extra_workspaces", {}).get("video")
    if ws is None or "library.list" not in window.registry:
        print("warning: no video workspace; video.png not taken", file=sys.stderr)
        return []
    window.workspaces.setCurrentWidget(ws)
    dock_shown = window.jobs_dock.isVisible()
    window.jobs_dock.hide()  # the workspace at full width
    job = ws.set_clip(str(write_cut_clip(tmp / "city_montage.mp4")))
    wait_until(lambda: job is not None and job.done, 300, "video.match")
    if job is None or job.state != "done":
        raise SystemExit(f"screenshots: video.match failed: {job.error_message if job else 'no job'}")
    wait_until(lambda: bool(ws.strip.beats) or not ws.strip.message, 60, "the cut/beat strip")
    ws.clip_player.setPosition(1200)
    settle(1.0)
    shot = grab_with(None, "video.png")
    window.jobs_dock.setVisible(dock_shown)
    return [shot]


def shoot_instruments(window, tmp: Path, wait_until, settle, grab_with) -> list[Path]:  # noqa: ANN001
    """``instruments.png``: the Instruments workspace after finding the instruments of a rendered song."""
    ws = getattr(window, "extra_workspaces", {}).get("instruments")
    if ws is None:
        print("warning: no instruments workspace; instruments.png not taken", file=sys.stderr)
        return []
    from engines.media.audio import write_wav
    from engines.media.midi import Note, Song, Track
    from engines.media.synth import default_soundfont, render_song

    sf = tmp / "sounds" / "TimGM6mb.sf2"
    sf.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(default_soundfont(), sf)
    piano = Track("piano", program=0, notes=[Note(60 + (0, 4, 7, 12, 7, 4)[i % 6], i * 0.5, i * 0.5 + 0.45)
                                             for i in range(16)])
    bass = Track("bass", program=33, notes=[Note((36, 43, 41, 36)[i % 4], i * 1.0, i * 1.0 + 0.9) for i in range(8)])
    song = write_wav(tmp / "my_song.wav", render_song(Song(tracks=[piano, bass], tempo=120.0), sr=22050),
                     sr=22050, bits=16)
    window.workspaces.setCurrentWidget(ws)
    add = ws.add_sources([str(sf)])
    wait_until(lambda: add is not None and add.done, 600, "instruments.add")
    wait_until(lambda: ws.source_list.count() > 0, 60, "the instrument sources")
    ws.set_song(str(song))
    job = ws.find()
    wait_until(lambda: job is not None and job.done, 300, "instruments.find")
    if job is None or job.state != "done":
        raise SystemExit(f"screenshots: instruments.find failed: {job.error_message if job else 'no job'}")
    items = ws.match_items()
    if items:
        ws.tree.setCurrentItem(items[0])
        wait_until(lambda: bool(ws.audition_path) or ws.error_label.isVisible(), 120, "the audition render")
    window.jobs_dock.clear_finished()
    settle(0.5)
    return [grab_with(None, "instruments.png")]


def shoot_sheet(window, tmp: Path, wait_until, settle, grab_with) -> list[Path]:  # noqa: ANN001
    """``sheet.png``: the Sheet Music workspace following a rendered Bach chorale in its score."""
    ws = getattr(window, "extra_workspaces", {}).get("sheet")
    if ws is None:
        print("warning: no sheet workspace (no sheet.find); sheet.png not taken", file=sys.stderr)
        return []
    from music21 import corpus

    from engines.media.audio import write_wav
    from engines.media.midi import Note, Song, Track
    from engines.media.synth import render_song
    from engines.sheet.symbolic import load_symbolic

    scores = []
    for work in ("bach/bwv66.6", "bach/bwv4.8"):
        src = Path(str(corpus.getWork(work)))
        scores.append(tmp / "scores" / src.name)
        scores[-1].parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, scores[-1])
    notes = [Note(int(p), float(a), float(b), int(v)) for p, a, b, v in load_symbolic(scores[0]).notes]
    take = render_song(Song(tracks=[Track("piano", program=0, notes=notes)], tempo=100.0), sr=22050)
    rec = write_wav(tmp / "chorale_take.wav", take, sr=22050, bits=16)
    window.workspaces.setCurrentWidget(ws)
    add = ws.add_scores([str(p) for p in scores])
    wait_until(lambda: add is not None and add.done, 600, "sheet.add")
    wait_until(lambda: ws.score_list.count() > 0, 60, "the score list")
    ws.set_recording(str(rec))
    job = ws.find()
    wait_until(lambda: job is not None and job.done, 300, "sheet.find")
    if job is None or job.state != "done":
        raise SystemExit(f"screenshots: sheet.find failed: {job.error_message if job else 'no job'}")
    align = ws.open_result(0)
    wait_until(lambda: align is not None and align.done, 300, "sheet.align")
    if ws.points:
        ws.seek_point(min(5, len(ws.points) - 1))
    window.jobs_dock.clear_finished()
    settle(0.5)
    return [grab_with(None, "sheet.png")]


def shoot_generate(window, tmp: Path, wait_until, settle, grab_with) -> list[Path]:  # noqa: ANN001, ARG001
    """``generate.png``: the Generate workspace after one generation (resolved prompt, piano roll, tracks)."""
    ws = getattr(window, "extra_workspaces", {}).get("generate")
    if ws is None:
        print("warning: no generate workspace (no generate.music); generate.png not taken", file=sys.stderr)
        return []
    from studio.workspaces.generate import EXAMPLE

    window.workspaces.setCurrentWidget(ws)
    ws.prompt.setPlainText(EXAMPLE.replace("16 bars", "8 bars"))
    res = ws.resolve()
    wait_until(lambda: res is not None and res.done, 300, "generate.controls")
    ws.seed.setValue(42)
    job = ws.generate()
    wait_until(lambda: job is not None and job.done, 600, "generate.music")
    if job is None or job.state != "done":
        raise SystemExit(f"screenshots: generate.music failed: {job.error_message if job else 'no job'}")
    wait_until(lambda: ws.roll.note_count() > 0, 60, "the piano roll")
    ws.tracks.setCurrentItem(ws.tracks.topLevelItem(0))
    ws.roll.set_position(ws.roll.bar_seconds * 2.5)
    window.jobs_dock.clear_finished()
    dock_shown = window.jobs_dock.isVisible()
    window.jobs_dock.hide()  # the workspace at full width
    settle(0.5)
    shot = grab_with(None, "generate.png")
    window.jobs_dock.setVisible(dock_shown)
    return [shot]


def shoot_compare(window, tmp: Path, wait_until, settle, grab_with) -> list[Path]:  # noqa: ANN001
    """``compare.png``: the Compare workspace rating pairs lined up from the recent work above
    (the generation and the video match), with one vote in the history."""
    ws = getattr(window, "extra_workspaces", {}).get("compare")
    if ws is None:
        print("warning: no compare workspace (no prefs.queue); compare.png not taken", file=sys.stderr)
        return []
    window.workspaces.setCurrentWidget(ws)  # loads the history and the statistics
    job = ws.fill_queue(4)
    wait_until(lambda: job is not None and job.done, 600, "prefs.queue")
    if job is None or job.state != "done":
        raise SystemExit(f"screenshots: prefs.queue failed: {job.error_message if job else 'no job'}")
    if len(ws.queue) < 2:  # no recent work to pair (engines missing): two takes compared by hand
        for i, (title, freq) in enumerate(TRACKS[:2]):
            a, b = tmp / "takes" / f"{i}_a.wav", tmp / "takes" / f"{i}_b.wav"
            write_tone(a, freq, 6.0, 96.0)
            write_tone(b, freq * 1.5, 6.0, 96.0)
            made = window.submit("prefs.pair", {"a": str(a), "b": str(b), "prompt": title.lower()})
            wait_until(lambda m=made: m.done, 120, "prefs.pair")
        listed = ws.refresh()
        wait_until(lambda: listed is not None and listed.done, 120, "prefs.list")
    ws.reason.setText("steadier groove, the bass sits better")
    vote = ws.vote("b")
    wait_until(lambda: vote is not None and vote.done, 120, "prefs.vote")
    wait_until(lambda: ws.history.rowCount() > 0 and bool(ws.stats), 120, "the history and statistics")
    wait_until(lambda: ws.current is None or all(p.waveform.peaks or "No waveform" in p.waveform.placeholder
                                                  for p in ws.panels.values()), 120, "the waveforms")
    wait_until(lambda: ws.current is None or ws.player.duration() > 0, 60, "the pair to load")
    if ws.current is not None:
        ws.player.seek(0.4 * ws.player.duration())
        ws.switch("b")
        ws.reason.setText("")
    window.jobs_dock.clear_finished()
    dock_shown = window.jobs_dock.isVisible()
    window.jobs_dock.hide()  # the workspace at full width
    settle(1.0)
    shot = grab_with(None, "compare.png")
    window.jobs_dock.setVisible(dock_shown)
    ws.shutdown()
    return [shot]


if __name__ == "__main__":
    raise SystemExit(main())
