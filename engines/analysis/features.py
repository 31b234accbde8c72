"""Music features of one track, computed from one STFT.

:func:`analyze_audio` takes a mono signal and returns :class:`TrackFeatures`: tempo and
beat times, key and mode, loudness and an energy curve, brightness, onset density, a
compact timbre vector and waveform peaks. Everything spectral is derived from a single
magnitude STFT (``n_fft=2048``, ``hop=512``) at the analysis rate (22.05 kHz by
default), so a track costs one FFT pass plus a few matrix products.

Heavy modules (numpy, librosa) are imported inside functions; importing this module is
cheap.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

#: analysis sample rate (Hz)
ANALYSIS_SR = 22050
N_FFT = 2048
HOP = 512
#: spectral features (tempo, key, timbre, brightness, onsets) look at most at this many seconds
MAX_SPECTRAL_SECONDS = 600.0
N_PEAKS = 600
N_MFCC = 13

PITCH_CLASSES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
# Krumhansl-Kessler key profiles
_MAJOR_PROFILE = (6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88)
_MINOR_PROFILE = (6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17)


@dataclass
class TrackFeatures:
    """What the library knows about the sound of a track.

    Attributes
    ----------
    duration : float
        Length of the whole signal, seconds.
    tempo : float
        Beats per minute (0 when no beat was found).
    beats : list of float
        Beat times, seconds.
    key : str
        ``"A minor"``; ``tonic`` and ``mode`` hold its parts, ``key_confidence`` the
        correlation (-1..1) of the chroma with the winning Krumhansl–Kessler profile.
    loudness_db : float
        Overall RMS level, dBFS.
    energy : float
        Perceived energy 0..1 (loudness, onset rate and spectral flux combined).
    energy_curve : list of float
        RMS level once a second, 0..1 (maps -60..0 dBFS).
    brightness : float
        Mean spectral centroid, Hz.
    onset_density : float
        Detected onsets per second.
    timbre : list of float
        MFCC 1..13 mean and standard deviation (26 values).
    peaks : list of float
        ~600 absolute-peak values 0..1 across the track, for waveform display.
    analysed_seconds : float
        How much of the signal the spectral features saw.
    """

    duration: float
    tempo: float
    beats: list[float]
    key: str
    tonic: str
    mode: str
    key_confidence: float
    loudness_db: float
    energy: float
    energy_curve: list[float]
    brightness: float
    onset_density: float
    timbre: list[float]
    peaks: list[float]
    analysed_seconds: float
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrackFeatures:
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in d.items() if k in names})


def _r(x: float, nd: int = 4) -> float:
    return float(round(float(x), nd))


def estimate_key(chroma_mean: np.ndarray) -> tuple[str, str, float]:
    """Krumhansl–Schmuckler key finding.

    Parameters
    ----------
    chroma_mean : ndarray, shape (12,)
        Mean chroma energy, C first.

    Returns
    -------
    tonic, mode, confidence : str, {"major", "minor"}, float
    """
    import numpy as np

    c = np.asarray(chroma_mean, dtype=np.float64)
    if not np.isfinite(c).all() or c.std() < 1e-9:
        return "C", "major", 0.0
    best = (-2.0, 0, "major")
    for mode, prof in (("major", _MAJOR_PROFILE), ("minor", _MINOR_PROFILE)):
        p = np.asarray(prof)
        for tonic in range(12):
            r = float(np.corrcoef(c, np.roll(p, tonic))[0, 1])
            if r > best[0]:
                best = (r, tonic, mode)
    return PITCH_CLASSES[best[1]], best[2], best[0]


def analyze_audio(y: np.ndarray, sr: int = ANALYSIS_SR) -> TrackFeatures:
    """Analyse a mono signal.

    Parameters
    ----------
    y : ndarray, shape (n,)
        Mono audio, float, -1..1. It is resampled to :data:`ANALYSIS_SR` if ``sr`` differs.
    sr : int
        Sample rate of ``y``.

    Returns
    -------
    TrackFeatures
        Duration, loudness, energy curve and peaks cover the whole signal; tempo, beats,
        key, brightness, onsets and timbre come from its first
        :data:`MAX_SPECTRAL_SECONDS` seconds.
    """
    import librosa
    import numpy as np

    y = np.asarray(y, dtype=np.float32)
    if y.ndim != 1:
        y = y.mean(axis=0 if y.shape[0] < y.shape[-1] else -1).astype(np.float32)
    if sr != ANALYSIS_SR:
        import soxr

        y = soxr.resample(y, sr, ANALYSIS_SR, quality="MQ").astype(np.float32)
        sr = ANALYSIS_SR
    y = np.nan_to_num(y, copy=False)
    n = y.shape[0]
    duration = n / sr

    # whole-signal level features ------------------------------------------------------
    absy = np.abs(y)
    ms = float(np.mean(y.astype(np.float64) ** 2)) if n else 0.0
    loudness_db = 10.0 * math.log10(ms + 1e-12)
    sec = max(1, int(math.ceil(duration)))
    pad = sec * sr - n
    ysec = np.pad(y, (0, pad)).reshape(sec, sr) if n else np.zeros((1, sr), np.float32)
    curve_db = 10.0 * np.log10(np.mean(ysec.astype(np.float64) ** 2, axis=1) + 1e-12)
    energy_curve = np.clip((curve_db + 60.0) / 60.0, 0.0, 1.0)
    n_peaks = min(N_PEAKS, max(1, n))
    edges = np.linspace(0, n, n_peaks + 1).astype(np.int64)
    peaks = np.maximum.reduceat(absy, edges[:-1]) if n else np.zeros(1, np.float32)
    peaks = np.clip(peaks / max(float(peaks.max()), 1e-9), 0.0, 1.0)

    # spectral features from one STFT ----------------------------------------------------
    ys = y[: int(MAX_SPECTRAL_SECONDS * sr)]
    analysed = ys.shape[0] / sr
    if ys.shape[0] < N_FFT:
        ys = np.pad(ys, (0, N_FFT - ys.shape[0]))
    S = np.abs(librosa.stft(ys, n_fft=N_FFT, hop_length=HOP, center=True))  # (1025, frames)
    P = S**2
    mel = librosa.feature.melspectrogram(S=P, sr=sr, n_mels=64, fmax=sr / 2)
    mel_db = librosa.power_to_db(mel, ref=1.0, top_db=None)
    mel_db = np.maximum(mel_db, mel_db.max() - 80.0)
    onset_env = librosa.onset.onset_strength(S=mel_db, sr=sr, hop_length=HOP)

    silent = ms < 1e-8
    if silent:
        tempo, beats = 0.0, np.zeros(0)
    else:
        t, bframes = librosa.beat.beat_track(onset_envelope=onset_env, sr=sr, hop_length=HOP)
        tempo = float(np.atleast_1d(t)[0])
        beats = librosa.frames_to_time(bframes, sr=sr, hop_length=HOP)
    onsets = (librosa.onset.onset_detect(onset_envelope=onset_env, sr=sr, hop_length=HOP)
              if not silent else np.zeros(0))
    onset_density = len(onsets) / max(analysed, 1e-3)

    chroma = librosa.feature.chroma_stft(S=P, sr=sr, n_fft=N_FFT, tuning=0.0)
    frame_w = np.sqrt(P.sum(axis=0))
    cmean = (chroma * frame_w).sum(axis=1) / max(float(frame_w.sum()), 1e-12)
    tonic, mode, conf = estimate_key(cmean)

    freqs = librosa.fft_frequencies(sr=sr, n_fft=N_FFT)
    spec_sum = S.sum(axis=0)
    cent = (freqs[:, None] * S).sum(axis=0) / np.maximum(spec_sum, 1e-12)
    w = spec_sum / max(float(spec_sum.sum()), 1e-12)
    brightness = float((cent * w).sum()) if not silent else 0.0

    mfcc = librosa.feature.mfcc(S=mel_db, n_mfcc=N_MFCC + 1)[1:]
    timbre = np.concatenate([mfcc.mean(axis=1), mfcc.std(axis=1)]).astype(np.float32)

    flux = float(np.mean(onset_env)) if onset_env.size else 0.0
    loud_n = np.clip((loudness_db + 40.0) / 32.0, 0.0, 1.0)  # -40 dBFS .. -8 dBFS
    dens_n = np.clip(onset_density / 5.0, 0.0, 1.0)
    flux_n = np.clip(flux / 2.0, 0.0, 1.0)
    energy = float(np.clip(0.5 * loud_n + 0.3 * dens_n + 0.2 * flux_n, 0.0, 1.0)) if not silent else 0.0

    return TrackFeatures(
        duration=_r(duration, 3),
        tempo=_r(tempo, 2),
        beats=[_r(b, 3) for b in beats],
        key=f"{tonic} {mode}",
        tonic=tonic,
        mode=mode,
        key_confidence=_r(conf, 3),
        loudness_db=_r(loudness_db, 2),
        energy=_r(energy, 3),
        energy_curve=[_r(v, 3) for v in energy_curve],
        brightness=_r(brightness, 1),
        onset_density=_r(onset_density, 3),
        timbre=[_r(v, 3) for v in timbre],
        peaks=[_r(v, 3) for v in peaks],
        analysed_seconds=_r(analysed, 2),
    )


def warm_numba_cache() -> None:
    """Compile (or load) librosa's numba functions used here, in this one process."""
    import numpy

    rng = numpy.random.default_rng(0)
    analyze_audio((rng.standard_normal(ANALYSIS_SR * 3) * 0.1).astype(numpy.float32))


if __name__ == "__main__":
    import sys

    if sys.argv[1:] == ["--warm"]:
        warm_numba_cache()
    else:
        sys.exit("usage: python -m engines.analysis.features --warm")
