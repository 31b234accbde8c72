"""The media command set, run the way every front end runs it: through the registry."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from engines.core.errors import NotFoundError
from engines.core.home import DataHome
from engines.core.jobs import JobContext
from engines.core.plugins import default_registry, load_plugins
from engines.core.registry import Registry
from engines.media.midi import Note, Song, Track, write_midi


@pytest.fixture()
def registry() -> Registry:
    reg = default_registry()
    if "media.probe" not in reg:  # not installed with entry points: load the module directly
        reg = load_plugins(Registry(), extra_modules=("engines.media.commands",))
    return reg


def test_media_commands_are_registered(registry: Registry) -> None:
    for cid in ("media.probe", "media.render", "media.engrave"):
        cmd = registry.get(cid)
        assert cmd.plugin == "media" and isinstance(cmd.handler, str)


def test_probe_render_and_engrave(registry: Registry, tmp_path: Path) -> None:
    seen: list[float] = []
    ctx = JobContext(home=DataHome(tmp_path / "home"), on_progress=lambda f, _m: seen.append(f))

    wav = tmp_path / "tone.wav"
    sf.write(str(wav), 0.3 * np.sin(2 * np.pi * 440 * np.arange(22050) / 22050), 22050)
    res = registry.run("media.probe", ctx, {"path": str(wav)})
    assert res.data["kind"] == "audio" and res.data["duration"] == pytest.approx(1.0)
    json.dumps(res.to_dict())

    song = Song(tracks=[Track("Lead", 0, False, [Note(69, 0.0, 1.0, 100)])], tempo=90, key="Am")
    mid = write_midi(song, tmp_path / "lead.mid")
    res = registry.run("media.probe", ctx, {"path": str(mid)})
    assert res.data["kind"] == "midi" and res.data["key"] == "Am" and res.data["tracks"][0]["notes"] == 1

    res = registry.run("media.render", ctx, {"midi": str(mid), "sample_rate": 22050})
    out = Path(res.files[0])
    assert out == (tmp_path / "home" / "exports" / "lead.wav").resolve()
    info = sf.info(str(out))
    assert info.samplerate == 22050 and info.subtype == "PCM_24" and info.channels == 2
    y, _ = sf.read(str(out))
    assert np.sqrt(np.mean(y**2)) > 0.01
    assert seen and seen[-1] == 1.0

    xml = tmp_path / "one.musicxml"
    xml.write_text(
        '<?xml version="1.0"?><score-partwise version="3.1"><part-list><score-part id="P1">'
        "<part-name>P</part-name></score-part></part-list><part id=\"P1\"><measure number=\"1\">"
        "<attributes><divisions>1</divisions><time><beats>4</beats><beat-type>4</beat-type></time>"
        "<clef><sign>G</sign><line>2</line></clef></attributes><note><pitch><step>A</step>"
        "<octave>4</octave></pitch><duration>4</duration><type>whole</type></note></measure></part>"
        "</score-partwise>"
    )
    res = registry.run("media.engrave", ctx, {"score": str(xml), "png": True})
    assert res.data == {"pages": 1, "measures": 1, "title": "", "folder": res.data["folder"]}
    assert [Path(f).suffix for f in res.files] == [".svg", ".png"]
    assert Path(res.files[1]).read_bytes()[:4] == b"\x89PNG"
    res = registry.run("media.probe", ctx, {"path": str(xml)})
    assert res.data["kind"] == "score" and res.data["measures"] == 1

    with pytest.raises(NotFoundError, match="missing.mid"):
        registry.run("media.render", ctx, {"midi": str(tmp_path / "missing.mid")})
