"""Two matchers behind one interface: zero-shot correspondences and the learned model.

A :class:`Matcher` scores every library track for a clip (and optional text):
``score(video, text, lib) -> (N,)`` plus the per-track *reasons* used in rationales.

* :class:`ZeroShotMatcher` applies documented correspondences between picture and music
  (film-music practice and the cross-modal correspondence literature):

  - pace (cut rate and motion) ↔ drive (tempo, energy, onset density);
  - cut rhythm ↔ tempo: the median shot should last a whole number of beats (1, 2, 4, 8);
    the visual tempo (periodicity of motion) should equal the tempo up to an octave;
  - light and colour (brightness, saturation, warmth) ↔ mode (major/minor) and spectral
    brightness;
  - visual energy ↔ musical energy.

  Text counts through the sentence embedding of the description of each track.
* :class:`LearnedMatcher` embeds (video, text) and each track's analysis in one space
  (:mod:`engines.video2music.model`, ViML-style) and scores by cosine similarity.

Both feed the same re-ranking in :mod:`engines.video2music.engine` (steering words,
beat/cut sync, energy-curve fit, diversity), and every result says which matcher ranked it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from engines.analysis.video import VideoFeatures
from engines.video2music.music import LibraryMatrix


def gauss(x: np.ndarray | float, s: float) -> np.ndarray:
    return np.exp(-0.5 * (np.asarray(x, np.float64) / s) ** 2)


@dataclass
class VideoTargets:
    """What a clip implies for the music, each 0..1 on the library's scales."""

    pace: float
    energy: float
    valence: float
    brightness: float
    shot: float          # median shot length (s), 0 without cuts
    visual_tempo: float  # BPM, 0 when none
    vt_strength: float
    words: dict[str, str] = field(default_factory=dict)


def video_targets(v: VideoFeatures) -> VideoTargets:
    s = v.summary
    bright = float(np.clip((s.get("brightness", 0.4) - 0.15) / 0.55, 0, 1))
    sat = float(np.clip(s.get("saturation", 0.2) / 0.35, 0, 1))
    warm = float(np.clip(0.5 + 2.5 * s.get("warmth", 0.0), 0, 1))
    valence = float(np.clip(0.45 * bright + 0.3 * sat + 0.25 * warm, 0, 1))
    cuts = np.asarray(v.cuts, np.float64)
    shot = 0.0
    if cuts.size >= 2:
        edges = np.concatenate([[0.0], cuts, [v.duration]])
        lens = np.diff(edges)[1:-1] if cuts.size >= 3 else np.diff(cuts)
        shot = float(np.median(lens)) if lens.size else 0.0
    energy = float(np.clip(s.get("energy", 0.3) / 0.7, 0, 1))
    motion = ("lots of motion" if s.get("motion", 0) > 0.45 else
              "moderate motion" if s.get("motion", 0) > 0.2 else "still images")
    words = {
        # without cuts the pace comes from the motion alone: say so
        "pace": (f"fast cuts, {v.cut_rate:.1f} a second" if v.cut_rate >= 1.0 else
                 f"cuts every {1 / max(v.cut_rate, 1e-6):.1f} s" if v.cut_rate > 0.05 else
                 f"one shot, {motion}" if not v.cuts else f"few cuts ({len(v.cuts)})"),
        "motion": motion,
        "light": ("bright" if bright > 0.6 else "dark" if bright < 0.35 else "mid-lit")
        + (", warm" if warm > 0.6 else ", cold" if warm < 0.4 else "")
        + (", saturated" if sat > 0.6 else ", muted" if sat < 0.3 else "") + " images",
    }
    return VideoTargets(pace=float(s.get("pace", 0.3)), energy=energy, valence=valence,
                        brightness=bright, shot=shot, visual_tempo=float(v.visual_tempo),
                        vt_strength=float(v.visual_tempo_strength), words=words)


def music_drive(lib: LibraryMatrix) -> np.ndarray:
    return 0.45 * lib.scaled("tempo") + 0.35 * lib.scaled("energy") + 0.2 * lib.scaled("density")


def music_valence(lib: LibraryMatrix) -> np.ndarray:
    return 0.65 * lib.scaled("major") + 0.35 * lib.scaled("brightness")


def rhythm_fit(shot: float, vtempo: float, vt_strength: float, tempo: np.ndarray) -> np.ndarray:
    """How well the shot length (whole beats) and visual tempo (octaves) fit each tempo."""
    t = np.maximum(np.asarray(tempo, np.float64), 1.0)
    fit = np.full(t.shape, 0.5)
    if shot > 0.05:
        beats_per_shot = shot * t / 60.0
        k = np.clip(np.round(beats_per_shot), 1, 16)
        rel = np.abs(beats_per_shot - k) / k
        # whole beats fit; powers of two fit best; shots of 1..8 beats are plausible
        fit = gauss(rel, 0.05) * np.where(np.isin(k, (1, 2, 4, 8)), 1.0, 0.7)
        fit = fit * np.where((beats_per_shot >= 0.75) & (beats_per_shot <= 12), 1.0, 0.4)
    if vtempo > 0 and vt_strength > 0.2:
        d = np.log2(t / vtempo)
        oct_fit = gauss(d - np.round(d), 0.06) * np.where(np.abs(np.round(d)) <= 1, 1.0, 0.5)
        w = min(0.5, vt_strength)
        fit = (1 - w) * fit + w * oct_fit
    return np.where(np.asarray(tempo) > 0, fit, 0.2)


class Matcher(Protocol):
    name: str

    def score(self, video: VideoFeatures, text: str, lib: LibraryMatrix) -> tuple[np.ndarray, dict[str, Any]]:
        """Scores for every track (higher is better) and details for rationales."""
        ...


class ZeroShotMatcher:
    """Documented picture-music correspondences, plus the text embedding."""

    name = "zero-shot"
    weights = {"rhythm": 0.30, "pace": 0.25, "valence": 0.20, "energy": 0.15, "brightness": 0.10}

    def __init__(self, *, embed: Any = None) -> None:
        self._embed = embed

    def score(self, video: VideoFeatures, text: str, lib: LibraryMatrix) -> tuple[np.ndarray, dict[str, Any]]:
        tg = video_targets(video)
        parts = {
            "rhythm": rhythm_fit(tg.shot, tg.visual_tempo, tg.vt_strength, lib.col("tempo")),
            "pace": gauss(music_drive(lib) - tg.pace, 0.18),
            "valence": gauss(music_valence(lib) - tg.valence, 0.22),
            "energy": gauss(lib.scaled("energy") - tg.energy, 0.25),
            "brightness": gauss(lib.scaled("brightness") - tg.brightness, 0.3),
        }
        s = sum(w * parts[k] for k, w in self.weights.items())
        out = np.asarray(s, np.float64)
        tsim = None
        if text.strip() and self._embed is not None and np.any(lib.emb):
            q = self._embed(text)
            tsim = lib.emb @ q
            out = out + 0.6 * (tsim - float(np.median(tsim)))
        return out, {"targets": tg, "parts": parts, "text_sim": tsim}


class LearnedMatcher:
    """The trimodal model: cosine between the fused (video, text) query and each track."""

    def __init__(self, model: Any, *, embed: Any = None) -> None:
        self.model = model
        self.name = f"learned:{getattr(model, 'version', 'v1')}"
        self._embed = embed
        self._cache: tuple[int, int, np.ndarray] | None = None

    def track_embeddings(self, lib: LibraryMatrix) -> np.ndarray:
        key = (id(lib), lib.generation)
        if self._cache is None or self._cache[:2] != key:
            self._cache = (*key, self.model.embed_music_np(lib))
        return self._cache[2]

    def score(self, video: VideoFeatures, text: str, lib: LibraryMatrix) -> tuple[np.ndarray, dict[str, Any]]:
        tvec = self._embed(text) if (text.strip() and self._embed is not None) else None
        q = self.model.embed_query_np(video, tvec)
        m = self.track_embeddings(lib)
        s = (m @ q).astype(np.float64)
        tg = video_targets(video)
        zs = ZeroShotMatcher()
        _, det = zs.score(video, "", lib)
        return 2.0 * s, {"targets": tg, "parts": det["parts"], "text_sim": None}


def chance_alignment(tempo: float, tol: float = 0.08) -> float:
    """Fraction of random cut placements within ``tol`` of some beat at ``tempo``."""
    if tempo <= 0:
        return 0.0
    return min(1.0, 2 * tol * tempo / 60.0)


def fmt_bpm(t: float) -> str:
    return f"{t:.0f} BPM" if t > 0 else "no steady beat"


def near(a: float, b: float, tol: float) -> bool:
    return math.isfinite(a) and math.isfinite(b) and abs(a - b) <= tol
