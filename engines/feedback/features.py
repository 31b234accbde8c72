"""What the preference learner sees of a candidate: a fixed-length feature vector.

Three groups, always in this order (:data:`FEATURE_NAMES`):

* **MIDI** (when the candidate has a MIDI file; zeros and ``has_midi = 0`` otherwise): note
  density per bar and per second, pitch centroid / spread / range, the top line (the highest
  note at each onset: its register, density, legato and interval size), polyphony, velocity,
  note length, share of notes in the key's scale, drum density, number of tracks;
* **audio** (from :func:`engines.analysis.features.analyze_audio` of the stored audio): spectral
  brightness, onset density, energy, loudness, key clarity and the 13 MFCC means;
* **controls** (the pair's prompt/controls; the same for both sides of a generate pair, so they
  only matter through interactions the model learns): tempo, minor mode, density, drums.

Audio and MIDI features are cached by the file's content hash under
``<home>/cache/feedback/features`` (a candidate's stored blob is named by its hash, so the
cache key is free).

Heavy modules are imported inside functions; importing this module is cheap.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from engines.core.atomic import atomic_write_text
from engines.core.errors import CorruptFileError, EngineError

#: bump when a feature's definition changes (invalidates the cache)
FEATURES_VERSION = 1

MIDI_FEATURES = (
    "has_midi", "notes_per_bar", "notes_per_s", "pitch_mean", "pitch_std", "pitch_range",
    "top_pitch_mean", "top_notes_per_bar", "top_legato", "top_dur_beats", "top_abs_interval",
    "polyphony", "velocity_mean", "velocity_std", "dur_beats", "in_scale", "drum_notes_per_bar",
    "n_tracks",
)
AUDIO_FEATURES = (
    "has_audio", "brightness_khz", "onset_density", "energy", "loudness_db", "key_clarity",
    *(f"mfcc{i}" for i in range(1, 14)),
)
CONTROL_FEATURES = ("tempo_100", "minor", "density_ctl", "drums_ctl")
FEATURE_NAMES: tuple[str, ...] = MIDI_FEATURES + AUDIO_FEATURES + CONTROL_FEATURES
N_FEATURES = len(FEATURE_NAMES)

_MAJOR = (0, 2, 4, 5, 7, 9, 11)
_MINOR = (0, 2, 3, 5, 7, 8, 10)
_PCS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}


# --------------------------------------------------------------------------- MIDI

def _key_scale(key: str | None) -> set[int] | None:
    """``"Am"``, ``"F#"``, ``"Bb minor"`` -> pitch classes of the key's scale (None if unreadable)."""
    if not key:
        return None
    k = key.strip()
    if not k or k[0].upper() not in _PCS:
        return None
    tonic = _PCS[k[0].upper()]
    rest = k[1:]
    if rest[:1] in ("#", "b"):
        tonic += 1 if rest[0] == "#" else -1
        rest = rest[1:]
    rest = rest.strip().lower()
    minor = rest.startswith("m") and not rest.startswith("maj")
    return {(tonic + i) % 12 for i in (_MINOR if minor else _MAJOR)}


def midi_features(song: Any, *, key: str | None = None) -> dict[str, float]:
    """Features of a :class:`engines.media.midi.Song` (see the module docstring).

    Parameters
    ----------
    song : Song
        As read by :func:`engines.media.midi.read_midi`.
    key : str, optional
        The requested key (``"Am"``); the file's key meta otherwise.
    """
    tempo = float(song.tempo or 120.0)
    beat_s = 60.0 / tempo
    num, den = song.time_signature
    bar_s = beat_s * 4.0 * num / den
    pitched = [n for t in song.tracks if not t.is_drum for n in t.notes]
    drums = [n for t in song.tracks if t.is_drum for n in t.notes]
    end = max((n.end for t in song.tracks for n in t.notes), default=0.0)
    bars = max(end / bar_s, 1e-6) if end > 0 else 1.0
    out = dict.fromkeys(MIDI_FEATURES, 0.0)
    out["has_midi"] = 1.0
    out["n_tracks"] = float(sum(1 for t in song.tracks if t.notes))
    out["drum_notes_per_bar"] = len(drums) / bars
    if not pitched:
        return out
    p = np.array([n.pitch for n in pitched], np.float64)
    s = np.array([n.start for n in pitched], np.float64)
    e = np.array([n.end for n in pitched], np.float64)
    v = np.array([n.velocity for n in pitched], np.float64)
    out["notes_per_bar"] = len(pitched) / bars
    out["notes_per_s"] = len(pitched) / max(end, 1e-6)
    out["pitch_mean"] = float(p.mean())
    out["pitch_std"] = float(p.std())
    out["pitch_range"] = float(np.percentile(p, 95) - np.percentile(p, 5))
    out["velocity_mean"] = float(v.mean())
    out["velocity_std"] = float(v.std())
    out["dur_beats"] = float(np.mean(e - s) / beat_s)
    scale = _key_scale(key or getattr(song, "key", None))
    if scale is not None:
        out["in_scale"] = float(np.mean([int(x) % 12 in scale for x in p]))
    # polyphony: sounding notes on a 16th grid, over the steps where anything sounds
    step = beat_s / 4.0
    n_steps = max(1, int(math.ceil(end / step)))
    counts = np.zeros(n_steps + 1, np.int64)
    a = np.clip(np.floor(s / step + 1e-6).astype(int), 0, n_steps)
    b = np.clip(np.maximum(np.ceil(e / step - 1e-6).astype(int), a + 1), 0, n_steps)
    np.add.at(counts, a, 1)
    np.add.at(counts, b, -1)
    poly = np.cumsum(counts)[:n_steps]
    out["polyphony"] = float(poly[poly > 0].mean()) if (poly > 0).any() else 0.0
    # top line: the highest pitch starting at each onset (onsets within 1/3 of a 16th merged)
    order = np.argsort(s, kind="stable")
    top: list[tuple[float, float, float]] = []  # start, end, pitch
    for i in order:
        if top and s[i] - top[-1][0] < step / 3:
            if p[i] > top[-1][2]:
                top[-1] = (top[-1][0], e[i], p[i])
            continue
        top.append((s[i], e[i], p[i]))
    tp = np.array([t[2] for t in top])
    out["top_pitch_mean"] = float(tp.mean())
    out["top_notes_per_bar"] = len(top) / bars
    durs = np.array([t[1] - t[0] for t in top])
    out["top_dur_beats"] = float(durs.mean() / beat_s)
    if len(top) > 1:
        ioi = np.array([top[i + 1][0] - top[i][0] for i in range(len(top) - 1)])
        out["top_legato"] = float(np.mean(np.clip(durs[:-1] / np.maximum(ioi, 1e-6), 0.0, 1.0)))
        out["top_abs_interval"] = float(np.mean(np.abs(np.diff(tp))))
    else:
        out["top_legato"] = 1.0
    return out


def midi_file_features(path: str | os.PathLike[str], *, key: str | None = None) -> dict[str, float]:
    from engines.media.midi import read_midi

    return midi_features(read_midi(path), key=key)


# --------------------------------------------------------------------------- audio

def audio_signal_features(y: np.ndarray, sr: int) -> dict[str, float]:
    """Audio features of a signal (mono or ``(channels, n)``)."""
    from engines.analysis.features import analyze_audio

    f = analyze_audio(np.asarray(y, np.float32), sr)
    out = dict.fromkeys(AUDIO_FEATURES, 0.0)
    out["has_audio"] = 1.0
    out["brightness_khz"] = float(f.brightness) / 1000.0
    out["onset_density"] = float(f.onset_density)
    out["energy"] = float(f.energy)
    out["loudness_db"] = float(f.loudness_db)
    out["key_clarity"] = float(f.key_confidence)
    for i, m in enumerate(f.timbre[:13]):
        out[f"mfcc{i + 1}"] = float(m) / 10.0
    return out


def audio_file_features(path: str | os.PathLike[str]) -> dict[str, float]:
    from engines.analysis.features import ANALYSIS_SR
    from engines.media.audio import load_audio

    y = load_audio(path, sr=ANALYSIS_SR, mono=True, max_duration=600.0)
    return audio_signal_features(y, ANALYSIS_SR)


# --------------------------------------------------------------------------- controls

def control_features(controls: Mapping[str, Any] | None) -> dict[str, float]:
    c = dict(controls or {})
    out = dict.fromkeys(CONTROL_FEATURES, 0.0)
    try:
        out["tempo_100"] = float(c.get("tempo") or 0.0) / 100.0
    except (TypeError, ValueError):
        pass
    key = str(c.get("key") or "")
    mode = str(c.get("mode") or "")
    out["minor"] = float(mode in ("minor", "dorian", "phrygian") or (key.endswith("m") and not mode))
    try:
        dens = c.get("density")
        out["density_ctl"] = float(dens) if dens is not None else 0.5
    except (TypeError, ValueError):
        out["density_ctl"] = 0.5
    out["drums_ctl"] = float(bool(c.get("drums")))
    return out


# --------------------------------------------------------------------------- vectors

def vector(midi: Mapping[str, float] | None, audio: Mapping[str, float] | None,
           controls: Mapping[str, Any] | None) -> np.ndarray:
    """One candidate's features in :data:`FEATURE_NAMES` order (missing groups are zeros)."""
    d: dict[str, float] = {}
    d.update(midi or {})
    d.update(audio or {})
    d.update(control_features(controls))
    x = np.array([float(d.get(n, 0.0)) for n in FEATURE_NAMES], np.float32)
    return np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)


def _file_key(path: Path) -> str:
    """The blob's name is its SHA-256; other files are hashed by content."""
    stem = path.stem
    if len(stem) == 64 and all(c in "0123456789abcdef" for c in stem):
        return stem
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class FeatureCache:
    """Audio / MIDI features by content hash in ``<cache>/feedback/features`` (JSON per file)."""

    def __init__(self, home: Any | None) -> None:
        self.dir = Path(home.cache) / "feedback" / "features" if home is not None else None

    def _get(self, kind: str, path: Path, compute: Any) -> dict[str, float]:
        key = f"{kind}-v{FEATURES_VERSION}-{_file_key(path)}"
        f = self.dir / key[-2:] / f"{key}.json" if self.dir is not None else None
        if f is not None:
            try:
                return {k: float(v) for k, v in json.loads(f.read_text("utf-8")).items()}
            except (OSError, ValueError, TypeError, AttributeError):
                pass
        d = compute(path)
        if f is not None:
            try:
                atomic_write_text(f, json.dumps(d))
            except OSError:
                pass
        return d

    def audio(self, path: str | os.PathLike[str]) -> dict[str, float]:
        p = Path(path)
        try:
            return self._get("audio", p, audio_file_features)
        except EngineError:
            raise
        except Exception as exc:  # a decoder failure names the file
            raise CorruptFileError(f"the audio could not be analysed: {exc}", path=p) from exc

    def midi(self, path: str | os.PathLike[str], *, key: str | None = None) -> dict[str, float]:
        p = Path(path)
        return self._get(f"midi-{key or ''}", p, lambda q: midi_file_features(q, key=key))

    def candidate(self, cand: Any, controls: Mapping[str, Any] | None) -> np.ndarray:
        """Features of a :class:`engines.feedback.store.Candidate` under the pair's controls."""
        key = (controls or {}).get("key") if controls else None
        m = self.midi(cand.midi, key=key) if getattr(cand, "midi", None) else None
        a = self.audio(cand.audio) if getattr(cand, "audio", None) else None
        return vector(m, a, controls)

    def files(self, *, audio: str | os.PathLike[str] | None = None, midi: str | os.PathLike[str] | None = None,
              controls: Mapping[str, Any] | None = None) -> np.ndarray:
        key = (controls or {}).get("key") if controls else None
        m = self.midi(midi, key=key) if midi else None
        a = self.audio(audio) if audio else None
        return vector(m, a, controls)
