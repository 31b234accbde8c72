"""The Generate workspace against the real engine host running the generate commands
with the tiny ``debug`` model (``STUDIO_GENERATE_MODEL=debug``)."""

from __future__ import annotations

from pathlib import Path

import pytest

GEN_PLUGIN = "engines.generate.commands"
TEXT = "melancholic piano and strings in D minor, 70 bpm, 3/4, chords Dm Bb F A, 16 bars"


@pytest.fixture
def workspace(qtbot, studio_home, monkeypatch):
    pytest.importorskip("torch")
    from engines.core.home import DataHome
    from engines.core.plugins import load_plugins
    from engines.core.registry import Registry
    from studio.jobs import JobClient
    from studio.state import GuiState
    from studio.workspaces.generate import GenerateWorkspace

    monkeypatch.setenv("STUDIO_GENERATE_MODEL", "debug")
    home = DataHome(studio_home)
    registry = load_plugins(Registry(), extra_modules=(GEN_PLUGIN,), installed=False)
    assert "generate.music" in registry
    client = JobClient(home, registry, plugins=(GEN_PLUGIN,), isolated=True)
    ws = GenerateWorkspace(client, registry, GuiState(home))
    qtbot.addWidget(ws)
    ws.resize(1200, 760)
    ws.show()
    client.start()  # the host loads while the prompt is resolved
    yield ws
    client.shutdown()


def _urls(mime) -> list[Path]:
    assert mime is not None and mime.hasUrls()
    paths = [Path(u.toLocalFile()) for u in mime.urls()]
    assert all(p.is_file() for p in paths), paths
    return paths


def test_resolve_generate_drag_solo_continue_and_errors(qtbot, workspace, tmp_path):
    ws = workspace
    ws.prompt.setPlainText(TEXT)
    with qtbot.waitSignal(ws.controlsResolved, timeout=60000):
        ws.resolve()
    assert ws.key.text() == "Dm"
    assert ws.meter.text() == "3/4" and ws.tempo.value() == 70
    assert ws.chords.text() == "Dm Bb F A"

    ws.bars.setValue(4)  # an edited field wins over the text (and keeps the test short)
    ws.seed.setValue(7)
    assert ws.fields()["bars"] == 4
    with qtbot.waitSignal(ws.resultShown, timeout=90000) as shown:
        job = ws.generate()
        assert job is not None and job.visible  # the jobs dock shows it
    data = shown.args[0]
    assert data["controls"]["bars"] == 4 and data["controls"]["key"] == "Dm"
    assert ws.roll.note_count() > 0 and ws.roll.bars >= 4
    assert ws.roll.chords == ["Dm", "Bb", "F", "A"]
    assert ws.track_names() == ["piano", "strings"]
    assert ws.history.count() == 1
    assert not ws.error.isVisible()

    # drag out: the MIDI, the mix, the stems; names carry key, tempo, seed
    (midi,) = _urls(ws.midi_chip.mime())
    (wav,) = _urls(ws.wav_chip.mime())
    assert midi.suffix == ".mid" and wav.suffix == ".wav"
    assert "Dm" in midi.name and "70bpm" in midi.name and "s7" in midi.name
    ws.tracks.topLevelItem(1).setSelected(True)
    (stem,) = _urls(ws.tracks.mime_for_selection())
    assert stem.suffix == ".wav" and "strings" in stem.name

    # solo -> the stem plays; nothing soloed -> the mix
    from PySide6.QtCore import Qt
    assert ws.playback_path() == str(wav)
    ws.tracks.topLevelItem(1).setCheckState(2, Qt.CheckState.Unchecked)
    ws.tracks.topLevelItem(1).setCheckState(1, Qt.CheckState.Checked)
    assert Path(ws.playback_path()) == stem
    assert ws.roll.tracks[0].audible is False and ws.roll.tracks[1].audible is True
    ws.tracks.topLevelItem(1).setCheckState(1, Qt.CheckState.Unchecked)
    assert ws.playback_path() == str(wav)

    # continue: a new result with its own files; the first stays in the history
    ws.continue_bars.setValue(2)
    with qtbot.waitSignal(ws.resultShown, timeout=60000) as shown2:
        ws.continue_piece()
    cont = shown2.args[0]
    assert cont["midi"] != data["midi"] and Path(cont["midi"]).is_file() and midi.is_file()
    assert ws.history.count() == 2 and ws.roll.note_count() > 0
    ws.history.setCurrentRow(0)
    assert ws.current["midi"] == data["midi"]

    # a failed job's message is shown inline
    ws.arrange(str(tmp_path / "missing.mid"))
    qtbot.waitUntil(ws.error.isVisible, timeout=30000)
    assert "missing.mid" in ws.error.text() or "not" in ws.error.text().lower()
    assert ws.generate_button.isEnabled()
