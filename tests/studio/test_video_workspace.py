"""The Video → Music workspace against the real engine host (video + library commands)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engines"))
from v2m_helpers import add_tracks, fast_cut_clip, make_track  # noqa: E402

PLUGINS = ("engines.library.commands", "engines.video2music.commands")


def _registry():
    import importlib

    from engines.core.plugin_api import PluginAPI
    from engines.core.registry import Registry

    reg = Registry()
    for name in PLUGINS:
        importlib.import_module(name).enable(PluginAPI(reg, plugin=name))
    return reg


@pytest.fixture
def video_ws(qtbot, studio_home: Path, tmp_path: Path):
    from engines.core.home import DataHome
    from studio.jobs import JobClient
    from studio.state import GuiState
    from studio.workspaces.video import VideoWorkspace

    home = DataHome(studio_home)
    music = tmp_path / "music"
    music.mkdir()
    add_tracks(home, [
        dict(name="fast", path=make_track(music, "fast", 120, seconds=8, level=0.8, tone=2500), album="A"),
        dict(name="slow", path=make_track(music, "slow", 60, seconds=8, level=0.08, tone=300), album="B"),
        dict(name="mid", path=make_track(music, "mid", 90, seconds=8, level=0.3, tone=600), album="C"),
    ])
    reg = _registry()
    client = JobClient(home, reg, plugins=PLUGINS, isolated=True)
    ws = VideoWorkspace(client, reg, GuiState(home))
    qtbot.addWidget(ws)
    ws.resize(1100, 650)
    ws.show()
    yield ws
    ws.pause()
    client.shutdown()


def _wait_job(qtbot, job, timeout=40000):
    qtbot.waitUntil(lambda: job.done, timeout=timeout)
    assert job.state == "done", job.error


def test_match_refine_export_drag(qtbot, video_ws, tmp_path: Path) -> None:
    ws = video_ws
    clip = fast_cut_clip(tmp_path / "cuts.mp4", seconds=3.0, shot=0.5, size=64)
    job = ws.set_clip(str(clip))
    _wait_job(qtbot, job)
    rows = ws.rows()
    assert len(rows) == 3 and ws.session_id
    assert all(r["rationale"] for r in rows)
    assert ws.data.get("cuts"), "the clip's cuts come with the result"
    assert ws.current is not None and ws.export_cut.isEnabled()
    qtbot.waitUntil(lambda: ws.current["track_id"] in ws._beats, timeout=20000)
    assert ws.strip.cuts and ws.strip.duration == pytest.approx(3.0, abs=0.1)

    # switching candidates keeps the clip position; Space toggles play
    ws.play()
    assert ws.playing
    ws.results.setCurrentRow(1)
    assert ws.current is rows[1] or ws.current["track_id"] == rows[1]["track_id"]
    ws.pause()

    before = [r["track_id"] for r in rows]
    job = ws.refine("slower")
    _wait_job(qtbot, job)
    assert ws.turns == ["slower"] and ws.history.count() == 1
    after = [r["track_id"] for r in ws.rows()]
    assert sorted(after) == sorted(before)
    assert ws.changed_label.text()

    ws.results.setCurrentRow(0)
    job = ws.export("cut")
    _wait_job(qtbot, job)
    qtbot.waitUntil(lambda: ws.exports.count() == 1, timeout=5000)
    mime = ws.exports.mime_for_row(0)
    assert mime is not None and mime.hasUrls()
    out = Path(mime.urls()[0].toLocalFile())
    assert out.is_file() and out.suffix == ".wav" and out.parent == ws.client.home.exports.resolve()
    from studio_test_helpers import is_decodable_wav

    assert is_decodable_wav(out)


def test_failed_match_shows_inline_error(qtbot, video_ws, tmp_path: Path) -> None:
    bad = tmp_path / "not_a_video.mp4"
    bad.write_bytes(b"this is not a video")
    job = video_ws.set_clip(str(bad))
    qtbot.waitUntil(lambda: job.done, timeout=30000)
    assert job.state == "failed"
    assert video_ws.error.isVisible() and "failed" in video_ws.error.text()
