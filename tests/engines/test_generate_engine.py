"""The generate engine as a user drives it, with the tiny debug model (seconds on CPU)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from engines.core.errors import CancelledError, EngineError, InputError, ParameterError, ResourceLimitError
from engines.core.jobs import CancelToken
from engines.generate import theory
from engines.generate.engine import Engine, GenerateRequest
from engines.media.midi import Note, Song, Track, read_midi, write_midi

PROMPT = "lofi piano in A minor, 92 bpm, chords Am7 Dm7 G7 Cmaj7, 4 bars"


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine.from_pretrained("debug")


@pytest.fixture(scope="module")
def generated(engine: Engine, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("gen")
    return engine.generate(GenerateRequest(text=PROMPT, instruments="piano,strings,bass,drums", seed=42,
                                           out_dir=str(out)))


def _melody(path: Path, *, bars: int = 4, tempo: float = 100.0) -> Path:
    beat = 60.0 / tempo
    pitches = [69, 72, 76, 74, 72, 71, 69, 67, 65, 69, 72, 74, 76, 74, 72, 69][: bars * 4]
    notes = [Note(p, i * beat, (i + 1) * beat - 0.05, 90) for i, p in enumerate(pitches)]
    song = Song(tracks=[Track(name="my melody", program=73, notes=notes)], tempo=tempo, time_signature=(4, 4),
                key="Am")
    return write_midi(song, path)


def test_result_files_and_names(generated) -> None:
    r = generated
    assert Path(r.midi).name == "gen_Am_92bpm_lofi_s42.mid"
    assert Path(r.wav).name == "gen_Am_92bpm_lofi_s42.wav"
    assert r.controls["key"] == "Am" and r.controls["tempo"] == 92 and r.controls["bars"] == 4
    assert r.controls["chords"] == ["Am7", "Dm7", "G7", "Cmaj7"]
    assert len(r.stems) == 4 and all(Path(s).is_file() for s in r.stems)
    assert "constraint_layer" in r.notes and r.notes["tracks"]
    assert not [p for p in Path(r.midi).parent.iterdir() if p.name.endswith(".part")]


def test_wav_is_decodable_and_not_silent(generated) -> None:
    y, sr = sf.read(generated.wav)
    assert sr == 44100 and y.ndim == 2 and y.shape[1] == 2
    assert np.sqrt(np.mean(y ** 2)) > 1e-3
    expected = 4 * 4 * 60 / 92
    assert expected <= len(y) / sr <= expected + 3
    for s in generated.stems:
        ys, _ = sf.read(s)
        assert ys.shape == y.shape


def test_midi_meta_tracks_and_key(generated) -> None:
    song = read_midi(generated.midi)
    assert abs(song.tempo - 92) < 0.01
    assert tuple(song.time_signature) == (4, 4)
    assert song.key == "Am"
    names = [t.name for t in song.tracks]
    assert names == ["piano", "strings", "electric bass", "drums"]
    assert [t.program for t in song.tracks[:3]] == [0, 48, 33] and song.tracks[3].is_drum
    allowed = set(theory.Key(9, "minor").scale)
    for c in ("Am7", "Dm7", "G7", "Cmaj7"):
        allowed |= set(theory.parse_chord(c).pcs)
    pitched = [n for t in song.tracks if not t.is_drum for n in t.notes]
    assert pitched and all(n.pitch % 12 in allowed for n in pitched)
    # every note sits inside the requested 4 bars
    assert max(n.end for n in pitched) <= 4 * 4 * 60 / 92 + 0.3


def test_same_seed_same_bytes_and_other_seed_differs(engine: Engine, tmp_path: Path) -> None:
    req = GenerateRequest(text="classical in F major, 3/4, 6 bars", seed=7, render=False)
    a = engine.generate(GenerateRequest(**{**req.__dict__, "out_dir": str(tmp_path / "a")}))
    b = engine.generate(GenerateRequest(**{**req.__dict__, "out_dir": str(tmp_path / "b")}))
    c = engine.generate(GenerateRequest(**{**req.__dict__, "out_dir": str(tmp_path / "c"), "seed": 8}))
    assert Path(a.midi).read_bytes() == Path(b.midi).read_bytes()
    assert Path(a.midi).read_bytes() != Path(c.midi).read_bytes()
    song = read_midi(a.midi)
    assert tuple(song.time_signature) == (3, 4) and song.key == "F"
    assert a.wav is None and a.stems == []


def test_arrangement_keeps_the_melody_note_for_note(engine: Engine, tmp_path: Path) -> None:
    src = _melody(tmp_path / "melody.mid")
    r = engine.generate(GenerateRequest(midi=str(src), style="pop", seed=3, out_dir=str(tmp_path / "out"),
                                        render=False))
    given = read_midi(src).tracks[0]
    out = read_midi(r.midi)
    kept = [t for t in out.tracks if t.name == "my melody"]
    assert len(kept) == 1
    assert [(n.pitch, round(n.start, 3), round(n.end, 3), n.velocity) for n in kept[0].notes] == \
           [(n.pitch, round(n.start, 3), round(n.end, 3), n.velocity) for n in given.notes]
    assert len(out.tracks) >= 3  # harmony, bass (and drums) were added
    assert r.controls["key"] in ("Am", "C") and r.controls["sources"]["chords"] == "estimated"
    assert abs(out.tempo - 100) < 0.01
    roles = {role for t in r.notes["tracks"] for role in t["roles"]}
    assert {"harmony", "bass"} <= roles


def test_regenerate_one_track_keeps_the_others(engine: Engine, generated, tmp_path: Path) -> None:
    r = engine.regenerate_track(generated.midi, "strings", GenerateRequest(seed=99, out_dir=str(tmp_path),
                                                                              render=False))
    before = {t.name: t for t in read_midi(generated.midi).tracks}
    after = {t.name: t for t in read_midi(r.midi).tracks}
    assert set(before) == set(after)
    for name in ("piano", "electric bass", "drums"):
        assert [(n.pitch, round(n.start, 3)) for n in before[name].notes] == \
               [(n.pitch, round(n.start, 3)) for n in after[name].notes]
    assert [(n.pitch, round(n.start, 3)) for n in before["strings"].notes] != \
           [(n.pitch, round(n.start, 3)) for n in after["strings"].notes]
    with pytest.raises(EngineError, match="no track named"):
        engine.regenerate_track(generated.midi, "kazoo", GenerateRequest(out_dir=str(tmp_path)))


def test_continue_piece_appends_bars(engine: Engine, generated, tmp_path: Path) -> None:
    r = engine.continue_piece(generated.midi, 4, GenerateRequest(seed=5, out_dir=str(tmp_path), render=False))
    assert r.controls["bars"] == 8
    before = {t.name: t for t in read_midi(generated.midi).tracks}
    after = {t.name: t for t in read_midi(r.midi).tracks}
    bar_s = 4 * 60 / 92
    for name, t in before.items():
        old = [(n.pitch, round(n.start, 3)) for n in t.notes]
        new = [(n.pitch, round(n.start, 3)) for n in after[name].notes]
        assert new[: len(old)] == old
    assert max(n.end for t in after.values() for n in t.notes) > 5 * bar_s


def _empty(d: Path) -> bool:
    return not d.exists() or not any(d.iterdir())


@pytest.mark.parametrize(("kw", "err", "match"), [
    ({"bars": 0}, ParameterError, "bars"),
    ({"tempo": 5000}, ParameterError, "5000"),
    ({"bars": 10**6}, ResourceLimitError, "too long"),
    ({"chords": "Am Zz9"}, ParameterError, "Zz9"),
    ({"key": "X minor"}, ParameterError, "X minor"),
])
def test_bad_values_write_nothing(engine: Engine, tmp_path: Path, kw, err, match) -> None:
    out = tmp_path / "out"
    with pytest.raises(err, match=match):
        engine.generate(GenerateRequest(text="pop", out_dir=str(out), **kw))
    assert _empty(out)


def test_bad_midi_inputs_name_the_file_and_write_nothing(engine: Engine, tmp_path: Path) -> None:
    out = tmp_path / "out"
    empty = write_midi(Song(tracks=[Track(name="silence")], tempo=120), tmp_path / "empty.mid")
    drums = write_midi(Song(tracks=[Track(name="kit", is_drum=True, notes=[Note(36, i * 0.5, i * 0.5 + 0.1, 100)
                                                                          for i in range(8)])]), tmp_path / "d.mid")
    garbage = tmp_path / "garbage.mid"
    garbage.write_bytes(b"MThd\x00\x00\x00\x06 not really")
    for path, match in ((empty, "no notes"), (drums, "only drums"), (garbage, None)):
        with pytest.raises(InputError, match=match) as e:
            engine.generate(GenerateRequest(midi=str(path), out_dir=str(out)))
        assert e.value.path and Path(e.value.path).name == path.name
        assert _empty(out)
    long = _melody(tmp_path / "m.mid")
    with pytest.raises(ResourceLimitError):
        engine.generate(GenerateRequest(midi=str(long), bars=5000, out_dir=str(out)))
    assert _empty(out)


def test_cancel_leaves_no_files(engine: Engine, tmp_path: Path) -> None:
    tok = CancelToken()
    tok.cancel()
    out = tmp_path / "out"
    with pytest.raises(CancelledError):
        engine.generate(GenerateRequest(text="pop in C, 4 bars", out_dir=str(out)), cancel=tok)
    assert not [p for p in out.iterdir()] if out.exists() else True


def test_user_soundfont_is_used(engine: Engine, tmp_path: Path) -> None:
    from engines.media.synth import default_soundfont

    r = engine.generate(GenerateRequest(text="piano in C, 2 bars", soundfont=str(default_soundfont()),
                                        out_dir=str(tmp_path), stems=False))
    assert r.wav and Path(r.wav).stat().st_size > 1000 and r.stems == []
    with pytest.raises(EngineError, match="SoundFont"):
        engine.generate(GenerateRequest(text="piano", soundfont=str(tmp_path / "nope.sf2"), out_dir=str(tmp_path)))


def test_default_model_loads_if_shipped() -> None:
    from engines.generate.engine import MODELS_DIR

    if not (MODELS_DIR / "model.safetensors").exists():
        pytest.skip("no shipped weights in this checkout")
    eng = Engine.from_pretrained("default")
    assert eng.model.cfg.in_channels == 24
    size = os.path.getsize(MODELS_DIR / "model.safetensors")
    assert size < 20 * 2**20


def _pitched_notes(path: str) -> dict[str, int]:
    return {t.name: len(t.notes) for t in read_midi(path).tracks if not t.is_drum}


def test_density_control_sets_how_many_notes(engine: Engine, tmp_path: Path) -> None:
    text = "classical string quartet in C major, 100 bpm, chords C F G C, 8 bars"
    counts = {}
    for d in (0.1, 0.5, 0.9):
        r = engine.generate(GenerateRequest(text=text, density=d, seed=5, out_dir=str(tmp_path / f"d{d}"),
                                            render=False))
        assert r.controls["density"] == d
        counts[d] = _pitched_notes(r.midi)
    per_bar = {d: sum(c.values()) / 8 for d, c in counts.items()}
    assert per_bar[0.1] < per_bar[0.5] < per_bar[0.9]
    # every track thins out, and the middle setting is near the corpus (about 17 notes a bar
    # over all voices), not a note on every 16th of every voice (48 a bar for three voices)
    assert all(counts[0.1][n] < counts[0.9][n] for n in counts[0.9])
    assert 8 <= per_bar[0.5] <= 24
    pop = {d: _pitched_notes(engine.generate(GenerateRequest(
        text="pop piano, strings and bass in A minor, 110 bpm, chords Am F C G, 4 bars", density=d, seed=1,
        out_dir=str(tmp_path / f"p{d}"), render=False)).midi) for d in (0.1, 0.9)}
    assert sum(pop[0.1].values()) < sum(pop[0.9].values())  # comping and bass patterns follow it too


def _grid_melody(path: Path, bars: list[list[int]], *, tempo: float = 120.0) -> Path:
    beat = 60.0 / tempo
    notes = [Note(p, (4 * b + i) * beat, (4 * b + i + 1) * beat - 0.02, 90)
             for b, ps in enumerate(bars) for i, p in enumerate(ps)]
    return write_midi(Song(tracks=[Track(name="tune", program=73, notes=notes)], tempo=tempo,
                           time_signature=(4, 4)), path)


def test_arrangement_harmonises_the_melody_bar_by_bar(engine: Engine, tmp_path: Path) -> None:
    # a G major tune whose bars outline I, IV, V, vi, ii, V, I (arpeggios plus passing tones)
    bars = [[67, 71, 74, 71], [72, 76, 79, 76], [74, 78, 81, 78], [76, 79, 83, 79],
            [69, 72, 76, 72], [74, 72, 71, 69], [67, 71, 74, 79]]
    src = _grid_melody(tmp_path / "tune.mid", bars)
    r = engine.generate(GenerateRequest(midi=str(src), style="classical", seed=2, out_dir=str(tmp_path / "o"),
                                        render=False))
    assert r.controls["key"] == "G" and r.controls["sources"]["chords"] == "estimated"
    assert r.controls["chords"] == ["G", "C", "D", "Em", "Am", "D", "G"]
    out = read_midi(r.midi)
    bar_s = 4 * 60.0 / 120.0
    gen = [n for t in out.tracks if t.name != "tune" and not t.is_drum for n in t.notes]
    chords = [theory.parse_chord(c) for c in r.controls["chords"]]
    # the generated parts follow those chords: their lowest note at each downbeat is the chord's
    # bass, and most of the generated notes starting on a beat are chord tones
    for b, ch in enumerate(chords):
        at = [n for n in gen if abs(n.start - b * bar_s) < 0.02]
        assert at and min(at, key=lambda n: n.pitch).pitch % 12 == ch.bass
    on_beat = [(n, chords[int(n.start // bar_s)]) for n in gen if abs(n.start / 0.5 - round(n.start / 0.5)) < 0.02]
    assert np.mean([n.pitch % 12 in ch.pcs for n, ch in on_beat]) >= 0.9


def test_cadence_ends_on_the_tonic_unless_chords_were_given(engine: Engine, tmp_path: Path) -> None:
    r = engine.generate(GenerateRequest(text="pop in D minor, 100 bpm, 6 bars", instruments="piano,bass",
                                        seed=1, out_dir=str(tmp_path / "a"), render=False))
    assert len(r.controls["chords"]) == 6 and r.controls["chords"][-2:] == ["A", "Dm"]
    assert r.controls["sources"]["chords"] == "style+cadence"
    song = read_midi(r.midi)
    bar_s = 4 * 60.0 / 100.0
    last = [n for t in song.tracks for n in t.notes if abs(n.start - 5 * bar_s) < 0.02]
    assert min(last, key=lambda n: n.pitch).pitch % 12 == 2  # the bass lands on D
    given = engine.generate(GenerateRequest(text="pop in D minor, 100 bpm, chords Dm Bb F C, 6 bars", seed=1,
                                            instruments="flute,piano,bass", out_dir=str(tmp_path / "b"),
                                            render=False))
    assert given.controls["chords"] == ["Dm", "Bb", "F", "C"]  # the user's chords are never changed
    assert given.controls["sources"]["chords"] == "text"
    # only the voicing makes the key heard: chords holding the tonic (Dm, Bb) double the D an
    # octave apart; the others (F, C) are voiced as they are, one note per chord tone
    piano = next(t for t in read_midi(given.midi).tracks if t.name == "piano")
    for bar, (pcs, has_tonic) in enumerate([({2, 5, 9}, True), ({10, 2, 5}, True), ({5, 9, 0}, False),
                                            ({0, 4, 7}, False)]):
        chord = sorted(n.pitch for n in piano.notes if abs(n.start - bar * bar_s) < 0.02)
        assert {p % 12 for p in chord} == pcs
        ds = [p for p in chord if p % 12 == 2]
        assert (len(chord) == 4 and len(ds) == 2 and ds[1] - ds[0] == 12) if has_tonic else len(chord) == 3


def test_inferred_chords_are_diatonic_and_prefer_functional_moves() -> None:
    key = theory.parse_key("C")
    meter = theory.parse_meter("4/4")
    # bar 1: C E G, bar 2: B D F (+G on the downbeat: V, not vii°), bar 3: C
    notes = [(60, 0, 4), (64, 4, 8), (67, 8, 16), (67, 16, 20), (71, 20, 24), (74, 24, 28), (65, 28, 32),
             (72, 32, 48)]
    got = [c.symbol for c in theory.infer_chords(notes, key, meter, 3)]
    assert got == ["C", "G", "C"]
    minor = [c.symbol for c in theory.infer_chords([(57, 0, 16), (56, 16, 20), (59, 20, 32), (57, 32, 48)],
                                                   theory.parse_key("Am"), meter, 3)]
    assert minor == ["Am", "E", "Am"]  # the raised leading tone makes the dominant major
