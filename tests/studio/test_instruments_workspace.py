"""The Instruments workspace against the real engine host (debug model).

Indexing the whole bundled TimGM6mb SoundFont takes ~45 s on a shared CPU, so the test
indexes a small folder of generated WAV one-shots and runs find on a short song rendered
with the SoundFont.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from studio.workspaces.instruments import MATCH_ROLE

PLUGIN = "engines.instruments.commands"


def _one_shots(folder: Path) -> Path:
    from engines.media.audio import write_wav

    folder.mkdir(parents=True)
    sr = 22050
    t = np.arange(int(0.8 * sr)) / sr
    env = np.exp(-3.0 * t)
    for name, f, shape in (("sine_c4", 261.6, "sine"), ("saw_e3", 164.8, "saw"), ("square_g4", 392.0, "square"),
                           ("sine_a2", 110.0, "sine"), ("saw_c5", 523.3, "saw"), ("noise_hit", 0.0, "noise")):
        if shape == "sine":
            y = np.sin(2 * np.pi * f * t)
        elif shape == "saw":
            y = 2 * ((f * t) % 1.0) - 1
        elif shape == "square":
            y = np.sign(np.sin(2 * np.pi * f * t))
        else:
            y = np.random.default_rng(0).standard_normal(t.size) * np.exp(-20 * t)
        write_wav(folder / f"{name}.wav", (0.5 * env * y).astype(np.float32)[None, :], sr=sr, bits=16)
    return folder


def _song(path: Path) -> Path:
    from engines.media.audio import write_wav
    from engines.media.midi import Note, Song, Track
    from engines.media.synth import render_song

    piano = Track("piano", program=0, notes=[Note(60 + (i % 5) * 2, i * 0.5, i * 0.5 + 0.45) for i in range(8)])
    bass = Track("bass", program=33, notes=[Note(40 + (i % 2) * 7, i * 1.0, i * 1.0 + 0.9) for i in range(4)])
    y = render_song(Song(tracks=[piano, bass], tempo=120.0), sr=22050)
    return write_wav(path, y, sr=22050, bits=16)


@pytest.fixture
def workspace(qtbot, studio_home, monkeypatch):
    from engines.core.home import DataHome
    from engines.core.plugins import load_plugins
    from engines.core.registry import Registry
    from studio.jobs import JobClient
    from studio.state import GuiState
    from studio.workspaces.instruments import InstrumentsWorkspace

    monkeypatch.setenv("STUDIO_INSTRUMENTS_MODEL", "debug")  # the host inherits the environment
    home = DataHome(studio_home)
    reg = load_plugins(Registry(), extra_modules=(PLUGIN,), installed=False)
    client = JobClient(home, reg, plugins=(PLUGIN,), isolated=True)
    ws = InstrumentsWorkspace(client, reg, GuiState(home))
    qtbot.addWidget(ws)
    ws.resize(1100, 700)
    ws.show()
    yield ws
    client.shutdown()


def test_index_find_audition_and_drag_out(qtbot, workspace, tmp_path):
    ws = workspace
    qtbot.waitUntil(lambda: ws.list_job is not None and ws.list_job.done, timeout=20000)
    assert ws.source_list.count() == 0

    folder = _one_shots(tmp_path / "samples")
    ws.handle_dropped([str(folder)])  # a dropped folder is a source
    qtbot.waitUntil(lambda: ws.source_list.count() == 1, timeout=40000)
    assert ws.sources[0]["instruments"] == 6, ws.sources

    song = _song(tmp_path / "song.wav")
    ws.handle_dropped([str(song)])  # a dropped audio file is the song
    assert ws.song == str(song) and ws.find_button.isEnabled()
    job = ws.find()
    qtbot.waitUntil(lambda: job.done, timeout=40000)
    assert job.state == "done", job.error
    assert ws.tree.topLevelItemCount() >= 1
    assert ws.tree.topLevelItem(0).text(0).startswith("Instrument 1 — around ")
    items = ws.match_items()
    assert items, "no match shown"
    m = items[0].data(0, MATCH_ROLE)
    assert m["kind"] == "sample" and items[0].text(3)

    ws.tree.setCurrentItem(items[0])
    qtbot.waitUntil(lambda: bool(ws.audition_path), timeout=20000)
    mime = ws.mime_for_item(items[0])
    assert mime is not None and mime.hasUrls()
    local = Path(mime.urls()[0].toLocalFile())
    assert local.is_file() and local.suffix == ".wav"
    assert ws.copy_match()

    sim = ws.more_like_this()
    assert sim is not None
    groups = ws.tree.topLevelItemCount()
    qtbot.waitUntil(lambda: sim.done, timeout=20000)
    assert sim.state == "done", sim.error
    assert ws.tree.topLevelItemCount() == groups + 1
    assert ws.tree.topLevelItem(groups).text(0).startswith("More like ")


def test_find_failure_shows_inline_error(qtbot, workspace, tmp_path):
    ws = workspace
    bad = tmp_path / "not_audio.wav"
    bad.write_text("not audio")
    ws.set_song(str(bad))
    job = ws.find()
    qtbot.waitUntil(lambda: job.done, timeout=30000)
    assert job.state == "failed"
    assert ws.error_label.isVisible() and "Could not find" in ws.error_label.text()
