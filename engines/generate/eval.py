"""Evaluation protocol: Mustango's control-adherence metrics, musical statistics, arrangement.

Control metrics (Melechovsky et al., *Mustango*, 2024; also used by text2midi / MidiCaps),
computed per generated piece against the controls the prompt stated:

TB
    the estimated tempo falls in the same tempo bin as the requested one (bins: the Italian
    markings of :data:`engines.generate.theory.TEMPO_BINS`).
TBT
    TB with tolerance: the neighbouring bin, or half/double the tempo (octave errors), counts.
CK
    the estimated key (tonic and major/minor) equals the requested one.
CKD
    CK, or the estimate is the requested key's relative major/minor or its dominant (keys a
    key-finder confuses with it and that share most of the scale).
PCM
    perfect chord match: the estimated chord sequence (repeats merged) starts with the requested
    progression, chord for chord in order.
ECM
    exact chord match: share of the requested chords matched at the same position (in order).
CMAO
    chord match in any order: share of the requested chords found anywhere in the estimate.
CMAOMM
    CMAO comparing root and major/minor only.
BC
    beat count: the estimated beats per bar equal the requested meter's (2 and 4 count as equal
    only for BCT).

Chords are compared in the vocabulary of :data:`engines.generate.theory.CHORD_VOCAB`
(maj, min, dim, aug, sus4, 7, maj7, m7, m7b5). The *audio* estimators use only the rendered
WAV: librosa beat tracking for tempo, mean CQT chroma with Krumhansl-Schmuckler for the key,
beat-synchronous chroma with chord templates for chords, and the periodicity of harmonic
change and low-frequency accents over the tracked beats for the beat count. The *MIDI*
estimators use the notes (key from the duration-weighted pitch-class histogram, chords per
bar from the sounding notes, tempo and meter from the file's meta events).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from engines.generate import theory

TEXT2MIDI_MIDICAPS = {"TB": 0.397, "TBT": 0.658, "CK": 0.336, "CKD": 0.356}


# metric definitions ---------------------------------------------------------------------

def tempo_metrics(est: float, target: float) -> dict[str, float]:
    b, t = theory.tempo_bin(est), theory.tempo_bin(target)
    tbt = abs(b - t) <= 1 or theory.tempo_bin(est * 2) == t or theory.tempo_bin(est / 2) == t
    return {"TB": float(b == t), "TBT": float(tbt)}


def key_metrics(est: theory.Key, target: theory.Key) -> dict[str, float]:
    def norm(k: theory.Key) -> tuple[int, bool]:
        return k.tonic, k.is_minor

    ck = norm(est) == norm(target)
    tk = theory.Key(target.tonic, "minor" if target.is_minor else "major")
    ckd = ck or norm(est) in (norm(tk.relative()), norm(tk.dominant()))
    return {"CK": float(ck), "CKD": float(ckd)}


def _collapse(seq: Sequence[str]) -> list[str]:
    out: list[str] = []
    for s in seq:
        if s != "N" and (not out or out[-1] != s):
            out.append(s)
    return out


def chord_metrics(est: Sequence[str], target: Sequence[str]) -> dict[str, float]:
    """``est`` and ``target`` are vocabulary labels (``"D:min"``); ``target`` one cycle."""
    e, t = _collapse(est), _collapse(target)
    if not t:
        return {"PCM": float("nan"), "ECM": float("nan"), "CMAO": float("nan"), "CMAOMM": float("nan")}
    pcm = float(e[: len(t)] == t)
    ecm = float(np.mean([i < len(e) and e[i] == c for i, c in enumerate(t)]))
    cmao = float(np.mean([c in e for c in t]))
    emm = {theory.majmin(x) for x in e}
    cmaomm = float(np.mean([theory.majmin(c) in emm for c in t]))
    return {"PCM": pcm, "ECM": ecm, "CMAO": cmao, "CMAOMM": cmaomm}


def beat_count_metrics(est: int, target: int) -> dict[str, float]:
    bct = est == target or {est, target} == {2, 4}
    return {"BC": float(est == target), "BCT": float(bct)}


def target_labels(chords: Sequence[str]) -> list[str]:
    return [theory.parse_chord(c).simplified() for c in chords]


# audio estimators ----------------------------------------------------------------------

@dataclass
class AudioEstimate:
    tempo: float
    key: theory.Key
    chords: list[str]
    beats_per_bar: int


def estimate_from_audio(y: np.ndarray, sr: int) -> AudioEstimate:
    """Tempo, key, chord sequence and beats per bar from a mono signal (audio only)."""
    import librosa

    y = np.asarray(y, np.float32)
    if y.ndim > 1:
        y = y.mean(axis=0) if y.shape[0] <= 2 else y.mean(axis=1)
    sr_a = 22050
    if sr != sr_a:
        y = librosa.resample(y, orig_sr=sr, target_sr=sr_a)
    hop = 512
    onset = librosa.onset.onset_strength(y=y, sr=sr_a, hop_length=hop)
    tempo, beats = librosa.beat.beat_track(onset_envelope=onset, sr=sr_a, hop_length=hop)
    tempo = float(np.atleast_1d(tempo)[0])
    chroma = librosa.feature.chroma_cqt(y=y, sr=sr_a, hop_length=hop)
    key, _ = theory.estimate_key(chroma.mean(axis=1))
    if len(beats) < 2:
        return AudioEstimate(tempo, key, [], 4)
    sync = librosa.util.sync(chroma, beats, aggregate=np.median)  # (12, n_beats + 1)
    labels = [theory.match_chord(sync[:, i])[0] for i in range(sync.shape[1])]
    # harmonic change and low-end accents per beat -> beats per bar
    nov = np.r_[0.0, [1.0 - _cos(sync[:, i], sync[:, i - 1]) for i in range(1, sync.shape[1])]]
    S = np.abs(librosa.stft(y, n_fft=2048, hop_length=hop))
    low = S[: int(200 / (sr_a / 2048))].sum(axis=0)
    low_b = librosa.util.sync(low[None, :], beats, aggregate=np.max)[0]
    low_b = low_b / (low_b.max() + 1e-9)
    acc = nov / (nov.max() + 1e-9) + 0.5 * low_b[: len(nov)]
    best, best_m = -1e9, 4
    for m in (2, 3, 4):
        if len(acc) < 2 * m:
            continue
        score = max(float(acc[ph::m].mean() - acc.mean()) for ph in range(m))
        score *= {2: 0.9, 3: 1.0, 4: 1.05}[m]
        if score > best:
            best, best_m = score, m
    # chords: merge single-beat blips, then runs
    merged = []
    for i, lab in enumerate(labels):
        if 0 < i < len(labels) - 1 and labels[i - 1] == labels[i + 1] and lab != labels[i - 1]:
            lab = labels[i - 1]
        merged.append(lab)
    runs = _collapse_runs(merged, min_len=2)
    return AudioEstimate(tempo, key, runs, best_m)


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    return float(a @ b / (na * nb)) if na > 0 and nb > 0 else 0.0


def _collapse_runs(labels: Sequence[str], min_len: int) -> list[str]:
    runs: list[list] = []
    for lab in labels:
        if runs and runs[-1][0] == lab:
            runs[-1][1] += 1
        else:
            runs.append([lab, 1])
    kept = [r[0] for r in runs if r[1] >= min_len] or [r[0] for r in runs]
    return _collapse(kept)


# MIDI estimators -----------------------------------------------------------------------

def estimate_from_song(song, *, exclude_drums: bool = True) -> AudioEstimate:  # noqa: ANN001
    """Key from the notes, chords per bar from the notes, tempo and meter from the file."""
    notes = [n for t in song.tracks if not (exclude_drums and t.is_drum) for n in t.notes]
    hist = np.zeros(12)
    for n in notes:
        hist[n.pitch % 12] += n.end - n.start
    key, _ = theory.estimate_key(hist)
    num, den = song.time_signature
    meter = theory.Meter(int(num), int(den))
    bar_s = meter.steps_per_bar * 60.0 / song.tempo / 4
    n_bars = int(np.ceil(max((n.end for n in notes), default=0) / bar_s - 1e-6))
    labels = []
    for b in range(n_bars):
        a, e = b * bar_s, (b + 1) * bar_s
        h = np.zeros(12)
        low = None
        for n in notes:
            ov = min(n.end, e) - max(n.start, a)
            if ov > 0:
                h[n.pitch % 12] += ov
                if n.start <= a + 0.05 and (low is None or n.pitch < low):
                    low = n.pitch
        labels.append(theory.match_chord(h, bass=None if low is None else low % 12)[0])
    # the file stores microseconds per beat: 92 bpm reads back as 91.99998
    return AudioEstimate(round(float(song.tempo), 2), key, _collapse(labels), meter.beats_per_bar)


def control_scores(est: AudioEstimate, *, tempo: float, key: theory.Key, chords: Sequence[str],
                   meter: theory.Meter) -> dict[str, float]:
    out = {}
    out.update(tempo_metrics(est.tempo, tempo))
    out.update(key_metrics(est.key, key))
    out.update(chord_metrics(est.chords, target_labels(chords)))
    out.update(beat_count_metrics(est.beats_per_bar, meter.beats_per_bar))
    return out


# musical statistics --------------------------------------------------------------------

def music_stats(notes: Sequence[tuple[int, float, float]], key: theory.Key, bar_s: float) -> dict[str, np.ndarray | float]:
    """Key-normalised pitch-class histogram, melodic interval histogram (-12..12), in-scale
    ratio, mean polyphony and notes per bar of ``(pitch, start, end)`` notes."""
    if not notes:
        return {"pc": np.zeros(12), "iv": np.zeros(25), "in_scale": float("nan"), "polyphony": 0.0, "density": 0.0}
    arr = np.array(notes, np.float64)
    pcs = (arr[:, 0].astype(int) - key.tonic) % 12
    pc = np.bincount(pcs, minlength=12).astype(float)
    pc /= pc.sum()
    order = np.argsort(arr[:, 1], kind="stable")
    # intervals between successive onsets of the top line
    starts: dict[float, int] = {}
    for i in order:
        s = round(arr[i, 1], 3)
        starts[s] = max(starts.get(s, 0), int(arr[i, 0]))
    top = [starts[s] for s in sorted(starts)]
    iv = np.clip(np.diff(top), -12, 12) + 12 if len(top) > 1 else np.array([], int)
    ivh = np.bincount(iv.astype(int), minlength=25).astype(float)
    ivh /= max(ivh.sum(), 1)
    in_scale = float(np.isin(arr[:, 0].astype(int) % 12, key.scale).mean())
    end = arr[:, 2].max()
    grid = np.arange(0, end, bar_s / 16)
    poly = np.array([((arr[:, 1] <= t) & (arr[:, 2] > t)).sum() for t in grid])
    poly = float(poly[poly > 0].mean()) if (poly > 0).any() else 0.0
    density = len(arr) / max(end / bar_s, 1e-9)
    return {"pc": pc, "iv": ivh, "in_scale": in_scale, "polyphony": poly, "density": density}


def histogram_overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Overlapping area of two normalised histograms (1 = identical)."""
    return float(np.minimum(a, b).sum())
