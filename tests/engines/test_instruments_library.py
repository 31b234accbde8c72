"""Instrument sources and search, as a user drives them (debug model, tiny generated media)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from engines.core.errors import (
    CorruptFileError,
    InputError,
    NotFoundError,
    ParameterError,
    ResourceLimitError,
    UnsupportedFormatError,
)
from engines.core.home import DataHome
from engines.core.jobs import JobContext
from engines.core.plugins import load_plugins
from engines.core.registry import Registry
from engines.instruments.engine import Engine, FindRequest
from engines.instruments.library import InstrumentLibrary
from engines.media.midi import Note, Song, Track
from engines.media.synth import default_soundfont, render_song

MATCH_FIELDS = {"instrument_id", "name", "kind", "source_path", "bank", "program", "sample_path", "score"}


def _song(*tracks: tuple[int, bool, int], seconds: float = 6.0) -> Song:
    out = []
    for program, drum, base in tracks:
        notes = [Note(base + (0, 4, 7, 12)[i % 4], i * 0.25, i * 0.25 + 0.24, 90) for i in range(int(seconds * 4))]
        out.append(Track(name=f"p{program}", program=program, is_drum=drum, notes=notes))
    return Song(tracks=out, tempo=120)


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("instruments_media")
    good = root / "TimGM6mb.sf2"
    shutil.copyfile(default_soundfont(), good)
    truncated = root / "truncated.sf2"
    truncated.write_bytes(good.read_bytes()[:60_000])
    garbage = root / "garbage.sf2"
    rng = np.random.default_rng(0)
    garbage.write_bytes(b"RIFF" + (50_000).to_bytes(4, "little") + b"sfbk" + rng.bytes(50_000))
    samples = root / "samples"
    samples.mkdir()
    for name, tracks in (("piano_loop", [(0, False, 60)]), ("bass_loop", [(33, False, 36)]),
                         ("drum_loop", [(0, True, 36)]), ("strings_pad", [(48, False, 55)])):
        y = render_song(_song(*tracks, seconds=2.0), sr=22050, stereo=False, tail=0.3)
        sf.write(samples / f"{name}.wav", y[0], 22050, subtype="PCM_16")
    sf.write(samples / "silence.wav", np.zeros(22050, np.float32), 22050)
    (samples / "notes.wav").write_text("not audio at all")
    song = root / "song.wav"
    sf.write(song, render_song(_song((0, False, 60), (33, False, 36), (0, True, 36)), sr=44100).T, 44100)
    silent = root / "silent.wav"
    sf.write(silent, np.zeros(44100 * 4, np.float32), 44100)
    long = root / "two_hours.wav"  # 2 h at 1 kHz, 8 bits: 7 MB
    with sf.SoundFile(long, "w", samplerate=1000, channels=1, subtype="PCM_U8") as fh:
        block = (0.1 * np.sin(np.arange(600_000) / 3.0)).astype(np.float32)
        for _ in range(12):
            fh.write(block)
    return {"root": root, "sf": good, "truncated": truncated, "garbage": garbage, "samples": samples,
            "song": song, "silent": silent, "long": long}


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine.from_pretrained("debug")


@pytest.fixture(scope="module")
def indexed(media: dict[str, Path], engine: Engine, tmp_path_factory: pytest.TempPathFactory):
    home = DataHome(tmp_path_factory.mktemp("instruments_home"))
    lib = InstrumentLibrary(home, engine)
    report = lib.add([media["sf"], media["truncated"], media["garbage"], media["samples"]])
    yield lib, report
    lib.close()


def test_add_indexes_good_sources_and_reports_bad_files(indexed, media) -> None:
    lib, report = indexed
    by_path = {s["path"]: s for s in report.sources}
    assert by_path[str(media["sf"].resolve())]["instruments"] > 100  # every preset of the GM SoundFont
    assert by_path[str(media["samples"].resolve())]["instruments"] == 4
    skipped = {Path(s["path"]).name: s for s in report.skipped}
    for bad in ("truncated.sf2", "garbage.sf2", "silence.wav", "notes.wav"):
        assert bad in skipped, report.skipped
        assert bad in skipped[bad]["error"]  # every error names its file
    assert skipped["garbage.sf2"]["kind"] in ("corrupt_file", "unsupported_format")
    listed = {s["path"]: s for s in lib.list_sources()}
    assert listed[str(media["garbage"].resolve())]["instruments"] == 0
    assert listed[str(media["garbage"].resolve())]["errors"] == 1


def test_second_add_is_a_no_op(indexed, media) -> None:
    lib, first = indexed
    gen = lib.generation
    again = lib.add([media["sf"], media["samples"]])
    assert again.added == 0 and again.removed == 0 and again.files_indexed == 0
    assert again.files_unchanged == 1 + 6
    assert lib.generation == gen


def test_add_remove_round_trip_keeps_other_sources(tmp_path: Path, media, engine) -> None:
    folder = tmp_path / "kit"
    shutil.copytree(media["samples"], folder)
    progress: list[float] = []
    home = DataHome(tmp_path / "home")
    with InstrumentLibrary(home, engine) as lib:
        ctx = JobContext(home=home, on_progress=lambda f, _m: progress.append(f))
        first = lib.add([folder, media["samples"] / "piano_loop.wav"], ctx)
        assert first.added == 5 and progress[-1] == 1.0
        # a new file is indexed, a deleted one dropped, the rest untouched
        ids_before = {i["instrument_id"] for s in lib.list_sources(instruments=True) for i in s["items"]}
        shutil.copyfile(folder / "bass_loop.wav", folder / "bass_copy.wav")
        (folder / "drum_loop.wav").unlink()
        second = lib.add([folder])
        assert (second.added, second.removed, second.files_indexed) == (1, 1, 1)
        sources = lib.list_sources(instruments=True)
        ids_after = {i["instrument_id"] for s in sources for i in s["items"]}
        assert len(ids_before - ids_after) == 1 and len(ids_after - ids_before) == 1
        gone = lib.remove(sources[0]["id"])
        assert gone["instruments_removed"] == 4
        left = lib.list_sources()
        assert [s["kind"] for s in left] == ["file"] and left[0]["instruments"] == 1
        with pytest.raises(NotFoundError):
            lib.remove(sources[0]["id"])
        with pytest.raises(NotFoundError, match="nowhere"):
            lib.add([tmp_path / "nowhere"])
        (tmp_path / "doc.txt").write_text("hello")
        with pytest.raises(UnsupportedFormatError, match="doc.txt"):
            lib.add([tmp_path / "doc.txt"])


def test_find_returns_slots_with_matches_in_the_json_contract(indexed, media) -> None:
    lib, _ = indexed
    result = lib.engine.find(FindRequest(str(media["song"]), top_k=3), library=lib)
    data = json.loads(json.dumps(result.to_dict()))
    assert data["slots"], "a song with three parts yields at least one instrument"
    for slot in data["slots"]:
        assert 0 <= slot["note"] <= 127 and 0 < slot["coverage"] <= 1
        assert 1 <= len(slot["matches"]) <= 3
        scores = [m["score"] for m in slot["matches"]]
        assert scores == sorted(scores, reverse=True)
        for m in slot["matches"]:
            assert set(m) == MATCH_FIELDS
            assert m["kind"] in ("preset", "sample")
            if m["kind"] == "preset":
                assert isinstance(m["bank"], int) and isinstance(m["program"], int) and m["sample_path"] is None
                assert m["source_path"] == str(media["sf"].resolve())
            else:
                assert Path(m["sample_path"]).is_file() and m["bank"] is None


def test_find_region_and_bad_audio_errors_name_the_file(indexed, media) -> None:
    lib, _ = indexed
    region = lib.engine.find(FindRequest(str(media["song"]), start=1.0, end=4.0), library=lib)
    assert region.start == 1.0 and abs(region.end - 4.0) < 0.05
    with pytest.raises(ParameterError, match="song.wav.*only"):
        lib.engine.find(FindRequest(str(media["song"]), start=500), library=lib)
    with pytest.raises(ParameterError, match="song.wav"):
        lib.engine.find(FindRequest(str(media["song"]), start=3, end=2), library=lib)
    with pytest.raises(InputError, match="silent.wav.*silent"):
        lib.engine.find(FindRequest(str(media["silent"])), library=lib)
    with pytest.raises(ResourceLimitError, match=r"two_hours.wav.*2\.0 h"):
        lib.engine.find(FindRequest(str(media["long"])), library=lib)
    # a region of the 2-hour file is fine
    ok = lib.engine.find(FindRequest(str(media["long"]), start=3600, end=3606), library=lib)
    assert ok.start == 3600
    with pytest.raises(NotFoundError):
        lib.engine.find(FindRequest(str(media["root"] / "missing.wav")), library=lib)


def test_clipped_audio_is_searched_with_a_warning(indexed, tmp_path) -> None:
    lib, _ = indexed
    y = np.clip(3 * np.sin(np.arange(44100 * 3) * 2 * np.pi * 220 / 44100), -1, 1).astype(np.float32)
    sf.write(tmp_path / "clipped.wav", y, 44100)
    result = lib.engine.find(FindRequest(str(tmp_path / "clipped.wav")), library=lib)
    assert result.slots and any("clipped" in w for w in result.warnings)


def test_render_writes_a_preset_phrase_and_the_sample(indexed, tmp_path) -> None:
    lib, _ = indexed
    items = [i for s in lib.list_sources(instruments=True) for i in s["items"]]
    preset = next(i for i in items if i["kind"] == "preset" and i["bank"] == 0 and i["program"] == 0)
    out = lib.render(preset["instrument_id"], tmp_path / "piano.wav", note=72)
    y, sr = sf.read(out)
    assert sr == 44100 and y.shape[1] == 2 and np.max(np.abs(y)) > 0.3
    default = lib.render(preset["instrument_id"])
    assert default.parent == lib.home.exports and default.name.endswith(".wav")
    sample = next(i for i in items if i["kind"] == "sample")
    y2, _ = sf.read(lib.render(sample["instrument_id"], tmp_path / "s.wav"))
    assert np.max(np.abs(y2)) > 0.1
    with pytest.raises(ParameterError):
        lib.render(preset["instrument_id"], tmp_path / "x.wav", note=200)
    with pytest.raises(NotFoundError):
        lib.render(10**9)


def test_more_like_this_excludes_the_instrument(indexed) -> None:
    lib, _ = indexed
    items = [i for s in lib.list_sources(instruments=True) for i in s["items"]]
    target = items[5]["instrument_id"]
    matches = lib.similar(target, k=4)
    assert len(matches) == 4 and target not in {m.instrument_id for m in matches}


def test_commands_through_the_registry(media, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("STUDIO_INSTRUMENTS_MODEL", "debug")
    reg = load_plugins(Registry(), extra_modules=("engines.instruments.commands",))
    assert {"instruments.add", "instruments.list", "instruments.remove", "instruments.find",
            "instruments.render", "instruments.similar"} <= {c.id for c in reg.all()}
    ctx = JobContext(home=DataHome(tmp_path / "home"))
    added = reg.run("instruments.add", ctx, {"paths": [str(media["samples"])]})
    assert added.data["added"] == 4 and len(added.data["skipped"]) == 2
    found = reg.run("instruments.find", ctx, {"audio": str(media["song"]), "top": 2})
    assert {"slots", "audio", "start", "end"} <= set(found.data)
    first = found.data["slots"][0]["matches"][0]
    assert first["kind"] == "sample"
    rendered = reg.run("instruments.render", ctx, {"id": first["instrument_id"], "out": str(tmp_path / "r.wav")})
    assert rendered.files == [str(tmp_path / "r.wav")]
    similar = reg.run("instruments.similar", ctx, {"id": first["instrument_id"], "top": 2})
    assert len(similar.data["matches"]) == 2
    listed = reg.run("instruments.list", ctx, {})
    assert listed.data["sources"][0]["instruments"] == 4
    reg.run("instruments.remove", ctx, {"id": listed.data["sources"][0]["id"]})
    assert reg.run("instruments.list", ctx, {}).data["sources"] == []


def test_corrupt_soundfont_is_an_error_naming_it(media) -> None:
    from engines.media.synth import check_soundfont

    with pytest.raises((CorruptFileError, UnsupportedFormatError), match="garbage.sf2"):
        check_soundfont(media["garbage"])
