"""``studio generate ...`` end to end (subprocess, real files, the tiny debug model)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

STUDIO = [sys.executable, "-m", "engines.cli"]


def _registered() -> bool:
    from engines.core.plugins import default_registry

    return "generate.music" in default_registry()


pytestmark = pytest.mark.skipif(
    not _registered(),
    reason="generate.music is not registered: add `generate = \"engines.generate.commands\"` to the "
           "cue_studio.plugins entry points in pyproject.toml and reinstall (pip install -e .)",
)


def studio(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "STUDIO_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    return subprocess.run([*STUDIO, "--home", str(home), *args], capture_output=True, text=True, env=env,
                          timeout=300)


def test_generate_music_json(tmp_path: Path) -> None:
    out = tmp_path / "out"
    r = studio("generate", "music", "--text", "piano and bass in A minor, 92 bpm, chords Am F C G, 4 bars",
               "--seed", "42", "--out", str(out), "--model", "debug", "--json", home=tmp_path / "home")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert Path(d["midi"]).name == "gen_Am_92bpm_pop_s42.mid" and Path(d["midi"]).is_file()
    assert Path(d["wav"]).is_file() and len(d["stems"]) == 2
    assert d["controls"]["key"] == "Am" and d["controls"]["tempo"] == 92 and d["controls"]["bars"] == 4
    assert d["controls"]["chords"] == ["Am", "F", "C", "G"] and d["controls"]["meter"] == "4/4"
    assert d["controls"]["instruments"] == ["piano", "electric bass"]


def test_generate_controls_and_bad_input(tmp_path: Path) -> None:
    home = tmp_path / "home"
    r = studio("generate", "controls", "--text", "waltz in Eb, chords Eb Bb7 Eb", "--json", home=home)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["meter"] == "3/4" and d["key"] == "Eb" and d["chords"] == ["Eb", "Bb7", "Eb"]
    out = tmp_path / "out"
    bad = studio("generate", "music", "--chords", "Am H7", "--out", str(out), "--model", "debug", "--json",
                 home=home)
    assert bad.returncode == 2 and "H7" in bad.stderr
    assert json.loads(bad.stdout)["error"]["kind"] == "parameter_error"
    fast = studio("generate", "music", "--tempo", "5000", "--out", str(out), "--model", "debug", home=home)
    assert fast.returncode == 2 and "5000" in fast.stderr
    assert not out.exists() or not any(out.iterdir())
