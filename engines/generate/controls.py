"""Text -> controls: the key, mode, tempo, meter, bars, chords, instruments and style of a piece.

Explicit values in the text are parsed with rules (``"in D minor"``, ``"70 bpm"``, ``"3/4"``,
``"chords Dm Bb F A"``, ``"16 bars"``, ``"piano and strings"``, ``"no drums"``). Style and
mood words fill in what was not said (tempo, mode, instruments, density, groove): known words
are looked up directly, anything else is matched with the offline MiniLM sentence embedder
against the style and mood vocabulary (:mod:`engines.generate.style`). Unknown words never
raise; a field that *is* given but cannot be read raises :class:`ParameterError` naming it.

Fields set explicitly (the ``overrides`` of :func:`resolve_controls`) win over the text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from engines.core.errors import ParameterError, ResourceLimitError
from engines.generate import style as S
from engines.generate import theory

MIN_TEMPO, MAX_TEMPO = 20.0, 300.0
MAX_BARS = 512
MIN_SIMILARITY = 0.30


@dataclass(frozen=True)
class Controls:
    """Everything the generator follows. Returned with every result (``to_dict``)."""

    key: theory.Key
    tempo: float
    meter: theory.Meter
    bars: int
    chords: tuple[str, ...]
    instruments: tuple[str, ...]
    style: str
    density: float = 0.5
    drums: bool = True
    mood: str = ""
    sources: Mapping[str, str] = field(default_factory=dict)

    @property
    def chord_objs(self) -> list[theory.Chord]:
        return [theory.parse_chord(c) for c in self.chords]

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key.name, "mode": self.key.mode, "tempo": round(float(self.tempo), 2),
            "meter": str(self.meter), "chords": list(self.chords), "bars": self.bars,
            "instruments": list(self.instruments), "style": self.style, "mood": self.mood,
            "density": round(float(self.density), 3), "drums": self.drums, "sources": dict(self.sources),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Controls:
        return resolve_controls("", key=d.get("key"), mode=d.get("mode"), tempo=d.get("tempo"),
                                meter=d.get("meter"), chords=d.get("chords"), bars=d.get("bars"),
                                instruments=d.get("instruments"), style=d.get("style"),
                                density=d.get("density"), drums=d.get("drums"), use_embedder=False)


# text patterns -------------------------------------------------------------------------

_NOTE = r"[A-G](?:#|b|♯|♭)?"
_MODE_WORDS = r"major|minor|maj|min|dorian|mixolydian|phrygian|lydian"
_KEY_RES = [
    re.compile(rf"\b(?:in|key(?:\s+of)?\s*[:=]?)\s+({_NOTE})\s*({_MODE_WORDS}|m)?(?![\w#])"),
    re.compile(rf"(?<![\w/])({_NOTE})\s*({_MODE_WORDS})\b", re.IGNORECASE),
]
_TEMPO_RES = [re.compile(r"(\d+(?:\.\d+)?)\s*(?:bpm|beats per minute|b\.p\.m\.)", re.IGNORECASE),
              re.compile(r"\btempo\s*(?:of|=|:)?\s*(\d+(?:\.\d+)?)", re.IGNORECASE)]
_METER_RE = re.compile(r"(?<![\d/])(\d{1,2})\s*/\s*(\d{1,2})(?![\d/])")
_BARS_RE = re.compile(r"(\d+)\s*(?:bars?|measures?)\b", re.IGNORECASE)
_CHORDS_RE = re.compile(r"\b(?:chords?|progression|changes)\s*(?:of|are|is|:|=)?\s*", re.IGNORECASE)
_NO_DRUMS_RE = re.compile(r"\b(?:no|without|w/o)\s+(?:drums?|percussion|beat)\b|\bdrumless\b", re.IGNORECASE)
_WORD_RE = re.compile(r"[a-zA-Z][a-zA-Z'\-]+")


def _find_key(text: str) -> tuple[theory.Key | None, tuple[int, int] | None]:
    for rx in _KEY_RES:
        m = rx.search(text)
        if m:
            mode_word = (m.group(2) or "").lower()
            mode = {"": "major", "m": "minor", "maj": "major", "min": "minor"}.get(mode_word, mode_word)
            note = m.group(1)
            note = note[0].upper() + note[1:]
            return theory.Key(theory.pitch_class(note), mode), m.span()
    return None, None


def _find_chords(text: str) -> tuple[list[str], tuple[int, int] | None]:
    m = _CHORDS_RE.search(text)
    if not m:
        return [], None
    pos = m.end()
    out: list[str] = []
    for tok in re.finditer(r"[^\s,|;]+|[,|;]", text[pos:]):
        t = tok.group(0)
        if t in ",|;-":
            # a comma after at least one chord ends the list only if the next token is not a chord
            continue
        clean = t.rstrip(".")
        if not re.match(r"[A-G]", clean):
            break
        out.append(theory.parse_chord(clean).symbol)  # a chord-looking token that fails names itself
    end = pos + (tok.start() if out else 0)
    return out, (m.start(), end)


@dataclass
class _Found:
    values: dict[str, Any] = field(default_factory=dict)
    spans: list[tuple[int, int]] = field(default_factory=list)


def parse_text(text: str) -> dict[str, Any]:
    """The values stated explicitly in ``text`` (no defaults). Keys: key, tempo, meter, bars,
    chords, instruments, drums, words (what is left for style/mood matching)."""
    found = _Found()
    t = text or ""
    chords, span = _find_chords(t)
    if chords:
        found.values["chords"] = chords
        found.spans.append(span)  # type: ignore[arg-type]
    masked = _mask(t, found.spans)
    key, span = _find_key(masked)
    if key is not None:
        found.values["key"] = key
        found.spans.append(span)  # type: ignore[arg-type]
    for rx in _TEMPO_RES:
        m = rx.search(t)
        if m:
            found.values["tempo"] = float(m.group(1))
            found.spans.append(m.span())
            break
    m = _METER_RE.search(_mask(t, found.spans))
    if m:
        found.values["meter"] = theory.parse_meter(f"{m.group(1)}/{m.group(2)}")
        found.spans.append(m.span())
    m = _BARS_RE.search(t)
    if m:
        found.values["bars"] = int(m.group(1))
        found.spans.append(m.span())
    m = _NO_DRUMS_RE.search(t)
    if m:
        found.values["drums"] = False
        found.spans.append(m.span())
    rest = _mask(t, found.spans).lower()
    instruments, spans = S.find_instruments(rest)
    if instruments:
        found.values["instruments"] = instruments
        rest = _mask(rest, spans)
    if "drums" not in found.values and re.search(r"\b(drums?|beat|percussion)\b", rest):
        found.values["drums"] = True
    found.values["words"] = " ".join(_WORD_RE.findall(rest))
    return found.values


def _mask(text: str, spans: Sequence[tuple[int, int]]) -> str:
    chars = list(text)
    for a, b in spans:
        for i in range(a, min(b, len(chars))):
            chars[i] = " "
    return "".join(chars)


def key_from_chords(chords: Sequence[theory.Chord]) -> theory.Key:
    """The key a progression implies: Krumhansl on chord tones, the first chord weighing double."""
    import numpy as np

    h = np.zeros(12)
    for i, c in enumerate(chords):
        h += c.chroma() * (2.0 if i == 0 else 1.0)
        h[c.root] += 1.0 if i == 0 else 0.3
    key, _ = theory.estimate_key(h)
    first = chords[0]
    # a progression that starts on a minor/major chord is usually in that key when it fits
    cand = theory.Key(first.root, "minor" if first.is_minor else "major")
    if all(set(c.pcs) - set(cand.scale) <= {(cand.tonic + 11) % 12, (cand.tonic + 4) % 12} for c in chords):
        return cand
    return key


def resolve_controls(
    text: str = "",
    *,
    key: str | None = None,
    mode: str | None = None,
    tempo: float | None = None,
    meter: str | None = None,
    chords: str | Sequence[str] | None = None,
    bars: int | None = None,
    instruments: str | Sequence[str] | None = None,
    style: str | None = None,
    density: float | None = None,
    drums: bool | None = None,
    use_embedder: bool = True,
) -> Controls:
    """Resolve every control from ``text`` and explicit fields (fields win).

    Raises
    ------
    ParameterError
        A given value cannot be read (the message names it) or is impossible.
    ResourceLimitError
        The requested length is absurd (more than ``MAX_BARS`` bars).
    """
    found = parse_text(text)
    sources: dict[str, str] = {}

    # style and mood -------------------------------------------------------------------
    st_name, mood_name = None, None
    if style:
        st_name = S.lookup_style(style)
        if st_name is None:
            st_name = S.match_style_words(style, use_embedder=use_embedder, threshold=0.0)
        sources["style"] = "field"
    words = found.get("words", "")
    if st_name is None and words:
        st_name = S.match_style_words(words, use_embedder=use_embedder, threshold=MIN_SIMILARITY)
        if st_name:
            sources["style"] = "text"
    if words:
        # the text model is only consulted when no style word was recognised
        mood_name = S.match_mood_words(words, use_embedder=use_embedder and sources.get("style") != "text"
                                       and st_name is None, threshold=MIN_SIMILARITY)
    if st_name is None and mood_name and S.MOODS[mood_name].style:
        st_name = S.MOODS[mood_name].style
        sources["style"] = "mood"
    st = S.STYLES[st_name or S.DEFAULT_STYLE]
    if st_name is None:
        sources["style"] = "default"
    mood = S.MOODS.get(mood_name or "", None)

    # meter ----------------------------------------------------------------------------
    if meter:
        met = theory.parse_meter(str(meter))
        sources["meter"] = "field"
    elif "meter" in found:
        met = found["meter"]
        sources["meter"] = "text"
    else:
        met = theory.parse_meter(st.meter)
        sources["meter"] = "style"

    # chords and key -------------------------------------------------------------------
    chord_list: list[theory.Chord] = []
    if chords is not None and (not isinstance(chords, str) or chords.strip()):
        chord_list = theory.parse_chords(chords)
        sources["chords"] = "field"
    elif found.get("chords"):
        chord_list = [theory.parse_chord(c) for c in found["chords"]]
        sources["chords"] = "text"
    if key:
        k = theory.parse_key(str(key), mode=mode or None)
        sources["key"] = "field"
    elif "key" in found:
        k = found["key"]
        if mode:
            k = theory.parse_key(theory.pc_name(k.tonic), mode=mode)
        sources["key"] = "text"
    elif chord_list:
        k = key_from_chords(chord_list)
        if mode:
            k = theory.parse_key(theory.pc_name(k.tonic), mode=mode)
        sources["key"] = "chords"
    else:
        m = mode or (mood.mode if mood and mood.mode else st.mode)
        tonic = "A" if m in theory.MINOR_LIKE else "C"
        k = theory.parse_key(tonic, mode=m)
        sources["key"] = "field" if mode else ("mood" if mood and mood.mode else "style")
    if not chord_list:
        chord_list = S.style_progression(st, k)
        sources["chords"] = "style"

    # tempo ----------------------------------------------------------------------------
    if tempo is not None:
        bpm = float(tempo)
        sources["tempo"] = "field"
    elif "tempo" in found:
        bpm = float(found["tempo"])
        sources["tempo"] = "text"
    else:
        lo, hi = st.tempo
        f = 0.5 if mood is None else mood.tempo_pos
        bpm = float(round(lo + (hi - lo) * f))
        sources["tempo"] = "style"
    if not MIN_TEMPO <= bpm <= MAX_TEMPO:
        raise ParameterError(f"tempo must be between {MIN_TEMPO:g} and {MAX_TEMPO:g} bpm; got {bpm:g}")

    # bars -----------------------------------------------------------------------------
    if bars is not None:
        n_bars = int(bars)
        sources["bars"] = "field"
    elif "bars" in found:
        n_bars = int(found["bars"])
        sources["bars"] = "text"
    else:
        n_bars = 8
        sources["bars"] = "default"
    if n_bars < 1:
        raise ParameterError(f"bars must be at least 1; got {n_bars}")
    if n_bars > MAX_BARS:
        raise ResourceLimitError(f"{n_bars} bars is too long: at most {MAX_BARS} bars in one piece")

    # instruments and drums ------------------------------------------------------------
    if instruments is not None and (not isinstance(instruments, str) or instruments.strip()):
        names = [i.strip() for i in (instruments.split(",") if isinstance(instruments, str) else instruments)]
        inst = [S.normalise_instrument(n) for n in names if n]
        sources["instruments"] = "field"
    elif found.get("instruments"):
        inst = list(found["instruments"])
        sources["instruments"] = "text"
    else:
        inst = list(st.instruments)
        sources["instruments"] = "style"
    if drums is not None:
        use_drums = bool(drums)
        sources["drums"] = "field"
    elif "drums" in found:
        use_drums = bool(found["drums"])
        sources["drums"] = "text"
    elif sources["instruments"] != "style":
        use_drums = "drums" in inst
        sources["drums"] = "instruments"
    else:
        use_drums = st.drums
        sources["drums"] = "style"
    inst = [i for i in inst if i != "drums"]
    if not inst:
        inst = list(st.instruments)
    if density is not None:
        dens = float(density)
        if not 0.0 <= dens <= 1.0:
            raise ParameterError(f"density must be between 0 and 1; got {dens}")
        sources["density"] = "field"
    else:
        dens = st.density if mood is None else min(1.0, max(0.05, st.density + mood.density_shift))
        sources["density"] = "style"
    return Controls(key=k, tempo=bpm, meter=met, bars=n_bars, chords=tuple(c.symbol for c in chord_list),
                    instruments=tuple(inst), style=st.name, density=dens, drums=use_drums,
                    mood=mood_name or "", sources=sources)


def with_changes(c: Controls, **changes: Any) -> Controls:
    return replace(c, **changes)
