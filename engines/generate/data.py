"""The piano-roll representation and the training data built from the music21 corpus.

Representation
--------------
A piece is a list of notes per *role* (``melody``, ``harmony``, ``bass``) on a 16th-note
grid, plus per-step harmony (chord chroma and bass pitch class), a key and a meter.
:func:`encode_window` turns a window of ``WINDOW`` steps into the model's input planes,
shape ``(channels, N_PITCH, WINDOW)`` (pitch x time, MIDI ``PITCH_LO..PITCH_LO+63``):

* 6 track planes: for each role an *onset* plane and an *active* (sounding) plane, in {-1, 1};
* 9 condition planes: chord tones, chord bass, key scale, key tonic (pitch-class masks
  broadcast over octaves), beat, bar start, sin/cos of the position in the bar, valid steps;
* 9 known planes: the values of the given tracks/steps (6) and where they are given (3) —
  arrangement, regeneration and continuation all condition on them.

Training data
-------------
:func:`build_corpus` parses Bach chorales and string-quartet movements (Haydn, Mozart,
Beethoven) from the corpus bundled with music21, assigns parts to roles (top voice =
melody, inner voices = harmony, lowest = bass), analyses the harmony beat by beat with
chord templates (:func:`engines.generate.theory.match_chord`) and the key with
Krumhansl-Schmuckler, and caches the result as one ``.npz`` (never committed).
Transposition to all twelve keys happens on the fly in training.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engines.generate import theory

ROLES = ("melody", "harmony", "bass")
N_TRACKS = len(ROLES)
PITCH_LO = 28  # E1
N_PITCH = 64  # E1..G6
WINDOW = 64  # steps (4 bars of 4/4)
N_TRACK_CH = 2 * N_TRACKS
N_COND_CH = 9
N_KNOWN_CH = 2 * N_TRACKS + N_TRACKS
IN_CHANNELS = N_TRACK_CH + N_COND_CH + N_KNOWN_CH
HARMONY_CH = (0, 1, 2, 3)  # condition planes dropped for classifier-free guidance
#: texture classes (class embedding); 0 = unconditional
SOURCES = ("none", "chorale", "quartet")

# role pitch ranges (MIDI) used when snapping and voicing
ROLE_RANGE = {"melody": (60, 86), "harmony": (48, 76), "bass": (28, 55)}


@dataclass
class Piece:
    """One piece on the 16th grid.

    ``notes`` is an int array ``(n, 4)``: role index, MIDI pitch, start step, end step.
    ``chroma`` ``(T, 12)`` and ``bass`` ``(T,)`` give the harmony of each step (bass -1: none).
    """

    name: str
    notes: np.ndarray
    chroma: np.ndarray
    bass: np.ndarray
    key: theory.Key
    meter: theory.Meter
    source: int = 1
    roles_present: tuple[bool, ...] = (True, True, True)
    meta: dict = field(default_factory=dict)

    @property
    def n_steps(self) -> int:
        return int(self.chroma.shape[0])


# encoding ------------------------------------------------------------------------------

_PCS = (np.arange(N_PITCH) + PITCH_LO) % 12


def roll_planes(notes: np.ndarray, start: int, length: int) -> np.ndarray:
    """Onset/active planes ``(6, N_PITCH, length)`` in {0, 1} for notes in ``[start, start+length)``."""
    out = np.zeros((N_TRACK_CH, N_PITCH, length), np.float32)
    if len(notes) == 0:
        return out
    for role, pitch, s, e in notes:
        p = int(pitch) - PITCH_LO
        if not 0 <= p < N_PITCH or e <= start or s >= start + length:
            continue
        a, b = max(int(s), start) - start, min(int(e), start + length) - start
        out[2 * role + 1, p, a:b] = 1.0
        if s >= start:
            out[2 * role, p, s - start] = 1.0
    return out


def cond_planes(chroma: np.ndarray, bass: np.ndarray, key: theory.Key, meter: theory.Meter,
                start: int, length: int, n_steps: int) -> np.ndarray:
    """Condition planes ``(9, N_PITCH, length)`` for steps ``start..start+length`` of a piece."""
    out = np.zeros((N_COND_CH, N_PITCH, length), np.float32)
    t = np.arange(start, start + length)
    valid = (t >= 0) & (t < n_steps)
    tc = np.clip(t, 0, max(n_steps - 1, 0))
    ch = chroma[tc] * valid[:, None]  # (L, 12)
    out[0] = ch[:, _PCS].T
    b = np.where(valid, bass[tc], -1)
    out[1] = (_PCS[:, None] == b[None, :]).astype(np.float32)
    out[2] = key.scale_mask()[_PCS][:, None] * valid[None, :]
    out[3] = (_PCS == key.tonic).astype(np.float32)[:, None] * valid[None, :]
    spb, sbeat = meter.steps_per_bar, meter.steps_per_beat
    pos = t % spb
    out[4] = ((pos % sbeat) == 0).astype(np.float32)[None, :] * valid
    out[5] = (pos == 0).astype(np.float32)[None, :] * valid
    out[6] = np.sin(2 * np.pi * pos / spb)[None, :] * valid
    out[7] = np.cos(2 * np.pi * pos / spb)[None, :] * valid
    out[8] = valid.astype(np.float32)[None, :]
    return out


def known_planes(values01: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Known planes from track values ``(6, P, L)`` in {0,1} and a known mask ``(3, L)``."""
    kv = np.where(np.repeat(known, 2, axis=0)[:, None, :] > 0, values01 * 2 - 1, 0).astype(np.float32)
    km = np.broadcast_to(known[:, None, :], (N_TRACKS, N_PITCH, known.shape[1])).astype(np.float32)
    return np.concatenate([kv, km], axis=0)


def transpose_piece_arrays(notes: np.ndarray, chroma: np.ndarray, bass: np.ndarray, shift: int
                           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = notes.copy()
    if len(n):
        n[:, 1] += shift
        # fold notes that leave the range back by an octave
        n[n[:, 1] < PITCH_LO, 1] += 12
        n[n[:, 1] >= PITCH_LO + N_PITCH, 1] -= 12
    c = np.roll(chroma, shift, axis=1)
    b = np.where(bass >= 0, (bass + shift) % 12, -1)
    return n, c, b


# corpus --------------------------------------------------------------------------------

def default_data_dir() -> Path:
    env = os.environ.get("CUE_GENERATE_DATA")
    if env:
        return Path(env)
    repo = Path(__file__).resolve().parents[2]
    return repo / "data" / "generate"


def _corpus_paths() -> list[tuple[str, int]]:
    from music21 import corpus

    out: list[tuple[str, int]] = []
    for p in corpus.getComposer("bach"):
        if p.suffix == ".mxl" and p.name.startswith("bwv"):
            out.append((str(p), 1))
    for comp in ("haydn", "mozart", "beethoven"):
        for p in corpus.getComposer(comp):
            if p.suffix in (".mxl", ".xml") and "movement" in p.name:
                out.append((str(p), 2))
    return out


def is_held_out(name: str) -> bool:
    """Deterministic 10 % split by file name (held-out pieces are never trained on)."""
    return int(hashlib.sha1(name.encode()).hexdigest(), 16) % 10 == 0


def extract_piece(path: str, source: int) -> Piece | None:
    """Parse one corpus file into a :class:`Piece` (``None`` if it does not fit)."""
    from music21 import converter
    from music21 import meter as m21meter

    score = converter.parse(path)
    parts = list(score.parts)
    if len(parts) < 3:
        return None
    ts = score.flatten().getElementsByClass(m21meter.TimeSignature)
    if not ts:
        return None
    try:
        met = theory.Meter(int(ts[0].numerator), int(ts[0].denominator))
        if met.steps_per_bar * met.den != met.num * 16:
            return None
    except Exception:
        return None
    measures = parts[0].getElementsByClass("Measure")
    pad = float(measures[0].paddingLeft) if len(measures) else 0.0
    shift = round(pad * 4)
    def mean_pitch(part) -> float:
        ps = [p.midi for n in part.flatten().notes for p in n.pitches]
        return float(np.mean(ps)) if ps else -1.0

    parts = [p for p in parts if mean_pitch(p) > 0]
    if len(parts) < 3:
        return None
    parts.sort(key=mean_pitch, reverse=True)  # top voice = melody, lowest = bass
    roles = [0] + [1] * (len(parts) - 2) + [2]
    rows: list[list[int]] = []
    for ri, part in zip(roles, parts, strict=True):
        for n in part.flatten().notes:
            s = round(float(n.offset) * 4) + shift
            e = max(s + 1, round(float(n.offset + n.quarterLength) * 4) + shift)
            pitches = [p.midi for p in n.pitches]
            if ri == 0:
                pitches = pitches[-1:]
            elif ri == 2:
                pitches = pitches[:1]
            for p in pitches:
                if n.tie is not None and n.tie.type in ("stop", "continue") and rows and rows[-1][1] == p \
                        and rows[-1][0] == ri and rows[-1][3] == s:
                    rows[-1][3] = e
                    continue
                rows.append([ri, p, s, e])
    if not rows:
        return None
    notes = np.array(rows, np.int32)
    T = int(notes[:, 3].max())
    if T < 32 or T > 20000:
        return None
    chroma, bass = analyse_harmony(notes, T, met)
    hist = np.zeros(12)
    np.add.at(hist, notes[:, 1] % 12, notes[:, 3] - notes[:, 2])
    key, _ = theory.estimate_key(hist)
    name = "/".join(Path(path).parts[-2:])
    return Piece(name=name, notes=notes, chroma=chroma, bass=bass, key=key, meter=met, source=source)


def analyse_harmony(notes: np.ndarray, n_steps: int, meter: theory.Meter, *, per: int | None = None
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Chord template per beat (or per ``per`` steps) from the sounding notes.

    Returns per-step chord chroma ``(T, 12)`` and bass pitch class ``(T,)``.
    """
    per = per or meter.steps_per_beat
    chroma = np.zeros((n_steps, 12), np.float32)
    bass = np.full(n_steps, -1, np.int32)
    active = np.zeros((n_steps, 12), np.float32)
    lowest = np.full(n_steps, 200, np.int32)
    for _, p, s, e in notes:
        s, e = max(0, int(s)), min(n_steps, int(e))
        if e <= s:
            continue
        active[s:e, p % 12] += 1.0
        active[s, p % 12] += 0.5  # onsets weigh a bit more
        lowest[s:e] = np.minimum(lowest[s:e], p)
    for a in range(0, n_steps, per):
        b = min(n_steps, a + per)
        h = active[a:b].sum(axis=0)
        if h.sum() <= 0:
            continue
        low = lowest[a:b][lowest[a:b] < 200]
        bpc = int(low[0] % 12) if len(low) else None
        label, _ = theory.match_chord(h, bass=bpc)
        ch = theory.label_chord(label)
        chroma[a:b] = ch.chroma()
        bass[a:b] = bpc if (bpc is not None and bpc in ch.pcs) else ch.root
    return chroma, bass


def build_corpus(out_dir: Path | None = None, *, limit: int | None = None, time_budget: float = 900.0,
                 log: Callable[[str], None] = print) -> Path:
    """Parse the corpus and cache it as ``corpus.npz`` in ``out_dir``; returns the file."""
    out_dir = Path(out_dir or default_data_dir())
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / "corpus.npz"
    paths = _corpus_paths()[: limit or None]
    pieces: list[Piece] = []
    t0 = time.monotonic()
    for i, (p, src) in enumerate(paths):
        if time.monotonic() - t0 > time_budget:
            log(f"time budget reached after {i} files")
            break
        try:
            pc = extract_piece(p, src)
        except Exception as exc:  # a file music21 cannot read is skipped
            log(f"skip {p}: {type(exc).__name__}: {exc}")
            continue
        if pc is not None:
            pieces.append(pc)
        if i % 50 == 0:
            log(f"[{i}/{len(paths)}] {len(pieces)} pieces, {time.monotonic() - t0:.0f}s")
    save_pieces(pieces, target)
    log(f"wrote {len(pieces)} pieces to {target}")
    return target


def save_pieces(pieces: Sequence[Piece], path: Path) -> None:
    arrays: dict[str, np.ndarray] = {}
    names = []
    for i, p in enumerate(pieces):
        arrays[f"n{i}"] = p.notes.astype(np.int32)
        arrays[f"c{i}"] = p.chroma.astype(np.uint8)
        arrays[f"b{i}"] = p.bass.astype(np.int8)
        names.append(f"{p.name}|{p.key.tonic}|{p.key.mode}|{p.meter.num}|{p.meter.den}|{p.source}")
    arrays["names"] = np.array(names)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, path)


def load_pieces(path: Path | None = None) -> list[Piece]:
    path = Path(path or default_data_dir() / "corpus.npz")
    z = np.load(path)
    out = []
    for i, row in enumerate(z["names"]):
        name, tonic, mode, num, den, src = str(row).split("|")
        out.append(Piece(name=name, notes=z[f"n{i}"], chroma=z[f"c{i}"].astype(np.float32),
                         bass=z[f"b{i}"].astype(np.int32), key=theory.Key(int(tonic), mode),
                         meter=theory.Meter(int(num), int(den)), source=int(src)))
    return out


# training samples ----------------------------------------------------------------------

def sample_batch(pieces: Sequence[Piece], rng: np.random.Generator, batch: int, *, p_drop: float = 0.15
                 ) -> dict[str, np.ndarray]:
    """Random windows with random transposition, track masking and condition dropout.

    Returns ``x0`` (B, 6, P, W) in {-1, 1}, ``cond`` (B, 18, P, W), ``cls`` (B,),
    ``loss_mask`` (B, 6, 1, W).
    """
    x0 = np.zeros((batch, N_TRACK_CH, N_PITCH, WINDOW), np.float32)
    cond = np.zeros((batch, N_COND_CH + N_KNOWN_CH, N_PITCH, WINDOW), np.float32)
    cls = np.zeros(batch, np.int64)
    lmask = np.zeros((batch, N_TRACK_CH, 1, WINDOW), np.float32)
    for b in range(batch):
        pc = pieces[int(rng.integers(len(pieces)))]
        spb = pc.meter.steps_per_bar
        nbars = max(1, pc.n_steps // spb)
        start = int(rng.integers(0, nbars)) * spb if rng.random() < 0.7 else int(rng.integers(0, pc.n_steps))
        start = min(start, max(0, pc.n_steps - 16))
        shift = int(rng.integers(-6, 6))
        notes, chroma, bass = transpose_piece_arrays(pc.notes, pc.chroma, pc.bass, shift)
        key = theory.Key((pc.key.tonic + shift) % 12, pc.key.mode)
        vals = roll_planes(notes, start, WINDOW)
        c = cond_planes(chroma, bass, key, pc.meter, start, WINDOW, pc.n_steps)
        # which tracks/steps are given: none (plain generation), some tracks (arrangement),
        # a prefix (continuation) or both
        known = np.zeros((N_TRACKS, WINDOW), np.float32)
        r = rng.random()
        if r < 0.35:
            pass
        elif r < 0.75:
            k = rng.random(N_TRACKS) < 0.5
            if k.all():
                k[int(rng.integers(N_TRACKS))] = False
            known[k] = 1.0
        else:
            known[:, : int(rng.integers(8, 33))] = 1.0
            if rng.random() < 0.5:
                k = rng.random(N_TRACKS) < 0.4
                known[k] = 1.0
        valid = c[8, 0] > 0
        known *= valid[None, :]
        kn = known_planes(vals, known)
        # condition dropout (harmony planes and texture class independently) for CFG
        if rng.random() < p_drop:
            c[list(HARMONY_CH)] = 0.0
        cls[b] = 0 if rng.random() < p_drop else pc.source
        x0[b] = vals * 2 - 1
        cond[b, :N_COND_CH] = c
        cond[b, N_COND_CH:] = kn
        lm = (1.0 - known) * valid[None, :]
        lmask[b, :, 0, :] = np.repeat(lm, 2, axis=0)
    return {"x0": x0, "cond": cond, "cls": cls, "loss_mask": lmask}
