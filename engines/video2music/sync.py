"""Beat/cut sync: the start offset inside a track that puts the most cuts on beats.

For cut times ``c_i`` (relative to the clip start) and beat times ``b_j`` of a track, a cut
is *on a beat* at offset ``o`` when ``|c_i + o - b_j| <= tolerance`` for some ``j``.
:func:`best_offset` evaluates every offset in ``[0, track_duration - clip_duration]`` on a
10 ms grid at once: each (cut, beat) pair adds one to the interval of offsets where it
aligns (a difference array, then a cumulative sum), so the cost is
``O(cuts x beats + offsets)`` per track. Among the offsets with the most aligned cuts the
one whose music energy curve best follows the clip's is chosen (then the earliest).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: a cut within this many seconds of a beat counts as on the beat
TOLERANCE = 0.08
RESOLUTION = 0.01


@dataclass(frozen=True)
class SyncResult:
    """``offset`` (s into the track), ``aligned`` of ``total`` cuts on a beat, the mean
    absolute cut-to-beat error of the aligned cuts (s), and ``energy_fit`` (-1..1, the
    correlation of clip and track energy curves at the offset; 0 when unknown)."""

    offset: float
    aligned: int
    total: int
    mean_error: float
    energy_fit: float


def count_aligned(cuts: np.ndarray, beats: np.ndarray, offset: float,
                  tolerance: float = TOLERANCE) -> tuple[int, float]:
    """Cuts on a beat at ``offset`` and their mean absolute error (s)."""
    c = np.asarray(cuts, np.float64) + float(offset)
    b = np.asarray(beats, np.float64)
    if c.size == 0 or b.size == 0:
        return 0, 0.0
    j = np.clip(np.searchsorted(b, c), 1, b.size - 1) if b.size > 1 else np.zeros(c.size, np.int64)
    d = np.abs(c - b[j])
    if b.size > 1:
        d = np.minimum(d, np.abs(c - b[j - 1]))
    ok = d <= tolerance + 1e-9
    return int(ok.sum()), float(d[ok].mean()) if ok.any() else 0.0


def energy_fit(video_curve: Sequence[float], track_curve: Sequence[float], offset: float) -> float:
    """Pearson correlation of the clip's per-second energy and the track's from ``offset``."""
    v = np.asarray(video_curve, np.float64)
    t = np.asarray(track_curve, np.float64)
    if v.size < 3 or t.size < 2:
        return 0.0
    x = offset + np.arange(v.size) + 0.5
    seg = np.interp(x, np.arange(t.size) + 0.5, t)
    if v.std() < 1e-6 or seg.std() < 1e-6:
        return 0.0
    return float(np.corrcoef(v, seg)[0, 1])


def best_offset(
    cuts: Sequence[float],
    beats: Sequence[float],
    *,
    clip_duration: float,
    track_duration: float,
    tolerance: float = TOLERANCE,
    resolution: float = RESOLUTION,
    video_energy: Sequence[float] | None = None,
    track_energy: Sequence[float] | None = None,
) -> SyncResult:
    """The offset into the track that puts the most cuts within ``tolerance`` of a beat.

    Parameters
    ----------
    cuts : sequence of float
        Cut times relative to the clip start, seconds.
    beats : sequence of float
        The track's beat times, seconds.
    clip_duration, track_duration : float
        Offsets run over ``[0, max(0, track_duration - clip_duration)]``.
    video_energy, track_energy : sequence of float, optional
        Per-second energy curves, used to break ties between equally aligned offsets.
    """
    c = np.asarray(cuts, np.float64)
    c = c[(c >= 0) & (c <= clip_duration + 1e-6)]
    b = np.sort(np.asarray(beats, np.float64))
    max_off = max(0.0, float(track_duration) - float(clip_duration))
    n_off = int(np.floor(max_off / resolution)) + 1
    total = int(c.size)
    have_energy = video_energy is not None and track_energy is not None
    if c.size == 0 or b.size == 0:
        cand = np.arange(0.0, max_off + 1e-9, 1.0) if have_energy else np.zeros(1)
        if b.size and not have_energy:
            cand = b[b <= max_off][:1] if (b <= max_off).any() else np.zeros(1)
        return _pick(cand, c, b, tolerance, video_energy, track_energy, total)
    # difference array over the offset grid
    d = (b[None, :] - c[:, None]).ravel()  # offset at which cut i sits exactly on beat j
    lo = np.ceil((d - tolerance) / resolution - 1e-9).astype(np.int64)
    hi = np.floor((d + tolerance) / resolution + 1e-9).astype(np.int64)
    keep = (hi >= 0) & (lo < n_off)
    lo = np.clip(lo[keep], 0, n_off - 1)
    hi = np.clip(hi[keep], 0, n_off - 1)
    diff = np.bincount(lo, minlength=n_off + 1)[: n_off + 1].astype(np.int64)
    diff -= np.bincount(hi + 1, minlength=n_off + 1)[: n_off + 1]
    counts = np.cumsum(diff[:n_off])
    if counts.size == 0 or counts.max() <= 0:
        return _pick(np.zeros(1), c, b, tolerance, video_energy, track_energy, total)
    best = counts.max()
    on = counts == best
    # centres of each run of best offsets: the most tolerant placement
    edges = np.flatnonzero(np.diff(np.concatenate([[0], on.astype(np.int8), [0]])))
    starts, stops = edges[0::2], edges[1::2] - 1
    centres = (starts + stops) / 2.0 * resolution
    if centres.size > 64 and not have_energy:
        centres = centres[:64]
    return _pick(centres, c, b, tolerance, video_energy, track_energy, total)


def _pick(cand: np.ndarray, c: np.ndarray, b: np.ndarray, tol: float,
          ve: Sequence[float] | None, te: Sequence[float] | None, total: int) -> SyncResult:
    """Best of the candidate offsets: most aligned cuts, then best energy fit, then earliest."""
    cand = np.asarray(cand, np.float64).ravel()
    if cand.size == 0:
        cand = np.zeros(1)
    if cand.size > 400:
        cand = cand[np.linspace(0, cand.size - 1, 400).astype(np.int64)]
    k = cand.size
    n = np.zeros(k, np.int64)
    err = np.zeros(k)
    if c.size and b.size:
        C = c[None, :] + cand[:, None]
        j = np.clip(np.searchsorted(b, C), 1, max(1, b.size - 1)) if b.size > 1 else np.zeros(C.shape, np.int64)
        d = np.abs(C - b[j])
        if b.size > 1:
            d = np.minimum(d, np.abs(C - b[j - 1]))
        ok = d <= tol + 1e-9
        n = ok.sum(axis=1)
        err = np.where(ok, d, 0.0).sum(axis=1) / np.maximum(n, 1)
    fit = np.zeros(k)
    if ve is not None and te is not None:
        v = np.asarray(ve, np.float64)
        t = np.asarray(te, np.float64)
        if v.size >= 3 and t.size >= 2 and v.std() > 1e-6:
            x = cand[:, None] + np.arange(v.size)[None, :] + 0.5
            seg = np.interp(x.ravel(), np.arange(t.size) + 0.5, t).reshape(k, v.size)
            sc = seg - seg.mean(axis=1, keepdims=True)
            vc = v - v.mean()
            den = np.sqrt((sc**2).sum(axis=1) * (vc**2).sum())
            fit = np.where(den > 1e-9, (sc @ vc) / np.maximum(den, 1e-12), 0.0)
    i = int(np.lexsort((cand, -fit, -n))[0])
    return SyncResult(round(float(cand[i]), 3), int(n[i]), total, round(float(err[i]), 4),
                      round(float(fit[i]), 4))
