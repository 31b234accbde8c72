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
WAV (:func:`estimate_from_audio`): librosa beat tracking; a 36-bin CQT averaged per beat and read
by a learned pitch salience model (``resources/models/pitch``; hand-made chroma with harmonic
partials suppressed is the fallback) into treble chroma and the pitch class of the lowest note;
chord scores per beat (a learned emission model, ``resources/models/chords``; chord templates as
the fallback) decoded by a Viterbi pass jointly with the bar length and phase, which also decides
the tempo octave (a subdivision tracked as the beat shows as 6 or 8 beats per chord) and the beat
count; the key chosen jointly with the chords (the decoding's score under each key, its key
profile's correlation, and whether the chords open and close on its tonic triad). The *MIDI*
estimators use the notes (key from the duration-weighted pitch-class histogram, chords per bar
from the sounding notes, tempo and meter from the file's meta events).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

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


CHORD_MODEL_DIR = Path(__file__).resolve().parents[2] / "resources" / "models" / "chords"
SALIENCE_MODEL_DIR = Path(__file__).resolve().parents[2] / "resources" / "models" / "pitch"

#: key profiles (major, minor), pitch class 0 = tonic
KEY_PROFILES = {
    "krumhansl": (theory.KK_MAJOR, theory.KK_MINOR),
    # Temperley (2001), "What's key for key?"
    "temperley": (np.array([5.0, 2.0, 3.5, 2.0, 4.5, 4.0, 2.0, 4.5, 2.0, 3.5, 1.5, 4.0]),
                  np.array([5.0, 2.0, 3.5, 4.5, 2.0, 4.0, 2.0, 4.5, 3.5, 2.0, 1.5, 4.0])),
    # Albrecht & Shanahan (2013)
    "albrecht": (np.array([0.238, 0.006, 0.111, 0.006, 0.137, 0.094, 0.016, 0.214, 0.009, 0.080, 0.008, 0.081]),
                 np.array([0.220, 0.006, 0.104, 0.123, 0.019, 0.103, 0.012, 0.214, 0.062, 0.022, 0.061, 0.052])),
}
#: settings of the audio estimators (chosen on the reference pieces of bench/generate_estimators.py
#: rendered with the default SoundFont, seed 7; validated on other seeds and SoundFonts; never on
#: the evaluation prompts)
AUDIO_SETTINGS: dict[str, float | str] = {
    "key_profile": "albrecht", "cqt_bins_per_semitone": 3, "bass_weight": 1.0, "edge_weight": 1.0,
    "harmonic_suppression": 0.6,
    "seventh_penalty": 0.06, "bass_root_weight": 0.3, "bass_fifth_weight": 0.0, "hpss": 0.0,
    # chord decoder: change probabilities by metrical position, a diatonic bonus, emission temperature
    "p_change_bar": 0.8, "p_change_beat": 0.005, "key_prior": 0.05,
    "temperature": 0.05,
    # "learned" (default): chord emissions from the model trained by engines/generate/chord_train.py
    # (resources/models/chords; bonuses in nats; the templates when no weights are found);
    # "templates": the template scores above. learned_key_prior chosen on seed 7 and dev prompts
    "chord_model": "learned", "chord_model_dir": str(CHORD_MODEL_DIR), "learned_key_prior": 1.0,
    "learned_seventh_penalty": 1.0, "learned_temperature": 1.0,
    "learned_first_weight": 1.0,
    # tempo level: a tracked beat is ternary when its thirds carry ternary_ratio x the onset
    # strength of its half; runs shorter than min_run beats are dropped
    "ternary_ratio": 1.3, "max_tempo": 180.0, "min_run": 1,
    # continue the tracked beat grid to the start and end of the signal (1) or not (0): better on
    # dev data, not on the validation references (A320U TB 0.97 -> 0.90), so off
    "extend_beats": 0.0,
    # librosa's trimming of weak beats at the start and end (1) or none (0)
    "beat_trim": 0.0,
    # key decided jointly with the chords (> 0: weight of the key profile's correlation, in
    # the decoder's log units) or from the key profile alone (0)
    "joint_key": 5.0, "tonic_first": 3.0, "tonic_last": 1.0,
    # "chroma": CQT centre bins with harmonic partials suppressed; "salience": the learned
    # pitch salience model (resources/models/pitch, engines/generate/pitch_train.py)
    "front_end": "salience", "salience_model_dir": str(SALIENCE_MODEL_DIR),
}
_HARMONICS = ((12, 1.0), (19, 1.0), (24, 0.8), (28, 0.8), (31, 0.6), (34, 0.4), (36, 0.4))


def _suppress_harmonics(C: np.ndarray, amount: float) -> np.ndarray:
    """Greedy removal of the upper partials of each semitone bin, lowest first.

    ``C`` is a magnitude CQT ``(n_bins, n_frames)`` with 12 bins per octave; each bin's
    energy is taken as a fundamental and ``amount`` x (1/h) of it is removed from the bins
    of its harmonics h = 2..8 (what a piano or string tone adds to the fifth and the major
    third of a note would otherwise read as chord tones).
    """
    X = C.copy()
    n = X.shape[0]
    for p in range(n):
        f = X[p]
        for off, w in _HARMONICS:
            q = p + off
            if q < n:
                h = {12: 2, 19: 3, 24: 4, 28: 5, 31: 6, 34: 7, 36: 8}[off]
                X[q] = np.maximum(X[q] - amount * w * f / h, 0.0)
    return X


def _semitone_cqt(y: np.ndarray, sr: int, hop: int, fmin_midi: int, per_semitone: int, *,
                  all_bins: bool = False) -> np.ndarray:
    """Magnitude CQT ``(84, n_frames)``, one row per semitone from ``fmin_midi`` (with
    ``all_bins``, every bin: ``(84 * per_semitone, n_frames)``, semitone ``i``'s centre at row
    ``i * per_semitone + per_semitone // 2``).

    With ``per_semitone`` = 3 the transform has 36 bins per octave (three times narrower filters
    than a 12-bin one, so a note leaks far less into its neighbouring semitones, which is what
    confuses a major third with a minor one) and keeps each semitone's centre bin, tuned to
    the signal's estimated tuning.
    """
    import librosa

    k = max(1, per_semitone)
    tuning = float(librosa.estimate_tuning(y=y, sr=sr)) if k > 1 else 0.0
    fmin = librosa.midi_to_hz(fmin_midi + tuning - (k // 2) / k)
    C = np.abs(librosa.cqt(y, sr=sr, hop_length=hop, fmin=fmin, n_bins=84 * k, bins_per_octave=12 * k))
    return C if all_bins else C[k // 2::k]


#: semitones below / above an output semitone that the salience model's kernel reads
SALIENCE_CONTEXT = (12, 36)


@functools.lru_cache(maxsize=8)
def _weights(path: str) -> dict[str, np.ndarray] | None:
    """``model.safetensors`` in folder ``path`` as float64 arrays (None when there is none)."""
    f = Path(path) / "model.safetensors"
    if not f.is_file():
        return None
    from safetensors.numpy import load_file

    return {k: v.astype(np.float64) for k, v in load_file(str(f)).items()}


def _salience_model(path: str) -> dict[str, np.ndarray] | None:
    """The pitch salience model's weights (see :mod:`engines.generate.pitch_train`)."""
    return _weights(path)


def salience_input(cqt_beats: np.ndarray, per_semitone: int = 3) -> np.ndarray:
    """``(n_seg, per_semitone + 1, 84)``: the log-compressed beat CQT (the piece's 99th
    percentile maps to 1), one channel per bin of a semitone, plus the register (0 at C1, 1 at
    B7)."""
    C = np.asarray(cqt_beats, np.float64)
    ref = float(np.percentile(C, 99)) + 1e-9
    x = np.log1p(100.0 * C / ref) / np.log1p(100.0)
    n = C.shape[1]
    x = x.T.reshape(n, 84, per_semitone).transpose(0, 2, 1)
    reg = np.broadcast_to(np.linspace(0.0, 1.0, 84), (n, 1, 84))
    return np.concatenate([x, reg], axis=1)


def salience(cqt_beats: np.ndarray, w: dict[str, np.ndarray]) -> np.ndarray:
    """Probability ``(84, n_seg)`` that each semitone C1..B7 sounds in each segment: a small
    pitch-equivariant convolution (each semitone reads 12 below to 36 above: its own partials and
    the notes whose partials it could be) then two 1x1 layers."""
    from numpy.lib.stride_tricks import sliding_window_view

    x = salience_input(cqt_beats)
    lo, hi = SALIENCE_CONTEXT
    xp = np.pad(x, ((0, 0), (0, 0), (lo, hi)))
    win = sliding_window_view(xp, lo + hi + 1, axis=2)  # (n, c, 84, K)
    h = np.einsum("nctk,ock->not", win, w["conv_weight"]) + w["conv_bias"][None, :, None]
    h = np.maximum(h, 0.0)
    h = np.maximum(np.einsum("not,po->npt", h, w["mix_weight"][:, :, 0]) + w["mix_bias"][None, :, None], 0.0)
    z = np.einsum("npt,p->nt", h, w["out_weight"][0, :, 0]) + w["out_bias"][0]
    sal = (1.0 / (1.0 + np.exp(-z))).T
    energy = np.asarray(cqt_beats, np.float64).sum(0)
    sal[:, energy <= 1e-6 * energy.max()] = 0.0  # silent segments: nothing sounds
    return sal


def salience_chroma(sal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Treble and bass chroma ``(12, n)`` from semitone salience ``(84, n)`` (row 0 = C1):
    every semitone's salience folded into its pitch class, and the probability that each pitch
    class holds the lowest sounding note (semitone i sounds and none below it does)."""
    s = np.clip(np.asarray(sal, np.float64), 0.0, 1.0)
    none_below = np.cumprod(np.vstack([np.ones((1, s.shape[1])), 1.0 - s[:-1]]), axis=0)
    lowest = s * none_below
    return _fold(s, 24), _fold(lowest, 24)


def _fold(C: np.ndarray, fmin_midi: int) -> np.ndarray:
    out = np.zeros((12, C.shape[1]))
    for i in range(C.shape[0]):
        out[(fmin_midi + i) % 12] += C[i]
    return out


def estimate_key_from_chroma(chroma: np.ndarray, *, profile: str = "temperley") -> tuple[theory.Key, float]:
    """Best major/minor key for a 12-bin (duration-weighted) chroma with the named key profile."""
    c = np.asarray(chroma, np.float64)
    if c.shape != (12,) or not np.isfinite(c).all() or c.std() < 1e-12:
        return theory.Key(0, "major"), 0.0
    return max(key_correlations(c, profile), key=lambda kr: kr[1])


def _chord_scores(treble: np.ndarray, bass: np.ndarray, s: dict[str, float | str],
                  key: theory.Key | None = None) -> np.ndarray:
    """Template scores ``(n_labels, n_frames)``: cosine of treble chroma and chord template,
    a bonus where the bass chroma peaks on the chord's root (a smaller one where it is on the
    chord's fifth: the alternating root-fifth bass of most accompaniments), a prior favouring triads and,
    given an (estimated) key, a bonus for chords whose tones are all in its scale (the
    harmonic minor's raised seventh included)."""
    T = theory.TEMPLATES / np.linalg.norm(theory.TEMPLATES, axis=1, keepdims=True)
    tn = treble / (np.linalg.norm(treble, axis=0, keepdims=True) + 1e-9)
    sims = T @ tn
    roots = np.array([theory.PITCH_NAMES.index(lab.split(":")[0]) for lab in theory.TEMPLATE_LABELS])
    bn = bass / (bass.max(axis=0, keepdims=True) + 1e-9)
    fifths = (roots + np.array([7 if lab.split(":")[1] not in ("dim", "hdim7", "aug") else
                                (6 if lab.split(":")[1] != "aug" else 8) for lab in theory.TEMPLATE_LABELS])) % 12
    sims = sims + float(s["bass_root_weight"]) * bn[roots] + float(s["bass_fifth_weight"]) * bn[fifths]
    prior = np.array([{"maj": 0.0, "min": 0.0, "dim": -0.08, "aug": -0.15, "sus4": -0.12}.get(
        lab.split(":")[1], -float(s["seventh_penalty"])) for lab in theory.TEMPLATE_LABELS])
    if key is not None and float(s["key_prior"]) > 0:
        scale = set(key.scale) | ({(key.tonic + 11) % 12} if key.is_minor else set())
        diatonic = np.array([set(np.flatnonzero(t)) <= scale for t in theory.TEMPLATES])
        prior = prior + float(s["key_prior"]) * diatonic
    return sims + prior[:, None]


def _chord_model(path: str) -> dict[str, np.ndarray] | None:
    """The learned chord emission model's weights (see :mod:`engines.generate.chord_train`)."""
    return _weights(path)


@functools.lru_cache(maxsize=4)
def _chord_model_front_end(path: str) -> str:
    """The front end whose chroma the chord model at ``path`` was trained on."""
    try:
        return str(json.loads((Path(path) / "config.json").read_text("utf-8")).get("front_end", "chroma"))
    except (OSError, ValueError):
        return "chroma"


def _front_end(s: dict[str, float | str]) -> str:
    """The front end :func:`audio_features` uses with settings ``s`` (the hand-made chroma when
    the salience weights are missing)."""
    if str(s["front_end"]) == "salience" and _salience_model(str(s["salience_model_dir"])) is not None:
        return "salience"
    return "chroma"


def _learned_scores(treble: np.ndarray, bass: np.ndarray, s: dict[str, float | str],
                    key: theory.Key | None) -> np.ndarray:
    """Log-probabilities ``(n_labels, n_beats)`` of the learned root-invariant chord model,
    plus ``learned_key_prior`` nats for chords diatonic to the estimated key."""
    from engines.generate.chord_train import features, rotations

    w = _chord_model(str(s["chord_model_dir"]))
    assert w is not None
    X = np.stack([features(treble[:, j], bass[:, j]) for j in range(treble.shape[1])])
    R = rotations(X).astype(np.float64)  # (n, 12, 24)
    h = np.maximum(R @ w["0_weight"].T + w["0_bias"], 0.0)
    out = h @ w["2_weight"].T + w["2_bias"]  # (n, 12 roots, Q)
    logits = out.transpose(0, 2, 1).reshape(len(X), -1)  # (n, Q * 12): TEMPLATE_LABELS order
    logits = logits - logits.max(1, keepdims=True)
    logp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    if key is not None and float(s["learned_key_prior"]) > 0:
        scale = set(key.scale) | ({(key.tonic + 11) % 12} if key.is_minor else set())
        diatonic = np.array([set(np.flatnonzero(t)) <= scale for t in theory.TEMPLATES])
        logp = logp + float(s["learned_key_prior"]) * diatonic
    # the training pieces hold sevenths in ~40 % of bars, far more than most music: a prior
    # (in nats) back towards triads
    seventh = np.array([lab.split(":")[1] in ("7", "maj7", "min7", "hdim7") for lab in theory.TEMPLATE_LABELS])
    logp = logp - float(s["learned_seventh_penalty"]) * seventh
    return logp.T


def _viterbi(scores: np.ndarray, p_change: np.ndarray | float, *, temperature: float = 0.05
             ) -> tuple[list[int], float]:
    """Most likely label path and its log score: emission ``exp(scores / temperature)``,
    a change of label into beat ``t`` with probability ``p_change[t]`` (spread uniformly over
    the other labels), else the label stays."""
    n, m = scores.shape
    if m == 0:
        return [], 0.0
    pc = np.broadcast_to(np.asarray(p_change, np.float64), (m,))
    logp = scores / temperature
    acc = logp[:, 0].copy()
    back = np.zeros((n, m), np.int64)
    for t in range(1, m):
        p = float(np.clip(pc[t], 1e-6, 1 - 1e-6))
        stay, move = np.log1p(-p), np.log(p / (n - 1))
        best_prev = int(np.argmax(acc))
        cand_move = acc[best_prev] + move
        cand_stay = acc + stay
        take_stay = cand_stay >= cand_move
        back[:, t] = np.where(take_stay, np.arange(n), best_prev)
        acc = np.where(take_stay, cand_stay, cand_move) + logp[:, t]
    path = [int(np.argmax(acc))]
    best = float(acc[path[0]])
    for t in range(m - 1, 0, -1):
        path.append(int(back[path[-1], t]))
    return path[::-1], best


def _key_chroma(treb_c: np.ndarray, bass_c: np.ndarray, tempo: float, s: dict[str, float | str]) -> np.ndarray:
    """Treble + bass chroma summed over time, the first and last 4 beats weighted more."""
    sr_a, hop = 22050, 512
    w = np.ones(treb_c.shape[1])
    edge = int(round(4 * 60.0 / (tempo if tempo > 0 else 120.0) * sr_a / hop))  # no beats: 120
    w[:edge] += float(s["edge_weight"])
    w[-edge - int(sr_a / hop):] += float(s["edge_weight"])
    kc = (treb_c * w).sum(1) + float(s["bass_weight"]) * (bass_c * w).sum(1)
    return kc / (kc.sum() + 1e-9)


def _key(treb_c: np.ndarray, bass_c: np.ndarray, tempo: float, s: dict[str, float | str]) -> theory.Key:
    """The key profile best correlated with :func:`_key_chroma`."""
    return estimate_key_from_chroma(_key_chroma(treb_c, bass_c, tempo, s), profile=str(s["key_profile"]))[0]


def key_correlations(chroma: np.ndarray, profile: str) -> list[tuple[theory.Key, float]]:
    """All 24 major/minor keys with the correlation of their profile and ``chroma``."""
    c = np.asarray(chroma, np.float64)
    out = []
    for mode, prof in zip(("major", "minor"), KEY_PROFILES[profile], strict=True):
        for tonic in range(12):
            r = float(np.corrcoef(c, np.roll(prof, tonic))[0, 1]) if c.std() > 1e-12 else 0.0
            out.append((theory.Key(tonic, mode), r))
    return out


def _tonic_bonus(path: Sequence[int], k: theory.Key, s: dict[str, float | str]) -> float:
    """``tonic_first`` if the decoded chord path opens on ``k``'s tonic triad (major or minor as
    the key; sevenths count), ``tonic_last`` if it closes on it: most music starts and ends on
    its tonic chord, and that tells a minor key from its relative major, whose chords are the
    same."""
    if not path:
        return 0.0
    tonic = f"{theory.PITCH_NAMES[k.tonic]}:{'min' if k.is_minor else 'maj'}"
    first = theory.majmin(theory.TEMPLATE_LABELS[path[0]]) == tonic
    last = theory.majmin(theory.TEMPLATE_LABELS[path[-1]]) == tonic
    return float(s["tonic_first"]) * first + float(s["tonic_last"]) * last


def _decode_bars(scores: np.ndarray, s: dict[str, float | str]) -> tuple[int, list[int], float]:
    """Bar length in beats (2, 3, 4, 6 or 8) and chord path of the best-scoring metrical model.

    Model ``(L, phase)`` lets the chord change with probability ``p_change_bar`` on its bar
    lines and ``p_change_beat`` elsewhere; each bar line where the chord stays costs
    ``log(1 - p_change_bar)``, so a bar shorter than the music's harmonic rhythm pays for its
    unused bar lines and a longer one for the changes it must place off its bar lines.
    """
    m = scores.shape[1]
    best: tuple[float, int, list[int]] = (-np.inf, 4, [])
    for L in (2, 3, 4, 6, 8):
        if m < 2 * L + 1 and L != 2:
            continue
        for ph in range(L):
            pos = (np.arange(m) - ph) % L
            pch = np.where(pos == 0, float(s["p_change_bar"]), float(s["p_change_beat"]))
            path, sc = _viterbi(scores, pch, temperature=float(s["temperature"]))
            if sc > best[0]:
                best = (sc, L, path)
    return best[1], best[2], best[0]


def _ternary(onset: np.ndarray, beats: np.ndarray) -> float:
    """Onset strength at the thirds of each tracked beat over that at its half (> 1: the beat
    divides in three, as the dotted quarter of 6/8 does)."""
    third, half = [], []
    def at(a: int, b: int, f: float) -> float:
        i = int(round(a + f * (b - a)))
        return float(onset[max(i - 1, 0): i + 2].max()) if i < len(onset) else 0.0

    for a, b in zip(beats[:-1], beats[1:], strict=True):
        if b - a < 6:
            continue
        third.append((at(a, b, 1 / 3) + at(a, b, 2 / 3)) / 2)
        half.append(at(a, b, 0.5))
    if not third:
        return 1.0
    return float(np.mean(third) / (np.mean(half) + 1e-9))


def _accent_period(acc: np.ndarray) -> int:
    """2 or 3: the period of the strongest accents in a per-beat accent strength."""
    best, best_p = -np.inf, 2
    for p in (2, 3):
        if len(acc) < 2 * p:
            continue
        v = max(float(acc[ph::p].mean()) for ph in range(p)) - float(acc.mean())
        if v > best:
            best, best_p = v, p
    return best_p


def audio_features(y: np.ndarray, sr: int, *, settings: dict[str, float | str] | None = None
                   ) -> dict[str, np.ndarray | float]:
    """What the audio estimators (and the chord model's training) read from a signal.

    Returns ``beats`` (frame indices at 22050 Hz, hop 512), ``tracker_tempo``, ``onset``,
    ``onset_bands`` (low / high), ``treble`` and ``bass`` chroma ``(12, n_frames)`` and their
    beat-synchronous means ``treble_beats`` / ``bass_beats`` ``(12, n_beats + 1)`` (segment 0
    runs up to the first beat).
    """
    import librosa

    s = {**AUDIO_SETTINGS, **(settings or {})}
    y = np.asarray(y, np.float32)
    if y.ndim > 1:
        y = y.mean(axis=0) if y.shape[0] <= 2 else y.mean(axis=1)
    sr_a = 22050
    if sr != sr_a:
        y = librosa.resample(y, orig_sr=sr, target_sr=sr_a)
    hop = 512
    if float(s["hpss"]) > 0:
        y_h = librosa.effects.harmonic(y, margin=float(s["hpss"]))
    else:
        y_h = y
    onset_bands = librosa.onset.onset_strength_multi(y=y, sr=sr_a, hop_length=hop, channels=[0, 12, 128])
    onset = librosa.onset.onset_strength(y=y, sr=sr_a, hop_length=hop)
    tempo_ac, beats = librosa.beat.beat_track(onset_envelope=onset, sr=sr_a, hop_length=hop,
                                              trim=bool(float(s["beat_trim"])))
    tempo = float(np.atleast_1d(tempo_ac)[0])
    if float(s["extend_beats"]) > 0 and len(beats) >= 4:
        beats = _extend_beats(np.asarray(beats, np.int64), len(onset))
    fmin_midi = 24  # C1
    k = int(s["cqt_bins_per_semitone"])
    C_all = _semitone_cqt(y_h, sr_a, hop, fmin_midi, k, all_bins=True)
    # beats strictly inside the signal, so that there are always len(beats) + 1 segments,
    # segment 0 running up to the first beat
    beats = np.unique(np.clip(np.asarray(beats, np.int64), 1, max(len(onset) - 1, 1)))
    if len(beats) >= 3 and beats[0] < 0.5 * np.median(np.diff(beats)):
        # a sliver before the first beat is an attack, not a chord: it joins the first beat
        beats = beats[1:]
    bl = [int(b) for b in beats]

    def sync(M: np.ndarray) -> np.ndarray:
        return librosa.util.sync(M, bl, aggregate=np.mean) if len(bl) else M.mean(1, keepdims=True)

    cqt_b = sync(C_all)
    if _front_end(s) == "salience":
        sal_w = _salience_model(str(s["salience_model_dir"]))
        assert sal_w is not None
        # learned front end: per-beat semitone salience, folded into pitch classes (treble) and
        # the pitch class of the lowest sounding note (bass); the frame-level chroma repeats the
        # beat values (the key reads it)
        sal = salience(cqt_b, sal_w)
        treb_b, bass_b = salience_chroma(sal)
        idx = np.searchsorted(np.asarray(bl, np.int64), np.arange(C_all.shape[1]), side="right")
        treb_c, bass_c = treb_b[:, idx], bass_b[:, idx]
    else:
        C = C_all[k // 2::k]
        if float(s["harmonic_suppression"]) > 0:
            C = _suppress_harmonics(C, float(s["harmonic_suppression"]))
        split = 48 - fmin_midi  # C3
        bass_c = _fold(C[:split], fmin_midi)
        treb_c = _fold(C[split:], fmin_midi + split)
        treb_b, bass_b = sync(treb_c), sync(bass_c)
    return {"beats": np.asarray(beats, np.int64), "tracker_tempo": tempo, "onset": onset, "onset_bands": onset_bands,
            "treble": treb_c, "bass": bass_c, "treble_beats": treb_b, "bass_beats": bass_b, "cqt_beats": cqt_b}


def estimate_from_audio(y: np.ndarray, sr: int, *, settings: dict[str, float | str] | None = None
                        ) -> AudioEstimate:
    """Tempo, key, chord sequence and beats per bar from a mono signal (audio only).

    * beats: librosa's dynamic-programming beat tracker on the onset envelope (log-normal
      tempo prior around 120 bpm); the beat period is a straight-line fit of the beat times;
    * pitch: a 36-bin-per-octave CQT tuned to the signal, averaged per tracked beat, read by the
      learned salience model (:func:`salience`: the probability that each semitone C1..B7
      sounds) into a *treble* chroma (every semitone folded) and a *bass* one (the pitch class
      of the lowest sounding note); without its weights, hand-made chroma: one centre bin per
      semitone, upper partials removed greedily, below / above C3;
    * chords and metrical level together: beat-synchronous chord scores (by default the log-
      probabilities of the learned model of :mod:`engines.generate.chord_train`; else templates:
      treble cosine, bass on the root, a triad prior) plus a bonus for chords diatonic to a
      key, decoded by a Viterbi pass in which chords change on bar lines with probability
      ``p_change_bar`` and elsewhere with ``p_change_beat``, for every bar length L of 2, 3, 4,
      6 or 8 tracked beats and every phase; the best-scoring (L, phase) wins
      (:func:`_decode_bars`);
    * key: with ``joint_key`` > 0 (the default), the decoding above is run under each of the 24
      keys and the key scoring best wins: the decoding's log-probability, plus ``joint_key`` x
      its key profile's correlation with the chroma (Albrecht-Shanahan's profile, the first and
      last 4 beats weighted more), plus ``tonic_first`` / ``tonic_last`` when the decoded chords
      open / close on its tonic triad (what tells a minor key from its relative major: their
      chords are the same); else the key profile alone;
    * tempo octave and beats per bar from L: 8 or 6 tracked beats per bar means the tracker
      followed a subdivision (4/4 or 3/4 at double speed, or the eighths of 6/8, told apart by
      the period of the low-band accents), so the tempo is halved; 3 or 4 keep it; 2 with beats
      that divide in three (onsets at the thirds of the beat) is 6/8 counted in dotted quarters
      (quarter-note tempo = 1.5 x), 2 with binary beats is 4/4 at half speed (doubled while that
      stays under ``max_tempo``). The assumption is the usual one of notated music: a chord
      lasts one bar, bars hold 2-4 beats; a piece whose chords last two bars reads at double
      tempo.
    """

    s = {**AUDIO_SETTINGS, **(settings or {})}
    f = audio_features(y, sr, settings=s)
    arr = {k: np.asarray(v) for k, v in f.items()}
    beats, treb_c, bass_c, treb_b, bass_b = (arr[k] for k in ("beats", "treble", "bass", "treble_beats", "bass_beats"))
    onset, onset_bands, tempo = arr["onset"], arr["onset_bands"], float(f["tracker_tempo"])
    if len(beats) < 4:
        return AudioEstimate(tempo, _key(treb_c, bass_c, tempo, s), [], 4)
    tracked = _beat_tempo(beats, 512 / 22050)
    # key (first pass, at the tracked tempo: it only sets the edge weights)
    key = _key(treb_c, bass_c, tracked, s)
    # chords and metrical level together: for each bar length L (in tracked beats) and phase,
    # the best chord path when chords change on bar lines (else rarely); the best-scoring
    # (L, phase) gives the chord sequence, the tempo octave and the beats per bar
    learned = (str(s["chord_model"]) == "learned" and _chord_model(str(s["chord_model_dir"])) is not None
               and _chord_model_front_end(str(s["chord_model_dir"])) == _front_end(s))

    def chord_scores(k: theory.Key) -> np.ndarray:
        if not learned:
            return _chord_scores(treb_b, bass_b, s, k)
        sc = _learned_scores(treb_b, bass_b, s, k)
        if float(s["learned_first_weight"]) > 0:
            # segment 0 runs from the start to the first tracked beat (a whole bar when the
            # tracker starts late): its log-probabilities count once per beat period it spans,
            # so a first chord heard only there is not merged into the next one
            period = 60.0 / tracked * 22050 / 512
            sc[:, 0] *= float(np.clip(beats[0] / period, 1.0, 4.0)) * float(s["learned_first_weight"])
        return sc

    if learned:
        s = {**s, "temperature": float(s["learned_temperature"])}
    if float(s["joint_key"]) > 0:
        # key and chords together: every key's chord decoding (with its diatonic bonus) scored
        # by its Viterbi log-probability plus joint_key x the key profile's correlation
        kc = _key_chroma(treb_c, bass_c, tracked, s)
        best: tuple[float, theory.Key, int, list[int]] = (-np.inf, key, 4, [])
        for k, r in key_correlations(kc, str(s["key_profile"])):
            L, path, sc = _decode_bars(chord_scores(k), s)
            total = sc + float(s["joint_key"]) * r + _tonic_bonus(path, k, s)
            if total > best[0]:
                best = (total, k, L, path)
        _, key, period, best_path = best
    else:
        period, best_path, _ = _decode_bars(chord_scores(key), s)
    max_tempo = float(s["max_tempo"])
    if period == 8:
        tempo, bpb = tracked / 2, 4
    elif period == 6:
        low = onset_bands[0][np.clip(beats, 0, onset_bands.shape[1] - 1)]
        tempo, bpb = tracked / 2, (2 if _accent_period(low) == 3 else 3)
    elif period == 2:
        if _ternary(onset, beats) > float(s["ternary_ratio"]):
            tempo, bpb = tracked * 1.5, 2
        elif tracked * 2 <= max_tempo:
            tempo, bpb = tracked * 2, 4
        else:
            tempo, bpb = tracked, 2
    else:
        tempo, bpb = tracked, period
    energy = (treb_b + bass_b).sum(0)
    labels = [theory.TEMPLATE_LABELS[i] if energy[j] > 1e-3 * energy.max() else "N"
              for j, i in enumerate(best_path)]
    runs = _collapse_runs(labels, min_len=int(s["min_run"]))
    return AudioEstimate(tempo, key, runs, bpb)


def _extend_beats(beats: np.ndarray, n_frames: int) -> np.ndarray:
    """The tracked beat grid continued at its median period back to the start of the signal and
    on to its end (the tracker drops weak leading and trailing beats; the chords under them
    would otherwise be one long segment that the decoder merges into its neighbour)."""
    period = float(np.median(np.diff(beats)))
    if period < 2:
        return beats
    head = np.arange(beats[0] - period, -0.5 * period, -period)[::-1]
    tail = np.arange(beats[-1] + period, n_frames - 0.5 * period, period)
    out = np.r_[head, beats, tail]
    return np.unique(np.clip(np.round(out), 0, n_frames - 1).astype(np.int64))


def _beat_tempo(beats: np.ndarray, frame_s: float) -> float:
    """Tempo from a straight-line fit of the beat times (sub-frame precision; the tracker's
    own estimate is quantised to the autocorrelation lag, ~2 % at 120 bpm)."""
    b = np.asarray(beats, np.float64)
    if len(b) >= 6:
        b = b[1:-1]  # the first and last beats are the least reliable
    period = float(np.polyfit(np.arange(len(b)), b, 1)[0]) * frame_s
    return 60.0 / period


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
    counts = np.array([((arr[:, 1] <= t) & (arr[:, 2] > t)).sum() for t in grid])
    poly = float(counts[counts > 0].mean()) if (counts > 0).any() else 0.0
    density = len(arr) / max(end / bar_s, 1e-9)
    return {"pc": pc, "iv": ivh, "in_scale": in_scale, "polyphony": poly, "density": density}


def histogram_overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Overlapping area of two normalised histograms (1 = identical)."""
    return float(np.minimum(a, b).sum())
