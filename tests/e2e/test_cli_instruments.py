"""``studio instruments ...`` as a user types it (subprocesses, real files, debug model)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

STUDIO = [sys.executable, "-m", "engines.cli"]


def _registered() -> bool:
    from engines.core.plugins import load_plugins
    from engines.core.registry import Registry

    return "instruments.find" in load_plugins(Registry())


pytestmark = pytest.mark.skipif(
    not _registered(),
    reason="instruments commands are not registered yet: add the entry point "
           "`instruments = \"engines.instruments.commands\"` to [project.entry-points.\"cue_studio.plugins\"] "
           "in pyproject.toml and reinstall (pip install -e .)",
)


def studio(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "STUDIO_HOME": str(home), "STUDIO_INSTRUMENTS_MODEL": "debug"}
    return subprocess.run([*STUDIO, *args], capture_output=True, text=True, env=env, timeout=300)


def test_add_find_render_similar_list_remove(tmp_path: Path) -> None:
    from engines.media.midi import Note, Song, Track
    from engines.media.synth import default_soundfont, render_song

    sf2 = tmp_path / "gm.sf2"
    shutil.copyfile(default_soundfont(), sf2)
    bad = tmp_path / "bad.sf2"
    bad.write_bytes(b"RIFF\x00\x10\x00\x00sfbk" + bytes(range(256)) * 16)
    song = Song(tracks=[Track("keys", 0, notes=[Note(60 + i % 8, i * 0.3, i * 0.3 + 0.25) for i in range(20)]),
                        Track("bass", 33, notes=[Note(36 + i % 5, i * 0.6, i * 0.6 + 0.5) for i in range(10)])])
    audio = tmp_path / "song.wav"
    sf.write(audio, render_song(song, sr=44100).T, 44100)
    home = tmp_path / "home"

    added = studio("instruments", "add", str(sf2), str(bad), "--json", home=home)
    assert added.returncode == 0, added.stderr
    report = json.loads(added.stdout)
    assert report["added"] > 100
    assert any("bad.sf2" in s["error"] for s in report["skipped"])

    found = studio("instruments", "find", str(audio), "--start", "0.5", "--end", "5", "--top", "3", "--json",
                   home=home)
    assert found.returncode == 0, found.stderr
    slots = json.loads(found.stdout)["slots"]
    assert slots and all(len(s["matches"]) == 3 for s in slots)
    m = slots[0]["matches"][0]
    assert {"instrument_id", "name", "kind", "source_path", "bank", "program", "sample_path", "score"} <= set(m)
    assert m["kind"] == "preset"

    out = tmp_path / "phrase.wav"
    rendered = studio("instruments", "render", str(m["instrument_id"]), "--out", str(out), "--note", "60", home=home)
    assert rendered.returncode == 0, rendered.stderr
    y, _ = sf.read(out)
    assert np.max(np.abs(y)) > 0.1

    similar = studio("instruments", "similar", str(m["instrument_id"]), "--json", home=home)
    assert similar.returncode == 0 and json.loads(similar.stdout)["matches"]

    outside = studio("instruments", "find", str(audio), "--start", "999", "--json", home=home)
    assert outside.returncode == 2  # a bad parameter is a usage error
    err = json.loads(outside.stdout)["error"]
    assert err["kind"] == "parameter_error" and "song.wav" in err["message"]

    listed = json.loads(studio("instruments", "list", "--json", home=home).stdout)["sources"]
    assert len(listed) == 2
    gm = next(s for s in listed if s["path"].endswith("gm.sf2"))
    assert studio("instruments", "remove", str(gm["id"]), home=home).returncode == 0
    left = json.loads(studio("instruments", "list", "--json", home=home).stdout)["sources"]
    assert [s["path"] for s in left] == [str(bad.resolve())]
