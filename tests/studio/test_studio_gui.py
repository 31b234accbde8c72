"""What a user does in the window: palette, jobs, drag out, drops, crashes, settings."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QCheckBox, QComboBox, QLineEdit, QSpinBox
from studio_test_helpers import is_decodable_wav

from engines.core.registry import Command, Param, Result


def test_import_studio_and_help_do_not_import_torch():
    code = (
        "import sys, contextlib, io\n"
        "import studio, studio.app, studio.window, studio.workspaces.library\n"
        "from engines.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try: main(['--help'])\n"
        "    except SystemExit: pass\n"
        "heavy = sorted(m for m in ('torch', 'librosa', 'faiss', 'numba', 'transformers') if m in sys.modules)\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"heavy modules imported: {out.stdout}"


def test_fuzzy_ranking_prefers_substrings_and_recent():
    from studio.palette import fuzzy_score, rank_commands

    assert fuzzy_score("ladd", "Add music library.add") is not None
    assert fuzzy_score("xyz", "library.add") is None
    assert fuzzy_score("add", "library.add") > fuzzy_score("add", "a d d x")
    cmds = [Command(id=f"g.{v}", title=v, handler=lambda _ctx: Result()) for v in ("alpha", "beta", "gamma")]
    assert [c.id for c in rank_commands(cmds, "", ["g.gamma"])][0] == "g.gamma"
    assert [c.id for c in rank_commands(cmds, "bt", [])] == ["g.beta"]


def test_palette_lists_plugin_commands_and_runs_one_through_its_form(qtbot, make_window, registry):
    registry.register(Command(id="extra.hello", title="Say hello", handler=lambda _ctx: Result(message="hello!")))
    window = make_window()
    window.palette_action.trigger()
    palette = window.palette
    assert palette.isVisible()
    ids = [c.id for c in palette.commands()]
    assert {"test.echo", "test.sleep", "library.add", "extra.hello"} <= set(ids)
    # the test plugin's shortcut is shown and bound to a menu action
    assert window.command_actions["test.echo"].shortcut().toString() == "Ctrl+Alt+E"

    qtbot.keyClicks(palette.search, "tst echo")
    assert palette.commands()[0].id == "test.echo"
    qtbot.keyClick(palette.search, Qt.Key.Key_Return)
    form = window.param_form
    assert form is not None and form.isVisible() and not palette.isVisible()
    eds = form.editors
    assert isinstance(eds["text"], QLineEdit) and isinstance(eds["count"], QSpinBox)
    assert isinstance(eds["loud"], QCheckBox) and isinstance(eds["mode"], QComboBox)
    assert eds["count"].maximum() == 10 and eds["count"].minimum() == 1

    form.accept()  # the required text is missing: the form says so and stays open
    assert form.isVisible() and "text" in form.error.text()

    eds["text"].setText("hi there")
    eds["count"].setValue(3)
    eds["loud"].setChecked(True)
    eds["mode"].setCurrentText("wild")
    eds["inputs"].set_value(["/tmp/a.wav", "/tmp/b.wav"])
    with qtbot.waitSignal(window.jobSubmitted, timeout=5000) as sub:
        form.buttons.button(form.buttons.StandardButton.Ok).click()
    job = sub.args[0]
    qtbot.waitUntil(lambda: job.done, timeout=10000)
    assert job.state == "done", job.error
    assert job.result.data["text"] == "hi there" and job.result.data["count"] == 3
    assert job.result.data["loud"] is True and job.result.data["mode"] == "wild"
    assert job.result.data["inputs"] == ["/tmp/a.wav", "/tmp/b.wav"]
    assert "echo: hi there x3" in window.jobs_dock.row(job).message.text()
    assert window.state.recent[0] == "test.echo"

    # the command from the registry passed in runs too, and is now listed first
    window.open_palette()
    assert palette.commands()[0].id == "test.echo"
    palette.choose("extra.hello")
    job = window.client.jobs[max(window.client.jobs, key=int)]
    assert job.command_id == "extra.hello"


def test_result_files_get_open_folder_and_copy_path(qtbot, make_window):
    window = make_window()
    job = window.submit("test.files", {"count": 2})
    qtbot.waitUntil(lambda: job.done, timeout=10000)
    row = window.jobs_dock.row(job)
    assert row.open_button.isVisibleTo(row) and row.copy_button.isVisibleTo(row)
    row.copy_button.click()
    from PySide6.QtGui import QGuiApplication

    assert QGuiApplication.clipboard().text().splitlines() == job.result.files


def test_first_run_builds_demo_library_with_banner(loaded_window):
    window = loaded_window
    lib = window.library
    assert lib.banner.isVisible() and "Demo library: 30 pieces" in lib.banner_label.text()
    demo_row = window.jobs_dock.row(lib.demo_job)
    assert demo_row is not None and demo_row.job.state == "done"
    assert all(r["demo"] for r in lib.rows())
    # sortable: by BPM descending
    from studio.workspaces.library import COL

    lib.table.sortByColumn(COL["tempo"], Qt.SortOrder.DescendingOrder)
    tempos = [r["tempo"] for r in lib.rows()]
    assert tempos == sorted(tempos, reverse=True)
    # filterable
    lib.filter.setText("piece 07")
    assert [r["title"] for r in lib.rows()] == ["Demo Piece 07"]
    lib.filter.clear()
    assert len(lib.rows()) == 30


def test_search_and_clear(qtbot, loaded_window):
    lib = loaded_window.library
    lib.search.setText("chorale")
    job = lib.run_search()
    qtbot.waitUntil(lambda: job.done and lib.searching == "chorale", timeout=5000)
    rows = lib.rows()
    assert rows and all("chorale" in r["matched"] for r in rows)
    assert not lib.table.isColumnHidden(7)
    lib.search.clear()
    assert len(lib.rows()) == 30 and lib.table.isColumnHidden(7)


def test_selected_track_waveform_and_play_stop(qtbot, loaded_window):
    lib = loaded_window.library
    with qtbot.waitSignal(lib.trackShown, timeout=5000):
        lib.select_row(0)
    assert len(lib.waveform.peaks) > 100 and lib.waveform.beats
    assert lib.play_button.isEnabled()
    lib.table.setFocus()
    lib.play_action.trigger()
    assert lib.player.playing and "Stop" in lib.play_button.text()
    lib.play_action.trigger()
    assert not lib.player.playing and "Play" in lib.play_button.text()


def test_drag_out_carries_urls_of_existing_decodable_files(loaded_window):
    lib = loaded_window.library
    lib.select_row(2)
    mime = lib.table.mime_for_selection()
    urls = mime.urls()
    assert len(urls) == 1 and urls[0].isLocalFile()
    path = Path(urls[0].toLocalFile())
    assert path.is_file() and path == Path(lib.rows()[2]["path"]).resolve()
    assert is_decodable_wav(path)
    assert "text/uri-list" in mime.formats()


def test_dropping_a_folder_adds_it_to_the_library(qtbot, loaded_window, tmp_path):
    from cue_test_plugin import write_wav

    window = loaded_window
    folder = tmp_path / "my music"
    for i in range(3):
        write_wav(folder / f"mine_{i}.wav", seconds=0.3)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(folder))])
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(window.jobSubmitted, timeout=2000) as sub:
        window.dropEvent(event)
    job = sub.args[0]
    assert job.command_id == "library.add" and job.params["paths"] == [str(folder)]
    assert window.jobs_dock.row(job) is not None
    qtbot.waitUntil(lambda: window.library.model.rowCount() == 33, timeout=10000)


def test_job_progress_in_dock_and_cancel(qtbot, make_window):
    window = make_window()
    job = window.submit("test.sleep", {"seconds": 30.0, "steps": 300})
    row = window.jobs_dock.row(job)
    assert row is not None and row.cancel_button.isVisibleTo(row)
    qtbot.waitUntil(lambda: row.bar.value() > 0 and "step" in row.message.text(), timeout=10000)
    qtbot.mouseClick(row.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: job.done, timeout=5000)
    assert job.state == "cancelled" and row.message.text() == "Cancelled"
    assert not row.cancel_button.isVisibleTo(row)
    assert job.elapsed < 10


@pytest.mark.parametrize("how", ["sigkill", "segfault"])
def test_engine_host_death_is_survived(qtbot, loaded_window, how):
    window = loaded_window
    client = window.client
    before = json.dumps(window.library.rows())
    old_pid = client.host_pid
    assert old_pid
    if how == "sigkill":
        job = window.submit("test.sleep", {"seconds": 30.0, "steps": 300})
        qtbot.waitUntil(lambda: job.state == "running", timeout=5000)
        os.kill(old_pid, signal.SIGKILL)
        expect = "signal 9"
        command = "test.sleep"
    else:
        job = window.submit("test.crash", {})
        expect = "signal 11"
        command = "test.crash"
    qtbot.waitUntil(lambda: job.done, timeout=10000)
    assert job.state == "failed" and job.error["kind"] == "host_crashed"
    msg = job.error_message
    assert f"The engine host stopped ({expect}" in msg and f"'{command}'" in msg
    assert "it was restarted" in msg and "Your library and settings are safe" in msg
    assert "Failed" in window.jobs_dock.row(job).message.text()
    qtbot.waitUntil(lambda: client.ready and client.host_pid not in (0, old_pid), timeout=10000)
    after = window.submit("test.files", {"count": 1})
    qtbot.waitUntil(lambda: after.done, timeout=10000)
    assert after.state == "done" and is_decodable_wav(after.result.files[0])
    assert json.dumps(window.library.rows()) == before
    assert "restarting" in window.host_label.text() or "ready" in window.host_label.text()


def test_local_commands_run_in_process(qtbot, make_window, registry):
    registry.register(Command(id="extra.local", title="Local", runs_in="local",
                              params=(Param("n", "int", 2),),
                              handler=lambda _ctx, n: Result(data=n, message=f"n={n}")))
    window = make_window(start=False)
    job = window.submit("extra.local", {"n": 5})
    qtbot.waitUntil(lambda: job.done, timeout=5000)
    assert job.state == "done" and job.result.data == 5 and window.client.process is None


def test_settings_dialog_saves_and_shows_validation_errors(make_window, studio_home):
    window = make_window(start=False)
    dlg = window.open_settings()
    assert dlg.home_edit.text() == str(studio_home.resolve())
    dlg.sample_rate.setCurrentIndex(dlg.sample_rate.findData(48000))
    dlg.theme.setCurrentIndex(dlg.theme.findData("dark"))
    dlg.soundfont.setText(str(studio_home / "missing.sf2"))
    dlg.accept()
    assert dlg.isVisible() and "SoundFont file not found" in dlg.error.text()
    dlg.soundfont.clear()
    dlg.accept()
    assert not dlg.isVisible()
    saved = window.home.load_settings()
    assert saved.music_sample_rate == 48000 and saved.theme == "dark"
    from studio import theme

    assert theme.is_dark()


def test_heavy_painting_does_not_exhaust_none_refcount():
    """PySide6 6.12.0 on CPython 3.11 steals a reference to None per void call and aborts after a few
    thousand paints; we pin 6.11.3. This guards against a pin that brings the bug back."""
    code = (
        "import studio\n"
        "from PySide6.QtGui import QImage, QPainter\n"
        "from PySide6.QtWidgets import QApplication\n"
        "from studio.widgets.waveform import WaveformView\n"
        "app = QApplication([])\n"
        "w = WaveformView(); w.resize(600, 120); w.set_track([0.5] * 600, [0.5 * i for i in range(20)], 10.0)\n"
        "img = QImage(600, 120, QImage.Format.Format_ARGB32)\n"
        "for i in range(60):\n"
        "    w.set_position(i / 6); w.render(img)\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]
