"""The Compare workspace against the real engine host running the ``prefs.*`` commands,
on a data home whose preference store holds a few real pairs of tiny WAVs."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from cue_test_plugin import write_wav
from PySide6.QtCore import QPoint, Qt

PLUGINS = ("engines.feedback.commands", "engines.feedback.learn_commands")
SECONDS = 2.0


def _registry():
    from engines.core.plugins import load_plugins
    from engines.core.registry import Registry

    return load_plugins(Registry(), extra_modules=PLUGINS, installed=False)


def _pairs(home, tmp: Path) -> list[str]:
    """Three pending 'generate' pairs (A and B differ in pitch and seed), oldest first."""
    from engines.feedback.store import PreferenceStore

    store = PreferenceStore(home)
    ids = []
    for i, (fa, fb) in enumerate(((330.0, 440.0), (262.0, 392.0), (220.0, 247.0))):
        a = write_wav(tmp / "takes" / f"p{i}_a.wav", seconds=SECONDS, freq=fa)
        b = write_wav(tmp / "takes" / f"p{i}_b.wav", seconds=SECONDS, freq=fb)
        pair = store.add_pair("generate", a, b, prompt=f"lofi piano in A minor #{i}",
                              controls={"key": "Am", "tempo": 84.0, "meter": "4/4", "chords": ["Am", "F", "C", "G"]},
                              a_meta={"model": "default", "model_version": "v1", "seed": 10 + i},
                              b_meta={"model": "default", "model_version": "v1", "seed": 20 + i},
                              source="manual", created=1_700_000_000.0 + i)
        ids.append(pair.pair_id)
    return ids


@pytest.fixture
def compare(qtbot, studio_home: Path, tmp_path: Path):
    from engines.core.home import DataHome
    from studio.jobs import JobClient
    from studio.state import GuiState
    from studio.workspaces.compare import CompareWorkspace

    home = DataHome(studio_home)
    ids = _pairs(home, tmp_path)
    reg = _registry()
    assert "prefs.queue" in reg and "prefs.vote" in reg
    client = JobClient(home, reg, plugins=PLUGINS, isolated=True)
    ws = CompareWorkspace(client, reg, GuiState(home))
    qtbot.addWidget(ws)
    ws.resize(1200, 720)
    ws.show()  # loads the history, the pending pairs and the statistics
    qtbot.waitActive(ws)
    ws.setFocus()
    yield ws, home, ids
    ws.shutdown()
    client.shutdown()


def _wait_job(qtbot, job, timeout=30000):
    assert job is not None
    qtbot.waitUntil(lambda: job.done, timeout=timeout)
    assert job.state == "done", job.error


def _click_waveform(qtbot, ws, side: str, fraction: float) -> None:
    wave = ws.panels[side].waveform
    qtbot.mouseClick(wave, Qt.MouseButton.LeftButton, pos=QPoint(int(wave.width() * fraction), wave.height() // 2))


def test_rate_switch_vote_undo_and_history(qtbot, compare) -> None:
    from engines.feedback.store import PreferenceStore

    ws, home, ids = compare
    store = PreferenceStore(home)
    qtbot.waitUntil(lambda: ws.current is not None, timeout=30000)  # the pending pairs, from prefs.list
    _wait_job(qtbot, ws.fill_queue(3))  # "Rate 3 pairs"
    assert [p["pair_id"] for p in ws.queue] == ids
    assert ws.current["pair_id"] == ids[0]
    assert "lofi piano in A minor #0" in ws.prompt_label.text() and "84 bpm" in ws.prompt_label.text()
    assert "Pair 1 of 3" in ws.pair_label.text()
    # rating is blind: nothing on screen says which seed made A or B
    assert "seed" not in ws.panels["a"].info.text() + ws.panels["b"].info.text()
    # both waveforms, on one scale, with their durations
    qtbot.waitUntil(lambda: all(p.waveform.peaks for p in ws.panels.values()), timeout=10000)
    assert all(p.waveform.duration == pytest.approx(SECONDS, abs=0.01) for p in ws.panels.values())
    assert max(max(p.waveform.peaks) for p in ws.panels.values()) == pytest.approx(1.0)

    # a click at 40 % of A's waveform moves the shared playhead; key B keeps the position
    qtbot.waitUntil(lambda: ws.player.duration() > 0, timeout=10000)
    _click_waveform(qtbot, ws, "a", 0.4)
    assert ws.player.side == "a" and ws.player.position() == pytest.approx(0.8, abs=0.02)
    qtbot.keyClick(ws, Qt.Key.Key_B)
    assert ws.player.side == "b" and ws.panels["b"].button.isChecked() and not ws.panels["a"].button.isChecked()
    assert ws.player.position() == pytest.approx(0.8, abs=0.02)
    assert ws.player.track_position("b") == pytest.approx(0.8, abs=0.02)
    assert ws.panels["b"].waveform.position == pytest.approx(0.8, abs=0.02)

    # Space plays B; A while playing takes over at B's position (both run, one is heard)
    qtbot.keyClick(ws, Qt.Key.Key_Space)
    assert ws.player.playing
    qtbot.waitUntil(lambda: ws.player.position() > 1.0, timeout=5000)
    qtbot.keyClick(ws, Qt.Key.Key_A)
    assert ws.player.side == "a" and ws.player.playing
    at_switch = ws.listens[-1]["pos"]
    assert at_switch > 0.9
    assert ws.player.track_position("a") == pytest.approx(ws.player.track_position("b"), abs=0.15)
    qtbot.keyClick(ws, Qt.Key.Key_Space)
    assert not ws.player.playing

    # vote "B is better" with key 2 and a reason: stored with the listen events and decision time
    ws.reason.setText("B has the warmer chords")
    with qtbot.waitSignal(ws.voted, timeout=20000):
        qtbot.keyClick(ws, Qt.Key.Key_2)
    vote = store.pair(ids[0]).vote
    assert vote is not None and vote.choice == "b" and vote.reason == "B has the warmer chords"
    assert vote.rater == "default" and vote.decision_ms is not None and vote.decision_ms > 0
    actions = [(e["action"], e["side"]) for e in vote.listens]
    assert actions == [("seek", "a"), ("switch", "b"), ("play", "b"), ("switch", "a"), ("pause", "a")]
    assert vote.listens[0]["pos"] == pytest.approx(0.8, abs=0.02)
    assert vote.listens[3]["pos"] == pytest.approx(at_switch)
    assert [e["t"] for e in vote.listens] == sorted(e["t"] for e in vote.listens)
    assert vote.decision_ms >= int(vote.listens[-1]["t"] * 1000)

    # the next pair is up; the history shows the vote, with who made A and B
    assert ws.current["pair_id"] == ids[1] and len(ws.queue) == 2
    assert ws.reason.text() == "" and ws.listens == []
    qtbot.waitUntil(lambda: ws.history.rowCount() == 1 and ws.stats.get("votes") == 1, timeout=10000)
    row = ws.history_rows()[0]
    assert row["Vote"] == "B" and row["Prompt"] == "lofi piano in A minor #0"
    assert row["Reason"] == "B has the warmer chords" and row["Listens"] == "5"
    assert "seed 20" in row["B"] and "seed 10" in row["A"]
    assert "1</b> vote" in ws.stats_label.text() and "2</b> pending" in ws.stats_label.text()

    # a second vote with the button, then Ctrl+Z twice: both pairs come back, newest first
    with qtbot.waitSignal(ws.voted, timeout=20000):
        ws.vote_buttons["tie"].click()
    assert store.pair(ids[1]).vote.choice == "tie"
    assert ws.current["pair_id"] == ids[2]
    with qtbot.waitSignal(ws.pairShown, timeout=20000, check_params_cb=lambda p: p and p["pair_id"] == ids[1]):
        qtbot.keyClick(ws, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert store.pair(ids[1]).vote is None and store.pair(ids[0]).vote is not None
    assert [p["pair_id"] for p in ws.queue] == [ids[1], ids[2]]
    qtbot.waitUntil(lambda: ws.history.rowCount() == 1, timeout=10000)
    with qtbot.waitSignal(ws.pairShown, timeout=20000, check_params_cb=lambda p: p and p["pair_id"] == ids[0]):
        ws.undo_button.click()
    assert store.pair(ids[0]).vote is None
    qtbot.waitUntil(lambda: ws.history.rowCount() == 0 and ws.stats.get("votes") == 0, timeout=10000)
    assert [p["pair_id"] for p in ws.queue] == [ids[0], ids[1], ids[2]]
    assert store.stats()["votes"] == 0


def test_vote_on_a_pair_voted_elsewhere_is_refused_inline(qtbot, compare) -> None:
    from engines.feedback.store import PreferenceStore

    ws, home, ids = compare
    qtbot.waitUntil(lambda: ws.current is not None and ws.current["pair_id"] == ids[0], timeout=30000)
    PreferenceStore(home).vote(ids[0], "a", rater="cli")  # e.g. `studio prefs vote` in a terminal
    job = ws.vote("both_bad")
    qtbot.waitUntil(lambda: job.done, timeout=20000)
    assert job.state == "failed"
    assert ws.error.isVisible() and "already has a vote" in ws.error.text()
    assert PreferenceStore(home).pair(ids[0]).vote.choice == "a"  # the saved vote is untouched
    assert ws.current["pair_id"] == ids[0] and ws.vote_buttons["a"].isEnabled()


def test_rater_list_offers_who_voted_and_votes_go_under_the_chosen_one(qtbot, compare) -> None:
    from engines.feedback.store import PreferenceStore

    ws, home, ids = compare
    qtbot.waitUntil(lambda: ws.current is not None and ws.current["pair_id"] == ids[0], timeout=30000)
    PreferenceStore(home).vote(ids[2], "a", rater="ann")  # ann rated one pair in a terminal
    with qtbot.waitSignal(ws.statsLoaded, timeout=20000):
        ws.load_stats()
    names = [ws.rater.itemText(i) for i in range(ws.rater.count())]
    assert names == ["ann", "default"] and ws.rater_name() == "default"
    assert ws.rater.itemData(0, Qt.ItemDataRole.ToolTipRole) == "1 vote"
    ws.rater.setCurrentIndex(0)
    ws.rater.activated.emit(0)
    assert ws.state.get("prefs_rater") == "ann"
    with qtbot.waitSignal(ws.voted, timeout=20000):
        ws.vote("b")
    assert PreferenceStore(home).pair(ids[0]).vote.rater == "ann"
    # a new name typed in is used as is and stays after the list reloads
    ws.rater.setEditText("  carl ")
    assert ws.rater_name() == "carl"
    with qtbot.waitSignal(ws.statsLoaded, timeout=20000):
        ws.load_stats()
    assert ws.rater_name() == "carl" and "ann" in [ws.rater.itemText(i) for i in range(ws.rater.count())]


def test_video_pair_plays_each_track_from_its_offset(qtbot, compare, tmp_path: Path) -> None:
    from engines.feedback.store import PreferenceStore
    from studio.screenshots import write_cut_clip

    ws, home, _ids = compare
    qtbot.waitUntil(lambda: ws.current is not None, timeout=30000)
    clip = write_cut_clip(tmp_path / "clip.mp4", seconds=2.0, cuts=(0.5, 1.0, 1.5))
    a = write_wav(tmp_path / "v_a.wav", seconds=4.0, freq=300.0)
    b = write_wav(tmp_path / "v_b.wav", seconds=4.0, freq=500.0)
    pair = PreferenceStore(home).add_pair(
        "video", a, b, prompt="calmer, with piano", controls={"start": 0.0, "end": 2.0}, video=clip,
        a_meta={"label": "Rain", "offset_s": 0.5}, b_meta={"label": "Tide", "offset_s": 1.25}, source="queue",
        created=1_800_000_000.0)
    _wait_job(qtbot, ws.refresh())  # the newest pending pair joins the end of the queue
    assert ws.queue[-1]["pair_id"] == pair.pair_id and not ws.video_view.isVisibleTo(ws)
    while ws.current["pair_id"] != pair.pair_id:
        ws.skip_button.click()  # Skip: rate it later
    assert ws.video_view.isVisibleTo(ws) and ws.player.has_video
    assert "calmer, with piano" in ws.prompt_label.text() and "0.0–2.0 s" in ws.prompt_label.text()
    qtbot.waitUntil(lambda: ws.player.duration() == pytest.approx(2.0, abs=0.05), timeout=10000)
    ws.player.seek(0.8)
    assert ws.player.track_position("a") == pytest.approx(1.3, abs=0.02)
    assert ws.player.track_position("b") == pytest.approx(2.05, abs=0.02)
    qtbot.keyClick(ws, Qt.Key.Key_B)
    assert ws.player.position() == pytest.approx(0.8, abs=0.02)
    assert ws.player.track_position("b") == pytest.approx(2.05, abs=0.02)
    qtbot.waitUntil(lambda: all(p.waveform.peaks for p in ws.panels.values()), timeout=10000)
    assert ws.panels["b"].waveform.position == pytest.approx(2.05, abs=0.02)  # playhead at offset + time
    # the part of each track that plays under the clip is the bright part of its waveform
    assert ws.panels["a"].waveform.window_s == pytest.approx((0.5, 2.5), abs=0.05)
    assert ws.panels["b"].waveform.window_s == pytest.approx((1.25, 3.25), abs=0.05)
    qtbot.waitUntil(lambda: not ws.video_view.image.isNull(), timeout=10000)  # the clip's frame is shown


def test_export_and_import_from_the_workspace(qtbot, compare, tmp_path: Path) -> None:
    from engines.feedback.store import PreferenceStore

    ws, _home, ids = compare
    qtbot.waitUntil(lambda: ws.current is not None, timeout=30000)
    ws.reason.setText("cleaner low end")
    with qtbot.waitSignal(ws.voted, timeout=20000):
        ws.vote("a")
    out = tmp_path / "votes.csv"
    job = ws.export("csv", str(out))
    _wait_job(qtbot, job)
    assert job.visible  # in the jobs dock
    with open(out, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["pair_id"], r["choice"], r["reason"]) for r in rows] == [(ids[0], "a", "cleaner low end")]
    assert int(rows[0]["decision_ms"]) > 0 and rows[0]["b_seed"] == "20"

    # a bundle of this home imported back: everything is a duplicate, nothing is added
    bundle = tmp_path / "bundle"
    _wait_job(qtbot, ws.export("bundle", str(bundle)))
    assert (bundle / "pairs.jsonl").is_file()
    with qtbot.waitSignal(ws.statusMessage, timeout=30000,
                          check_params_cb=lambda m: "duplicate" in m or "already" in m) as msg:
        _wait_job(qtbot, ws.import_bundle(str(bundle)))
    assert "imported 0" in msg.args[0] and "3 duplicate" in msg.args[0]

    # a damaged bundle imports nothing, and says why inline
    (bundle / "pairs.jsonl").write_text("{not json\n")
    job = ws.import_bundle(str(bundle))
    qtbot.waitUntil(lambda: job.done, timeout=30000)
    assert job.state == "failed" and ws.error.isVisible() and "Import failed" in ws.error.text()
    assert PreferenceStore(_home).stats()["pairs"] == 3


def test_compare_tab_and_ctrl_z_in_the_window(qtbot, make_window, studio_home: Path, tmp_path: Path) -> None:
    import cue_test_plugin

    from engines.core.home import DataHome
    from engines.core.plugin_api import PluginAPI
    from engines.feedback.store import PreferenceStore
    from studio.app import create_window

    plain = make_window(start=False)  # the test plugin alone: no prefs.queue, no Compare tab
    assert "compare" not in plain.extra_workspaces
    plain.close()

    home = DataHome(studio_home)
    ids = _pairs(home, tmp_path)
    reg = _registry()
    cue_test_plugin.enable(PluginAPI(reg, plugin="gui-tests"))
    window = create_window(home, registry=reg, plugins=(*PLUGINS, "cue_test_plugin"), isolated=True)
    qtbot.addWidget(window)
    try:
        window.show()
        window.start()
        ws = window.extra_workspaces.get("compare")
        assert ws is not None and window.workspaces.tabText(window.workspaces.indexOf(ws)) == "Compare"
        window.workspaces.setCurrentWidget(ws)
        qtbot.waitActive(window)
        qtbot.waitUntil(lambda: ws.current is not None, timeout=30000)
        ws.setFocus()
        with qtbot.waitSignal(ws.voted, timeout=20000):
            qtbot.keyClick(ws, Qt.Key.Key_1)
        assert PreferenceStore(home).pair(ids[0]).vote.choice == "a"
        # the window binds Ctrl+Z to the prefs.undo command too; in Compare it undoes at once
        with qtbot.waitSignal(ws.undone, timeout=20000):
            qtbot.keyClick(ws.vote_buttons["b"], Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
        assert window.param_form is None
        assert PreferenceStore(home).pair(ids[0]).vote is None
        qtbot.waitUntil(lambda: ws.current["pair_id"] == ids[0], timeout=20000)
    finally:
        ws.shutdown()
        window.client.shutdown()
