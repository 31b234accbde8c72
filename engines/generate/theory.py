"""Music theory the generator needs: keys, chord symbols, scales, meters, tempo bins.

Everything is pure Python/numpy and cheap to import. Pitch classes count from C = 0.

Chord symbols follow lead-sheet usage: a root (``C``, ``F#``, ``Bb``), a quality
(``m``, ``dim``, ``aug``, ``sus2``, ``sus4``, ``5``), sevenths and extensions
(``7``, ``maj7``, ``m7b5``, ``ø``, ``dim7``, ``6``, ``9``, ``11``, ``13``, ``add9``,
alterations ``b5 #5 b9 #9 #11 b13``) and an optional slash bass (``C/G``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from engines.core.errors import ParameterError

PITCH_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
_SHARP_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
_LETTER = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}

MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)
MINOR_SCALE = (0, 2, 3, 5, 7, 8, 10)  # natural minor; the raised 7th comes from V chords
MODES = {
    "major": MAJOR_SCALE, "minor": MINOR_SCALE,
    "dorian": (0, 2, 3, 5, 7, 9, 10), "mixolydian": (0, 2, 4, 5, 7, 9, 10),
    "phrygian": (0, 1, 3, 5, 7, 8, 10), "lydian": (0, 2, 4, 6, 7, 9, 11),
}
#: modes whose third is minor (used for key names and relative keys)
MINOR_LIKE = {"minor", "dorian", "phrygian"}

# Krumhansl-Kessler key profiles
KK_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
KK_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


def pitch_class(name: str) -> int:
    """``"F#"`` -> 6. Raises :class:`ParameterError` naming the token if it is not a note name."""
    m = re.fullmatch(r"([A-Ga-g])([#b♯♭]*)", name.strip())
    if not m:
        raise ParameterError(f"{name!r} is not a note name (use C, F#, Bb, ...)")
    pc = _LETTER[m.group(1).upper()]
    for acc in m.group(2):
        pc += 1 if acc in "#♯" else -1
    return pc % 12


def pc_name(pc: int, *, flats: bool = True) -> str:
    return (PITCH_NAMES if flats else _SHARP_NAMES)[pc % 12]


# keys ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Key:
    """A key: tonic pitch class and mode (``major``, ``minor`` or a church mode)."""

    tonic: int
    mode: str = "major"

    @property
    def scale(self) -> tuple[int, ...]:
        return tuple((self.tonic + s) % 12 for s in MODES[self.mode])

    @property
    def is_minor(self) -> bool:
        return self.mode in MINOR_LIKE

    @property
    def name(self) -> str:
        """Short name used in file names and MIDI meta: ``"Am"``, ``"F#"``, ``"Bb"``."""
        flats = self.tonic in (1, 3, 5, 8, 10) if not self.is_minor else self.tonic in (0, 2, 3, 5, 7, 10)
        root = pc_name(self.tonic, flats=flats)
        if self.tonic == 6:
            root = "F#"
        return root + ("m" if self.is_minor else "")

    @property
    def long_name(self) -> str:
        return f"{self.name.rstrip('m')} {self.mode}"

    def relative(self) -> Key:
        return Key((self.tonic + 3) % 12, "major") if self.is_minor else Key((self.tonic + 9) % 12, "minor")

    def dominant(self) -> Key:
        return Key((self.tonic + 7) % 12, self.mode)

    def scale_mask(self) -> np.ndarray:
        m = np.zeros(12, np.float32)
        m[list(self.scale)] = 1.0
        return m


def parse_key(text: str, mode: str | None = None) -> Key:
    """``"Dm"``, ``"D minor"``, ``"F# major"``, ``"Bbm"``, ``"C dorian"`` -> :class:`Key`.

    ``mode`` (``"major"``/``"minor"``/...) overrides the mode written in ``text``.
    """
    t = text.strip().replace("♯", "#").replace("♭", "b")
    m = re.fullmatch(r"([A-Ga-g][#b]?)\s*(m|min|minor|maj|major|M|dorian|mixolydian|phrygian|lydian)?", t,
                     flags=re.IGNORECASE)
    if not m:
        raise ParameterError(f"cannot read the key {text!r} (use e.g. C, Am, F# major, Bb minor)")
    tonic = pitch_class(m.group(1)[0].upper() + m.group(1)[1:])
    word = (m.group(2) or "").lower() if m.group(2) != "M" else "major"
    written = {"": "major", "m": "minor", "min": "minor", "minor": "minor", "maj": "major",
               "major": "major"}.get(word, word)
    if mode:
        if mode not in MODES:
            raise ParameterError(f"unknown mode {mode!r} (use one of {', '.join(MODES)})")
        written = mode
    return Key(tonic, written)


def estimate_key(pc_hist: Sequence[float] | np.ndarray) -> tuple[Key, float]:
    """Krumhansl-Schmuckler: the major/minor key whose profile best correlates with ``pc_hist``."""
    c = np.asarray(pc_hist, dtype=np.float64)
    if c.shape != (12,) or not np.isfinite(c).all() or c.std() < 1e-9:
        return Key(0, "major"), 0.0
    best = (-2.0, Key(0, "major"))
    for mode, prof in (("major", KK_MAJOR), ("minor", KK_MINOR)):
        for tonic in range(12):
            r = float(np.corrcoef(c, np.roll(prof, tonic))[0, 1])
            if r > best[0]:
                best = (r, Key(tonic, mode))
    return best[1], best[0]


# chords --------------------------------------------------------------------------------

#: quality spellings (longest first when matching) -> intervals above the root
_QUALITIES: dict[str, tuple[int, ...]] = {
    "m7b5": (0, 3, 6, 10), "min7b5": (0, 3, 6, 10), "-7b5": (0, 3, 6, 10), "ø7": (0, 3, 6, 10),
    "ø": (0, 3, 6, 10),
    "mmaj7": (0, 3, 7, 11), "mM7": (0, 3, 7, 11), "minmaj7": (0, 3, 7, 11),
    "maj13": (0, 4, 7, 11, 14, 21), "maj11": (0, 4, 7, 11, 14, 17), "maj9": (0, 4, 7, 11, 14),
    "maj7": (0, 4, 7, 11), "M7": (0, 4, 7, 11), "Δ7": (0, 4, 7, 11), "Δ": (0, 4, 7, 11),
    "dim7": (0, 3, 6, 9), "°7": (0, 3, 6, 9), "o7": (0, 3, 6, 9),
    "m13": (0, 3, 7, 10, 14, 21), "m11": (0, 3, 7, 10, 14, 17), "m9": (0, 3, 7, 10, 14),
    "m7": (0, 3, 7, 10), "min7": (0, 3, 7, 10), "-7": (0, 3, 7, 10),
    "m6": (0, 3, 7, 9), "min6": (0, 3, 7, 9),
    "7sus4": (0, 5, 7, 10), "7sus2": (0, 2, 7, 10), "9sus4": (0, 5, 7, 10, 14),
    "sus4": (0, 5, 7), "sus2": (0, 2, 7), "sus": (0, 5, 7),
    "aug7": (0, 4, 8, 10), "+7": (0, 4, 8, 10),
    "aug": (0, 4, 8), "+": (0, 4, 8),
    "dim": (0, 3, 6), "°": (0, 3, 6), "o": (0, 3, 6),
    "min": (0, 3, 7), "m": (0, 3, 7), "-": (0, 3, 7),
    "maj": (0, 4, 7), "M": (0, 4, 7),
    "13": (0, 4, 7, 10, 14, 21), "11": (0, 4, 7, 10, 14, 17), "9": (0, 4, 7, 10, 14),
    "7": (0, 4, 7, 10), "69": (0, 4, 7, 9, 14), "6": (0, 4, 7, 9), "5": (0, 7),
    "": (0, 4, 7),
}
_QUALITY_KEYS = sorted(_QUALITIES, key=len, reverse=True)
_EXTENSIONS = {"b5": (6, 7), "#5": (8, 7), "b9": (13, None), "#9": (15, None), "9": (14, None),
               "#11": (18, None), "11": (17, None), "b13": (20, None), "13": (21, None),
               "add9": (14, None), "add11": (17, None), "add13": (21, None), "add2": (2, None),
               "add4": (5, None), "no3": (None, 4)}
_EXT_KEYS = sorted(_EXTENSIONS, key=len, reverse=True)

#: the simplified vocabulary chord estimation and the chord metrics use
CHORD_VOCAB: dict[str, tuple[int, ...]] = {
    "maj": (0, 4, 7), "min": (0, 3, 7), "dim": (0, 3, 6), "aug": (0, 4, 8), "sus4": (0, 5, 7),
    "7": (0, 4, 7, 10), "maj7": (0, 4, 7, 11), "min7": (0, 3, 7, 10), "hdim7": (0, 3, 6, 10),
}
_VOCAB_SUFFIX = {"maj": "", "min": "m", "dim": "dim", "aug": "aug", "sus4": "sus4", "7": "7",
                 "maj7": "maj7", "min7": "m7", "hdim7": "m7b5"}


@dataclass(frozen=True)
class Chord:
    """A parsed chord symbol.

    Attributes
    ----------
    symbol : str
        As written (normalised spacing).
    root : int
        Pitch class of the root.
    intervals : tuple of int
        Semitones above the root (may exceed 12 for extensions).
    bass : int
        Pitch class of the bass (the root unless a slash bass was given).
    """

    symbol: str
    root: int
    intervals: tuple[int, ...]
    bass: int

    @property
    def pcs(self) -> tuple[int, ...]:
        return tuple(sorted({(self.root + i) % 12 for i in self.intervals} | {self.bass}))

    def chroma(self) -> np.ndarray:
        v = np.zeros(12, np.float32)
        v[list(self.pcs)] = 1.0
        return v

    @property
    def is_minor(self) -> bool:
        iv = {i % 12 for i in self.intervals}
        return 3 in iv and 4 not in iv

    def simplified(self) -> str:
        """Label in :data:`CHORD_VOCAB` terms, ``"D:min"`` (used by the chord metrics)."""
        iv = {i % 12 for i in self.intervals}
        third = "min" if (3 in iv and 4 not in iv) else ("maj" if 4 in iv else "sus4")
        if third == "min" and 6 in iv and 7 not in iv:
            q = "hdim7" if 10 in iv else "dim"
        elif third == "maj" and 8 in iv and 7 not in iv:
            q = "aug"
        elif third == "sus4":
            q = "sus4"
        elif 10 in iv:
            q = "7" if third == "maj" else "min7"
        elif 11 in iv and third == "maj":
            q = "maj7"
        else:
            q = third
        return f"{pc_name(self.root)}:{q}"


def parse_chord(token: str) -> Chord:
    """Parse one chord symbol; the error names the token it could not read."""
    raw = token.strip()
    t = raw.replace("♯", "#").replace("♭", "b")
    m = re.match(r"([A-G])([#b]?)", t)
    if not m:
        raise ParameterError(f"cannot read the chord {raw!r}: it must start with a note name A-G")
    root = pitch_class(m.group(0))
    rest = t[m.end():]
    bass = root
    if "/" in rest:
        rest, _, bass_txt = rest.partition("/")
        try:
            bass = pitch_class(bass_txt)
        except ParameterError:
            raise ParameterError(f"cannot read the chord {raw!r}: bass {bass_txt!r} is not a note name") from None
    rest = rest.replace("(", "").replace(")", "").replace(",", "")
    quality = next((q for q in _QUALITY_KEYS if rest.startswith(q)), "")
    intervals = list(_QUALITIES[quality])
    rest = rest[len(quality):]
    while rest:
        ext = next((e for e in _EXT_KEYS if rest.startswith(e)), None)
        if ext is None:
            raise ParameterError(f"cannot read the chord {raw!r}: unknown part {rest!r}")
        add, drop = _EXTENSIONS[ext]
        if drop is not None and drop in intervals:
            intervals.remove(drop)
        if add is not None and add not in intervals:
            intervals.append(add)
        rest = rest[len(ext):]
    return Chord(symbol=raw, root=root, intervals=tuple(sorted(intervals)), bass=bass)


def parse_chords(text: str | Iterable[str]) -> list[Chord]:
    """``"Dm Bb F A"`` or ``"Dm, Bb | F - A"`` -> chords."""
    tokens = re.split(r"[\s,|;]+|\s-\s", text) if isinstance(text, str) else list(text)
    out = [parse_chord(t) for t in tokens if t and t.strip() and t.strip() not in "-|"]
    return out


def vocab_label(root: int, quality: str) -> str:
    return f"{pc_name(root)}:{quality}"


def label_to_symbol(label: str) -> str:
    root, _, q = label.partition(":")
    return root + _VOCAB_SUFFIX.get(q, "")


def majmin(label: str) -> str:
    """``"D:min7"`` -> ``"D:min"``; ``"C:7"`` -> ``"C:maj"`` (for CMAOMM)."""
    root, _, q = label.partition(":")
    return f"{root}:{'min' if q in ('min', 'min7', 'dim', 'hdim7') else 'maj'}"


def _templates() -> tuple[list[str], np.ndarray]:
    labels, rows = [], []
    for q, iv in CHORD_VOCAB.items():
        for r in range(12):
            v = np.zeros(12)
            v[[(r + i) % 12 for i in iv]] = 1.0
            labels.append(vocab_label(r, q))
            rows.append(v)
    return labels, np.array(rows)


TEMPLATE_LABELS, TEMPLATES = _templates()
# triads are preferred when a seventh adds little; rarer qualities slightly penalised
_PRIOR = np.array([{"maj": 0.0, "min": 0.0, "dim": -0.06, "aug": -0.12, "sus4": -0.1, "7": -0.04,
                    "maj7": -0.06, "min7": -0.05, "hdim7": -0.07}[q] for q in CHORD_VOCAB for _ in range(12)])


def match_chord(chroma: np.ndarray, *, bass: int | None = None, vocab: Sequence[str] | None = None
                ) -> tuple[str, float]:
    """Best chord-template label for a 12-bin chroma (cosine similarity plus a small prior).

    ``bass`` (pitch class of the lowest note) favours chords rooted on it.
    """
    c = np.asarray(chroma, dtype=np.float64)
    n = np.linalg.norm(c)
    if n < 1e-9:
        return "N", 0.0
    sims = TEMPLATES @ (c / n) / np.linalg.norm(TEMPLATES, axis=1) + _PRIOR
    if bass is not None:
        roots = np.array([int(PITCH_NAMES.index(lab.split(":")[0])) for lab in TEMPLATE_LABELS])
        sims = sims + 0.05 * (roots == bass)
    if vocab is not None:
        allowed = np.array([lab.split(":")[1] in vocab for lab in TEMPLATE_LABELS])
        sims = np.where(allowed, sims, -np.inf)
    i = int(np.argmax(sims))
    return TEMPLATE_LABELS[i], float(sims[i])


def label_chord(label: str) -> Chord:
    root, _, q = label.partition(":")
    r = PITCH_NAMES.index(root)
    return Chord(symbol=label_to_symbol(label), root=r, intervals=CHORD_VOCAB[q], bass=r)


# meter and tempo -----------------------------------------------------------------------

STEPS_PER_QUARTER = 4  # 16th-note grid


@dataclass(frozen=True)
class Meter:
    """Time signature on a 16th-note grid."""

    num: int = 4
    den: int = 4

    @property
    def steps_per_bar(self) -> int:
        return self.num * 16 // self.den

    @property
    def compound(self) -> bool:
        return self.den == 8 and self.num % 3 == 0 and self.num > 3

    @property
    def steps_per_beat(self) -> int:
        """Counted beat: dotted quarter in compound meters, else the denominator's note."""
        return 6 if self.compound else 16 // self.den

    @property
    def beats_per_bar(self) -> int:
        return self.steps_per_bar // self.steps_per_beat

    def __str__(self) -> str:
        return f"{self.num}/{self.den}"


def parse_meter(text: str) -> Meter:
    m = re.fullmatch(r"\s*(\d{1,2})\s*/\s*(\d{1,2})\s*", text)
    if not m:
        raise ParameterError(f"cannot read the meter {text!r} (use e.g. 4/4, 3/4, 6/8)")
    num, den = int(m.group(1)), int(m.group(2))
    if den not in (2, 4, 8, 16) or not 1 <= num <= 15:
        raise ParameterError(f"unsupported meter {text!r}: use 1-15 beats over 2, 4, 8 or 16")
    if (num * 16) % den:
        raise ParameterError(f"unsupported meter {text!r}")
    return Meter(num, den)


#: Mustango's tempo bins (Italian tempo markings), bpm lower edges
TEMPO_BINS = (("Grave", 0), ("Largo", 40), ("Larghetto", 60), ("Adagio", 66), ("Andante", 76),
              ("Moderato", 108), ("Allegro", 120), ("Vivace", 168), ("Presto", 176), ("Prestissimo", 200))


def tempo_bin(bpm: float) -> int:
    idx = 0
    for i, (_, lo) in enumerate(TEMPO_BINS):
        if bpm >= lo:
            idx = i
    return idx


def scale_pcs_with_chord(key: Key, chord: Chord | None) -> set[int]:
    s = set(key.scale)
    if chord is not None:
        s |= set(chord.pcs)
    return s


def cadence_chords(key: Key) -> tuple[Chord, Chord]:
    """Tonic and dominant triads of ``key`` (the dominant is major also in minor modes)."""
    flats = key.tonic in (1, 3, 5, 8, 10) or (key.is_minor and key.tonic in (0, 2, 5, 7))
    tonic = parse_chord(pc_name(key.tonic, flats=flats) + ("m" if key.is_minor else ""))
    dominant = parse_chord(pc_name(key.tonic + 7, flats=flats))
    return tonic, dominant


def default_progression(key: Key) -> list[Chord]:
    """A plain progression in ``key`` when the user gives none (i-VI-III-VII / I-V-vi-IV)."""
    t = key.tonic
    if key.is_minor:
        degrees = [(0, "m"), (8, ""), (3, ""), (7, "")]
    else:
        degrees = [(0, ""), (7, ""), (9, "m"), (5, "")]
    return [parse_chord(pc_name((t + d) % 12) + q) for d, q in degrees]


# chords of a melody ----------------------------------------------------------------------

#: diatonic chords the melody harmoniser chooses from: (semitones above the tonic, quality, prior)
_DIATONIC_MAJOR = ((0, "", 0.15), (2, "m", 0.04), (4, "m", -0.02), (5, "", 0.10), (7, "", 0.12),
                   (9, "m", 0.06), (11, "dim", -0.15))
_DIATONIC_MINOR = ((0, "m", 0.15), (2, "dim", -0.12), (3, "", 0.04), (5, "m", 0.10), (7, "", 0.12),
                   (8, "", 0.06), (10, "", 0.03))
#: functional moves (from degree, to degree) -> bonus; other changes 0, a repeat ``_REPEAT``
_MOVES = {(7, 0): 0.12, (5, 7): 0.05, (2, 7): 0.06, (0, 5): 0.03, (0, 7): 0.03, (9, 2): 0.03,
          (9, 5): 0.03, (8, 7): 0.04, (10, 3): 0.04, (3, 8): 0.02, (7, 5): -0.08, (7, 2): -0.06}
_REPEAT = 0.0


def diatonic_chords(key: Key) -> list[tuple[int, Chord, float]]:
    """The key's diatonic triads (the dominant major in minor) as ``(degree, chord, prior)``."""
    table = _DIATONIC_MINOR if key.is_minor else _DIATONIC_MAJOR
    flats = key.tonic in (1, 3, 5, 8, 10) or (key.is_minor and key.tonic in (0, 2, 5, 7))
    return [(d, parse_chord(pc_name(key.tonic + d, flats=flats) + q), prior) for d, q, prior in table]


def melody_weights(notes: Iterable[Sequence[int]], meter: Meter, n_segments: int, seg_steps: int) -> np.ndarray:
    """Pitch-class weights ``(n_segments, 12)`` of ``(pitch, start, end)`` notes on the 16th grid:
    the steps a note sounds in each segment, each step weighted by its metric position (the
    segment's first beat 3, other beats 1.5, off-beats 1) -- what a listener hears as harmony."""
    spb, sbeat = meter.steps_per_bar, meter.steps_per_beat
    pos = np.arange(seg_steps * n_segments)
    w = np.where(pos % seg_steps < sbeat, 3.0, np.where(pos % sbeat == 0, 1.5, 1.0))
    w = np.where(pos % spb == 0, np.maximum(w, 3.0), w)
    out = np.zeros((n_segments, 12))
    T = len(pos)
    for n in notes:
        p, s, e = int(n[0]), max(0, int(n[1])), min(T, int(n[2]))
        if e <= s:
            continue
        for seg in range(s // seg_steps, (e - 1) // seg_steps + 1):
            a, b = max(s, seg * seg_steps), min(e, (seg + 1) * seg_steps)
            out[seg, p % 12] += float(w[a:b].sum())
    return out


def infer_chords(notes: Iterable[Sequence[int]], key: Key, meter: Meter, n_bars: int, *,
                 per_bar: int = 1) -> list[Chord]:
    """Harmonise a melody: one diatonic chord per bar (or ``per_bar`` per bar).

    Each segment's chords are scored by how much of the metrically weighted melody
    (:func:`melody_weights`) they hold (notes outside the chord count against it), plus a prior
    for the degree (tonic, dominant and subdominant first); a Viterbi pass adds functional
    moves (V-I, IV-V, ii-V ...), a small cost for repeating a chord, and prefers a piece that
    starts and ends on the tonic with the dominant before the last bar.

    Parameters
    ----------
    notes : iterable of (pitch, start_step, end_step)
    key : Key
    meter : Meter
    n_bars : int
    per_bar : int
        Segments per bar (1 or 2).

    Returns
    -------
    list of Chord, ``n_bars * per_bar`` long.
    """
    return _harmonise(notes, key, meter, n_bars, per_bar=per_bar)[0]


def _harmonise(notes: Iterable[Sequence[int]], key: Key, meter: Meter, n_bars: int, *,
               per_bar: int = 1) -> tuple[list[Chord], float]:
    """:func:`infer_chords` and the score of its best path (per segment)."""
    spb = meter.steps_per_bar
    seg = max(1, spb // max(1, per_bar))
    n = max(1, n_bars * max(1, per_bar))
    H = melody_weights(notes, meter, n, seg)
    cands = diatonic_chords(key)
    k = len(cands)
    masks = np.array([[1.0 if pc in c.pcs else 0.0 for pc in range(12)] for _, c, _ in cands])
    emit = np.zeros((n, k))
    tot = H.sum(axis=1)
    for i in range(n):
        if tot[i] > 0:
            inside = masks @ H[i]
            emit[i] = (inside - 0.7 * (tot[i] - inside)) / tot[i]
    emit += np.array([p for _, _, p in cands])[None, :]
    degs = [d for d, _, _ in cands]
    trans = np.array([[(_REPEAT if a == b else _MOVES.get((a, b), 0.0)) for b in degs] for a in degs])
    tonic = degs.index(0)
    dom = degs.index(7)
    emit[0, tonic] += 0.1
    emit[-1, tonic] += 0.25
    if n >= 2:
        emit[-2, dom] += 0.08
    score = emit[0].copy()
    back = np.zeros((n, k), np.int64)
    for i in range(1, n):
        tot_s = score[:, None] + trans
        back[i] = np.argmax(tot_s, axis=0)
        score = tot_s[back[i], np.arange(k)] + emit[i]
    path = [int(np.argmax(score))]
    for i in range(n - 1, 0, -1):
        path.append(int(back[i, path[-1]]))
    path.reverse()
    return [cands[j][1] for j in path], float(np.max(score)) / n


def estimate_melody_key(notes: Sequence[Sequence[int]], meter: Meter, n_bars: int, *,
                        candidates: int = 4, weight: float = 0.5) -> Key:
    """Key of a melody (or any notes) ``(pitch, start_step, end_step)``.

    Krumhansl-Schmuckler on the duration-weighted pitch classes proposes the ``candidates``
    best-correlated keys; each is rescored by how well the melody harmonises in it (the
    :func:`infer_chords` path score) plus ``weight`` times its correlation. A short melody's
    pitch content alone often fits the relative or the dominant key as well; its cadences and
    chord tones on strong beats tell them apart.
    """
    hist = np.zeros(12)
    for n in notes:
        hist[int(n[0]) % 12] += max(1, int(n[2]) - int(n[1]))
    if hist.std() < 1e-9:
        return estimate_key(hist)[0]
    scored = []
    for mode, prof in (("major", KK_MAJOR), ("minor", KK_MINOR)):
        for tonic in range(12):
            scored.append((float(np.corrcoef(hist, np.roll(prof, tonic))[0, 1]), Key(tonic, mode)))
    scored.sort(key=lambda x: -x[0])
    best = max(scored[:max(1, candidates)],
               key=lambda c: _harmonise(notes, c[1], meter, n_bars)[1] + weight * c[0])
    return best[1]
