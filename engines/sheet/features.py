"""Audio features of the sheet engine.

* :func:`logspec`: log-frequency magnitude spectrogram (one band per semitone, MIDI 30..109,
  20 frames a second) — the input of the audio snippet encoder.
* :func:`chroma_onset`: chroma plus half-wave rectified chroma flux (10 frames a second) — the
  features of the symbolic route's DTW.
* :func:`synth_notes`: render (pitch, start, end, velocity) notes with a SoundFont.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Sequence

import numpy as np

SR = 22050
N_FFT = 4096
HOP = 1102  # ≈ 20 frames/s
FPS = SR / HOP
N_BANDS = 80
MIDI_LO = 30
CHROMA_HOP = 2205  # 10 frames/s
CHROMA_FPS = SR / CHROMA_HOP


@functools.cache
def _filterbank() -> np.ndarray:
    freqs = np.fft.rfftfreq(N_FFT, 1 / SR)
    centres = 440.0 * 2 ** ((np.arange(MIDI_LO - 1, MIDI_LO + N_BANDS + 1) - 69) / 12)
    fb = np.zeros((N_BANDS, freqs.size), np.float32)
    df = freqs[1]
    for i in range(N_BANDS):
        lo, c, hi = centres[i], centres[i + 1], centres[i + 2]
        lo, hi = min(lo, c - df), max(hi, c + df)
        up = (freqs - lo) / (c - lo)
        down = (hi - freqs) / (hi - c)
        fb[i] = np.maximum(0, np.minimum(up, down))
        fb[i] /= max(fb[i].sum(), 1e-6)
    return fb


def logspec(y: np.ndarray) -> np.ndarray:
    """Mono float audio at :data:`SR` → ``(frames, N_BANDS)`` float32, log1p-compressed."""
    import librosa

    y = np.asarray(y, np.float32)
    if y.size < N_FFT:
        y = np.pad(y, (0, N_FFT - y.size))
    mag = np.abs(librosa.stft(y, n_fft=N_FFT, hop_length=HOP, center=True)).astype(np.float32)
    spec = _filterbank() @ mag
    return np.log1p(100.0 * spec).T.astype(np.float32)


def chroma_onset(y: np.ndarray) -> np.ndarray:
    """``(frames, 24)``: L2-normalised chroma (STFT based) and its rectified flux."""
    import librosa

    y = np.asarray(y, np.float32)
    if y.size < 4096:
        y = np.pad(y, (0, 4096 - y.size))
    c = librosa.feature.chroma_stft(y=y, sr=SR, n_fft=4096, hop_length=CHROMA_HOP, tuning=0.0)
    c = np.log1p(50 * c / max(float(c.max()), 1e-9))
    flux = np.maximum(0, np.diff(c, axis=1, prepend=c[:, :1]))
    c = c / (np.linalg.norm(c, axis=0, keepdims=True) + 1e-6)
    flux = flux / (np.linalg.norm(flux, axis=0, keepdims=True) + 1e-6)
    return np.concatenate([c, 0.5 * flux], axis=0).T.astype(np.float32)


_synths: dict[str, object] = {}
_lock = threading.Lock()


def synth_notes(notes: Sequence[tuple[int, float, float, int]], *, soundfont: str | None = None,
                program: int = 0, sr: int = SR, tail: float = 0.5) -> np.ndarray:
    """Mono float32 audio of ``notes`` played by one GM ``program``.

    ``soundfont`` defaults to the bundled TimGM6mb (trusted); other paths are trusted too
    (only the app's own training script passes them).
    """
    import tinysoundfont

    from engines.media.synth import default_soundfont

    path = str(soundfont or default_soundfont())
    with _lock:
        key = f"{path}@{sr}"
        synth = _synths.get(key)
        if synth is None:
            synth = tinysoundfont.Synth(samplerate=sr)
            sfid = synth.sfload(path)
            synth._cue_sfid = sfid  # type: ignore[attr-defined]
            _synths[key] = synth
        sfid = synth._cue_sfid  # type: ignore[attr-defined]
        try:
            synth.program_select(0, sfid, 0, int(program))
        except Exception:  # noqa: BLE001
            synth.program_select(0, sfid, 0, 0)
        events = []
        end = 0.0
        for p, a, b, v in notes:
            if not 0 <= p <= 127:
                continue
            events.append((int(round(max(0.0, a) * sr)), 1, int(p), int(min(127, max(1, v)))))
            events.append((int(round(max(a + 0.01, b) * sr)), 0, int(p), 0))
            end = max(end, b)
        events.sort()
        total = int(round((end + tail) * sr)) + 1
        out = np.zeros((total, 2), np.float32)
        flat = out.reshape(-1)
        pos = 0

        def gen(a: int, b: int) -> None:
            while a < b:
                n = min(65536, b - a)
                synth.generate_simple(n, buffer=flat[2 * a:2 * (a + n)].data.cast("B"))
                a += n

        for s, on, p, v in events:
            s = min(s, total)
            if s > pos:
                gen(pos, s)
                pos = s
            if on:
                synth.noteon(0, p, v)
            else:
                synth.noteoff(0, p)
        gen(pos, total)
        synth.sounds_off()
    y = out.mean(axis=1)
    peak = float(np.abs(y).max()) if y.size else 0.0
    return (y / peak * 0.9).astype(np.float32) if peak > 0 else y
