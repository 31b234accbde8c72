"""The first-party playlist plugin, end to end on a real (tiny) indexed library."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from engines.core.api import Studio
from engines.core.errors import ParameterError


def _clicks(path: Path, bpm: float, seconds: float = 6.0, sr: int = 22050) -> Path:
    y = np.zeros(int(sr * seconds), np.float32)
    for t in np.arange(0, seconds, 60.0 / bpm):
        i = int(t * sr)
        y[i:i + 400] += np.hanning(800)[400:] * np.sin(2 * np.pi * 880 * np.arange(400) / sr)
    sf.write(path, y, sr)
    return path


@pytest.fixture(scope="module")
def studio(tmp_path_factory: pytest.TempPathFactory) -> Studio:
    root = tmp_path_factory.mktemp("playlist")
    music = root / "music"
    music.mkdir()
    _clicks(music / "fast_clicks.wav", 150)
    _clicks(music / "slow_clicks.wav", 70)
    s = Studio(root / "home")
    s.run("library.add", paths=[str(music)])
    return s


def test_m3u_of_the_whole_library_lists_every_track_in_order(studio: Studio, tmp_path: Path) -> None:
    out = tmp_path / "all.m3u8"
    res = studio.run("playlist.export", out=str(out))
    lines = out.read_text("utf-8").splitlines()
    assert lines[0] == "#EXTM3U"
    paths = [ln for ln in lines if not ln.startswith("#")]
    assert sorted(Path(p).name for p in paths) == ["fast_clicks.wav", "slow_clicks.wav"]
    assert all(Path(p).is_file() for p in paths)
    assert res.files == [str(out.resolve())]


def test_csv_of_a_search_carries_analysis_columns(studio: Studio, tmp_path: Path) -> None:
    out = tmp_path / "fast.csv"
    studio.run("playlist.export", out=str(out), query="fast upbeat", top=1)
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert len(rows) == 1
    assert Path(rows[0]["path"]).name == "fast_clicks.wav"
    assert float(rows[0]["tempo"]) > 100


def test_unknown_extension_is_refused_and_nothing_written(studio: Studio, tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match="playlist.txt"):
        studio.run("playlist.export", out=str(tmp_path / "playlist.txt"))
    assert not list(tmp_path.iterdir())
