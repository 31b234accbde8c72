"""`studio video match / refine / export` end to end through the CLI (a subprocess)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "engines"))


def _registered() -> bool:
    from engines.core.plugins import default_registry

    return "video.match" in default_registry()


pytestmark = pytest.mark.skipif(
    not _registered(),
    reason="video.match is not registered: add `video = \"engines.video2music.commands\"` to the "
           "cue_studio.plugins entry points in pyproject.toml and reinstall",
)


def _studio(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "STUDIO_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "engines.cli", "--home", str(home), *args],
                          capture_output=True, text=True, env=env, timeout=120)


def test_cli_match_refine_export(tmp_path: Path) -> None:
    from v2m_helpers import add_tracks, fast_cut_clip, make_track

    from engines.core.home import DataHome

    home = DataHome(tmp_path / "home")
    add_tracks(home, [dict(name="fast", path=make_track(tmp_path, "fast", 120, level=0.8)),
                      dict(name="slow", path=make_track(tmp_path, "slow", 60, level=0.08, tone=300))])
    clip = fast_cut_clip(tmp_path / "clip.mp4", seconds=3.0, shot=0.5)
    r = _studio(home.root, "video", "match", str(clip), "--top", "2", "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["session_id"] and len(data["results"]) == 2
    assert {"track_id", "path", "title", "score", "offset_s", "cuts_on_beat", "cuts_total",
            "matcher", "rationale"} <= set(data["results"][0])
    r = _studio(home.root, "video", "refine", data["session_id"], "--text", "not that one", "--json")
    assert r.returncode == 0, r.stderr
    again = json.loads(r.stdout)
    assert data["results"][0]["track_id"] not in [x["track_id"] for x in again["results"]]
    out = tmp_path / "music.wav"
    r = _studio(home.root, "video", "export", data["session_id"], "1", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert out.stat().st_size > 1000
    r = _studio(home.root, "video", "match", str(tmp_path / "nope.mp4"), "--json")
    assert r.returncode == 1 and "nope.mp4" in r.stderr
