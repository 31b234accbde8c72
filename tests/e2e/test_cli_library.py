"""``studio library ...`` end to end, in subprocesses, as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

SR = 22050
REQUIRED = {"track_id", "path", "title", "score", "tempo", "key", "duration"}


def studio(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    return subprocess.run([sys.executable, "-m", "engines.cli", "--home", str(home), *args],
                          capture_output=True, text=True, env=env, timeout=300)


def _clicks(bpm: float, seconds: float = 5.0) -> np.ndarray:
    y = np.zeros(int(seconds * SR), np.float32)
    n = int(0.02 * SR)
    burst = np.random.default_rng(0).standard_normal(n).astype(np.float32) * np.exp(-np.linspace(0, 8, n))
    for t in np.arange(0.1, seconds - 0.1, 60.0 / bpm):
        s = int(t * SR)
        y[s:s + n] += burst[: len(y[s:s + n])]
    return 0.8 * y / np.abs(y).max()


def test_add_search_list_show_remove(tmp_path: Path) -> None:
    music = tmp_path / "music"
    music.mkdir()
    sf.write(str(music / "fast.wav"), _clicks(150), SR)
    sf.write(str(music / "slow.wav"), _clicks(70) * 0.1, SR)
    (music / "bad.flac").write_bytes(b"fLaC" + b"\x00" * 100)
    home = tmp_path / "home"

    add = studio(home, "library", "add", str(music), "--json")
    assert add.returncode == 0, add.stderr
    data = json.loads(add.stdout)
    assert data["indexed"] == 2
    assert [f["path"] for f in data["failed"]] == [str(music / "bad.flac")]

    res = studio(home, "library", "search", "fast upbeat", "--top", "5", "--json")
    assert res.returncode == 0, res.stderr
    rows = json.loads(res.stdout)
    assert len(rows) == 2 and all(REQUIRED <= set(r) for r in rows)
    assert Path(rows[0]["path"]).name == "fast.wav"

    listed = json.loads(studio(home, "library", "list", "--sort", "tempo", "--json").stdout)
    assert [Path(r["path"]).name for r in listed] == ["slow.wav", "fast.wav"]
    tid = listed[0]["track_id"]
    shown = json.loads(studio(home, "library", "show", str(tid), "--json").stdout)
    assert shown["track_id"] == tid and len(shown["peaks"]) == 600 and shown["beats"]

    rm = studio(home, "library", "remove", str(tid), "--json")
    assert rm.returncode == 0, rm.stderr
    assert json.loads(rm.stdout)["removed"] == tid
    assert len(json.loads(studio(home, "library", "list", "--json").stdout)) == 1
    missing = studio(home, "library", "show", str(tid), "--json")
    assert missing.returncode == 1 and json.loads(missing.stdout)["error"]["kind"] == "not_found"


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert studio(home, "library", "search").returncode == 2
    assert studio(home, "library", "search", "x", "--top", "0").returncode == 2
    assert studio(home, "library", "add").returncode == 2
    assert studio(home, "library", "list", "--sort", "colour").returncode == 2


def test_search_empty_library_says_what_to_do(tmp_path: Path) -> None:
    r = studio(tmp_path / "home", "library", "search", "calm piano", "--json")
    assert r.returncode == 1
    assert "studio library add" in json.loads(r.stdout)["error"]["message"]
