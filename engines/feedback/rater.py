"""A scripted rater for evaluating preference learning (``bench/prefs_eval.py``, tests).

Its taste is fixed before anything is measured and is a function of musical features the
generator can change (the model writes the melody line; tempo, key, chords, velocities and
the drum/comping patterns are controls or rules):

    utility = 1.0 * (top-line onsets per bar - 4) / 2          denser melodic line
            + 1.0 * (top-line mean pitch - 72) / 5             higher register
            + 0.5 * (top-line legato - 0.8) / 0.15             more legato (held to the next note)

The *top line* here is the highest sounding non-drum pitch on each 16th step, computed by this
module's own code from the MIDI file (the learner never calls it: it sees only its own features
and the votes). A pair is judged by ``d = utility(a) - utility(b)``: ``|d| < tie_margin`` is a
tie; otherwise A wins with probability ``sigmoid(d / noise)`` (a seeded draw per pair), so the
rater is consistent but, like people, not perfectly so.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

TASTE = {"density": (1.0, 4.0, 2.0), "register": (1.0, 72.0, 5.0), "legato": (0.5, 0.8, 0.15)}


def top_line(song: Any) -> tuple[np.ndarray, float, float]:
    """Highest sounding pitch per 16th step (0 = silence), the step length (s) and bars."""
    tempo = float(song.tempo or 120.0)
    step = 60.0 / tempo / 4.0
    num, den = song.time_signature
    bar_steps = 16.0 * num / den
    notes = [n for t in song.tracks if not t.is_drum for n in t.notes]
    if not notes:
        return np.zeros(0, np.int64), step, 1.0
    end = max(n.end for n in notes)
    n_steps = max(1, int(np.ceil(end / step - 1e-6)))
    top = np.zeros(n_steps, np.int64)
    for n in notes:
        a = int(np.floor(n.start / step + 0.25))
        b = max(a + 1, int(np.floor(n.end / step + 0.25)))
        seg = top[a:b]
        np.maximum(seg, int(n.pitch), out=seg)
    return top, step, n_steps / bar_steps


def measure(song: Any) -> dict[str, float]:
    """The rater's three measurements of a :class:`engines.media.midi.Song`."""
    top, _, bars = top_line(song)
    if len(top) == 0 or not (top > 0).any():
        return {"density": 0.0, "register": 0.0, "legato": 0.0}
    # an onset of the top line: the pitch changes (or sound starts after silence)
    prev = np.r_[0, top[:-1]]
    onsets = (top > 0) & (top != prev)
    sounding = top > 0
    # legato: share of the span from the first to the last top-line onset that sounds
    idx = np.flatnonzero(onsets)
    span = sounding[idx[0]:idx[-1] + 1] if len(idx) > 1 else sounding
    return {"density": float(onsets.sum() / max(bars, 1e-6)), "register": float(top[sounding].mean()),
            "legato": float(span.mean())}


def utility_of(m: dict[str, float]) -> float:
    return float(sum(w * (m[k] - c) / s for k, (w, c, s) in TASTE.items()))


@dataclass
class ScriptedRater:
    """Judges pairs of MIDI files by :data:`TASTE`."""

    seed: int = 0
    noise: float = 0.25
    tie_margin: float = 0.05
    name: str = "scripted"

    def utility(self, midi: str | os.PathLike[str]) -> float:
        from engines.media.midi import read_midi

        return utility_of(measure(read_midi(midi)))

    def choose(self, u_a: float, u_b: float, key: str) -> str:
        d = u_a - u_b
        if abs(d) < self.tie_margin:
            return "tie"
        h = int(hashlib.sha256(f"{self.seed}|{key}".encode()).hexdigest()[:12], 16)
        r = np.random.default_rng(h).random()
        return "a" if r < 1.0 / (1.0 + np.exp(-d / self.noise)) else "b"

    def judge(self, midi_a: str | os.PathLike[str], midi_b: str | os.PathLike[str], key: str = "") -> str:
        return self.choose(self.utility(midi_a), self.utility(midi_b), key or f"{midi_a}|{midi_b}")
