"""Prompt and field parsing of the generate engine (no model needed)."""

from __future__ import annotations

import pytest

from engines.core.errors import ParameterError, ResourceLimitError
from engines.generate import theory
from engines.generate.controls import parse_text, resolve_controls


def resolve(text: str = "", **kw):
    return resolve_controls(text, use_embedder=False, **kw)


def test_full_prompt_resolves_every_control() -> None:
    c = resolve("melancholic piano and strings in D minor, 70 bpm, 3/4, chords Dm Bb F A, 16 bars")
    d = c.to_dict()
    assert d["key"] == "Dm" and d["mode"] == "minor"
    assert d["tempo"] == 70 and d["meter"] == "3/4" and d["bars"] == 16
    assert d["chords"] == ["Dm", "Bb", "F", "A"]
    assert d["instruments"] == ["piano", "strings"]
    assert d["mood"] == "melancholic"
    assert d["drums"] is False  # instruments were listed and drums were not
    assert d["sources"]["key"] == "text" and d["sources"]["tempo"] == "text"


@pytest.mark.parametrize(("text", "name", "mode"), [
    ("a tune in F# major", "F#", "major"), ("in Bb, 100 bpm", "Bb", "major"), ("key of Ebm", "Ebm", "minor"),
    ("something in A minor", "Am", "minor"), ("G dorian groove", "Gm", "dorian"), ("in C#m please", "C#m", "minor"),
])
def test_keys(text: str, name: str, mode: str) -> None:
    c = resolve(text)
    assert (c.key.name, c.key.mode) == (name, mode)


def test_chord_symbols_with_extensions_and_slash_bass() -> None:
    hd = theory.parse_chord("F#m7b5")
    assert set(hd.pcs) == {6, 9, 0, 4} and hd.root == 6
    sl = theory.parse_chord("C/G")
    assert sl.bass == 7 and sl.root == 0 and set(sl.pcs) == {0, 4, 7}
    assert set(theory.parse_chord("G7b9").pcs) == {7, 11, 2, 5, 8}
    assert set(theory.parse_chord("Bbmaj7").pcs) == {10, 2, 5, 9}
    assert set(theory.parse_chord("Dsus4").pcs) == {2, 7, 9}
    assert set(theory.parse_chord("Cadd9").pcs) == {0, 4, 7, 2}
    assert theory.parse_chord("Ebm9").simplified() == "Eb:min7"
    c = resolve(chords="Am F/A C G7sus4")
    assert c.chords == ("Am", "F/A", "C", "G7sus4")


@pytest.mark.parametrize("bad", ["Hm7", "Cxyz", "Q", "Am/X"])
def test_bad_chord_token_is_named(bad: str) -> None:
    with pytest.raises(ParameterError) as e:
        resolve(chords=f"Am {bad} F")
    assert bad in str(e.value)


def test_bad_chord_in_text_is_named() -> None:
    with pytest.raises(ParameterError, match="Cqq7"):
        resolve("chords Am Cqq7 F, 8 bars")


def test_bad_key_and_meter_are_named() -> None:
    with pytest.raises(ParameterError, match="H# major"):
        resolve(key="H# major")
    with pytest.raises(ParameterError, match="4/5"):
        resolve(meter="4/5")


def test_meter_tempo_bars_and_no_drums() -> None:
    c = resolve("rock in E minor 6/8 at 132 bpm, 24 bars, no drums")
    assert str(c.meter) == "6/8" and c.meter.steps_per_bar == 12 and c.meter.beats_per_bar == 2
    assert c.tempo == 132 and c.bars == 24 and c.drums is False and c.style == "rock"
    assert resolve("lofi hip hop with drums").drums is True


def test_fields_win_over_text() -> None:
    c = resolve("jazz in C, 120 bpm, 8 bars", key="Eb", tempo=96, bars=4, meter="3/4", instruments="flute, cello")
    assert (c.key.name, c.tempo, c.bars, str(c.meter)) == ("Eb", 96, 4, "3/4")
    assert c.instruments == ("flute", "cello") and c.sources["key"] == "field"


def test_key_follows_the_chords_when_not_given() -> None:
    assert resolve(chords="Am F C G").key.name == "Am"
    assert resolve(chords="G D Em C").key.name == "G"
    assert resolve("chords Dm Bb F A").key.name == "Dm"


def test_style_and_mood_words_set_defaults() -> None:
    c = resolve("lofi study music")
    assert c.style == "lofi" and 70 <= c.tempo <= 90 and c.drums
    w = resolve("a waltz")
    assert str(w.meter) == "3/4"
    sad = resolve("sad song")
    assert sad.key.is_minor and sad.mood == "melancholic"


def test_unknown_words_never_crash() -> None:
    c = resolve("blorf zzyzx quantum marmalade ü 🎵 %%")
    assert c.bars >= 1 and c.chords
    c2 = resolve_controls("blorf zzyzx quantum marmalade", use_embedder=True)  # MiniLM path
    assert c2.style
    assert parse_text("")["words"] == ""


def test_impossible_values() -> None:
    with pytest.raises(ParameterError, match="bars"):
        resolve(bars=0)
    with pytest.raises(ParameterError, match="5000"):
        resolve(tempo=5000)
    with pytest.raises(ParameterError, match="5000"):
        resolve("a song at 5000 bpm")
    with pytest.raises(ResourceLimitError):
        resolve(bars=100000)
    with pytest.raises(ParameterError, match="density"):
        resolve(density=3)


def test_controls_round_trip() -> None:
    from engines.generate.controls import Controls

    c = resolve("bossa nova in G, chords Gmaj7 Am7 D7, 12 bars")
    again = Controls.from_dict(c.to_dict())
    assert again.to_dict()["chords"] == c.to_dict()["chords"]
    assert again.key == c.key and again.tempo == c.tempo and again.style == c.style
