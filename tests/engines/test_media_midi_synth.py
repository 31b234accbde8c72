"""MIDI round trip, guarded reading, SoundFont rendering, isolated SoundFont checks."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from engines.core.errors import CorruptFileError, ParameterError, ResourceLimitError, UnsupportedFormatError
from engines.media.midi import Note, Song, Track, read_midi, write_midi
from engines.media.synth import (
    check_soundfont,
    default_soundfont,
    render_midi_file,
    render_song,
    render_stems,
)


def demo_song() -> Song:
    melody = [Note(pitch=69, start=i * 0.5, end=i * 0.5 + 0.45, velocity=90 + i) for i in range(8)]
    bass = [Note(pitch=45, start=0.0, end=2.0, velocity=80), Note(pitch=41, start=2.0, end=4.0, velocity=80)]
    drums = [Note(pitch=36, start=i * 0.5, end=i * 0.5 + 0.1, velocity=110) for i in range(8)]
    return Song(
        tracks=[Track("Lead", 73, False, melody), Track("Bass", 33, False, bass), Track("Kit", 0, True, drums)],
        tempo=96.0, time_signature=(3, 4), key="F#m", tempo_changes=[(2.5, 120.0)], title="Demo",
    )


def test_midi_round_trip(tmp_path: Path) -> None:
    song = demo_song()
    path = write_midi(song, tmp_path / "demo.mid")
    assert path.read_bytes()[:4] == b"MThd"
    back = read_midi(path)
    assert back.tempo == pytest.approx(96.0, abs=1e-3)
    assert back.time_signature == (3, 4) and back.key == "F#m" and back.title == "Demo"
    assert len(back.tempo_changes) == 1
    assert back.tempo_changes[0][0] == pytest.approx(2.5, abs=0.01)
    assert back.tempo_changes[0][1] == pytest.approx(120.0, abs=0.01)
    assert [(t.name, t.program, t.is_drum) for t in back.tracks] == [
        ("Lead", 73, False), ("Bass", 33, False), ("Kit", 0, True)]
    tick = 60.0 / (120.0 * song.ticks_per_beat)  # the shortest tick in the song
    for a, b in zip(song.tracks, back.tracks, strict=True):
        assert len(a.notes) == len(b.notes)
        for x, y in zip(a.notes, b.notes, strict=True):
            assert (x.pitch, x.velocity) == (y.pitch, y.velocity)
            assert abs(x.start - y.start) <= tick and abs(x.end - y.end) <= tick
    import mido

    mid = mido.MidiFile(str(path))
    assert mid.type == 1 and len(mid.tracks) == 4
    kinds = {m.type for m in mid.tracks[0]}
    assert {"set_tempo", "time_signature", "key_signature"} <= kinds
    assert all(m.channel == 9 for m in mid.tracks[3] if hasattr(m, "channel"))


def test_key_spelling_and_bad_song(tmp_path: Path) -> None:
    song = Song(tracks=[Track("x", 0, False, [Note(60, 0, 1, 100)])], key="A# minor")
    assert read_midi(write_midi(song, tmp_path / "k.mid")).key == "A#m"
    song.key = "H"
    with pytest.raises(ParameterError, match="k.mid.*unknown key"):
        write_midi(song, tmp_path / "k.mid")
    song.key = "C"
    song.tracks[0].notes.append(Note(200, 0, 1, 100))
    with pytest.raises(ParameterError, match="pitch 200"):
        write_midi(song, tmp_path / "k.mid")


def _smf(track: bytes, *, division: int = 480) -> bytes:
    return b"MThd" + struct.pack(">IHHH", 6, 0, 1, division) + b"MTrk" + struct.pack(">I", len(track)) + track


def test_hostile_midi(tmp_path: Path) -> None:
    text = tmp_path / "song.mid"
    text.write_text("hello")
    with pytest.raises(UnsupportedFormatError, match="song.mid: not a MIDI file"):
        read_midi(text)
    many = tmp_path / "many.mid"
    many.write_bytes(_smf(b"\x00\x90\x3c\x40" + b"\x00\x3c\x00\x00\x3c\x40" * 3000))
    with pytest.raises(ResourceLimitError, match="many.mid.*more than 1,000 events"):
        read_midi(many, max_events=1000)
    far = tmp_path / "far.mid"  # delta times of 2^28 - 1 ticks: thousands of hours
    far.write_bytes(_smf((b"\xff\xff\xff\x7f\x90\x3c\x40" + b"\xff\xff\xff\x7f\x80\x3c\x40") * 4))
    with pytest.raises(ResourceLimitError, match="far.mid.*hours"):
        read_midi(far)
    bad = tmp_path / "bad.mid"
    bad.write_bytes(_smf(b"\x00\x3c\x40"))  # a data byte with no status
    with pytest.raises(CorruptFileError, match="bad.mid"):
        read_midi(bad)
    cut = tmp_path / "cut.mid"  # truncated in the middle of a track: keep what is there
    full = write_midi(demo_song(), tmp_path / "full.mid").read_bytes()
    cut.write_bytes(full[: len(full) - 30])
    assert sum(len(t.notes) for t in read_midi(cut).tracks) > 0


def test_render_song_pitch_speed_and_stems(tmp_path: Path) -> None:
    import time

    song = Song(tracks=[Track("Piano", 0, False, [Note(69, i * 0.5, i * 0.5 + 0.45, 100) for i in range(20)])])
    render_song(song, sr=22050)  # warm the SoundFont load
    t0 = time.perf_counter()
    y = render_song(song, sr=44100)
    elapsed = time.perf_counter() - t0
    assert elapsed < 1.0
    assert y.shape[0] == 2 and y.dtype == np.float32
    assert abs(y.shape[1] / 44100 - (song.duration + 1.0)) < 0.01
    assert np.max(np.abs(y)) == pytest.approx(10 ** (-1 / 20), abs=1e-3)
    mono = y.mean(axis=0)[: 44100 * 4]
    spec = np.abs(np.fft.rfft(mono))
    freqs = np.fft.rfftfreq(len(mono), 1 / 44100)
    assert abs(freqs[spec.argmax()] - 440.0) < 5
    assert render_song(song, stereo=False).shape[0] == 1

    stems = render_stems(demo_song(), sr=22050)
    assert set(stems) == {"Lead", "Bass", "Kit"}
    lengths = {s.shape for s in stems.values()}
    assert len(lengths) == 1
    assert all(np.sqrt(np.mean(s**2)) > 1e-3 for s in stems.values())
    mix = sum(stems.values())
    assert np.max(np.abs(mix)) == pytest.approx(10 ** (-1 / 20), abs=1e-3)

    path = write_midi(demo_song(), tmp_path / "d.mid")
    z = render_midi_file(path, sr=22050, soundfont=default_soundfont())
    assert z.shape[0] == 2 and np.sqrt(np.mean(z**2)) > 0.01


def test_check_soundfont(tmp_path: Path) -> None:
    presets = check_soundfont(default_soundfont())
    assert (0, 0, presets[0][2]) == presets[0] and any(b == 128 for b, _, _ in presets)
    assert check_soundfont(default_soundfont()) == presets  # cached
    fake = tmp_path / "fake.sf2"
    fake.write_text("not a soundfont")
    with pytest.raises(UnsupportedFormatError, match="fake.sf2"):
        check_soundfont(fake)
    broken = tmp_path / "broken.sf2"  # right magic, garbage body
    broken.write_bytes(b"RIFF" + struct.pack("<I", 4000) + b"sfbk" + b"LIST" + struct.pack("<I", 9999) + bytes(300))
    with pytest.raises(CorruptFileError, match="broken.sf2"):
        check_soundfont(broken)
    with pytest.raises(CorruptFileError, match="broken.sf2"):
        render_song(demo_song(), soundfont=broken)
