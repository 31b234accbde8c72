"""Picture features of a video clip over time: motion, shot cuts, light and colour, pace.

:func:`analyze_video` decodes a clip (any container FFmpeg reads, optional in/out range)
and returns :class:`VideoFeatures`: per-frame motion magnitude (mean absolute luma
difference of consecutive frames at ~160x90), shot cuts (histogram + pixel-difference
peaks), brightness, saturation and colour temperature, visual tempo (periodicity of the
motion curve) and an energy curve once a second.

Speed: the decoder runs threaded and every frame is read straight from its YUV planes,
decimated by striding (no RGB conversion, no scaling), so the cost is FFmpeg's decode
alone (~3 s for 60 s of 1080p30 H.264 on two cores). :func:`analyze_frames` does the
same on RGB frames (``engines.media.video.sample_frames`` output), for callers that
already hold pixels.

Heavy modules are imported inside functions; importing this module is cheap.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engines.core.errors import (
    CorruptFileError,
    NotFoundError,
    ParameterError,
    ResourceLimitError,
    UnsupportedFormatError,
)

if TYPE_CHECKING:
    import numpy as np

#: frames per second analysed at most (higher rates are decimated by an integer step)
MAX_ANALYSIS_FPS = 30.0
#: decimated luma grid is about this size
GRID = (90, 160)
#: refuse pictures larger than this many pixels (16K x 16K)
MAX_PIXELS = 16384 * 16384
#: ``fast`` decoding by default above this many pixel-seconds (30 s of 1080p)
FAST_ABOVE = 30 * 1920 * 1080
#: refuse clips longer than this (seconds) — the analysis is linear in length
MAX_SECONDS = 4 * 3600.0
_PLANAR = {"yuv420p": (2, 2), "yuvj420p": (2, 2), "yuv422p": (1, 2), "yuvj422p": (1, 2),
           "yuv444p": (1, 1), "yuvj444p": (1, 1), "yuv411p": (1, 4), "yuv410p": (4, 4)}


@dataclass
class VideoFeatures:
    """What was measured on a clip.

    Attributes
    ----------
    path : str
    start, end : float
        The analysed range, seconds in the file.
    duration : float
        ``end - start``.
    fps : float
        Analysed frames per second.
    width, height : int
        Picture size of the file.
    times : list of float
        Frame times relative to ``start`` (seconds), one per analysed frame.
    motion : list of float
        Motion magnitude per frame, 0..1 (mean absolute luma change, cuts removed).
    brightness, saturation, warmth : list of float
        Per frame: mean luma 0..1, mean chroma magnitude 0..1, red-minus-blue balance -1..1.
    cuts : list of float
        Shot cut times relative to ``start`` (seconds).
    energy_curve : list of float
        Visual energy once a second (motion and cuts), 0..1.
    visual_tempo : float
        Periodicity of motion in beats per minute (0 when nothing periodic was found);
        ``visual_tempo_strength`` is the normalised autocorrelation at that period.
    summary : dict
        Clip-level scalars: ``motion``, ``cut_rate`` (cuts a second), ``shot_length``,
        ``brightness``, ``saturation``, ``warmth``, ``contrast``, ``pace`` (0..1).
    """

    path: str
    start: float
    end: float
    duration: float
    fps: float
    width: int
    height: int
    times: list[float]
    motion: list[float]
    brightness: list[float]
    saturation: list[float]
    warmth: list[float]
    cuts: list[float]
    energy_curve: list[float]
    visual_tempo: float
    visual_tempo_strength: float
    summary: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> VideoFeatures:
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in d.items() if k in names})

    @property
    def cut_rate(self) -> float:
        return float(self.summary.get("cut_rate", 0.0))


# --------------------------------------------------------------------------- decode

def _open(path: Path) -> Any:
    import av

    if not path.exists():
        raise NotFoundError("no such video file", path=path)
    if not path.is_file():
        raise UnsupportedFormatError("not a file (a folder?)", path=path)
    if path.stat().st_size == 0:
        raise CorruptFileError("the file is empty (0 bytes)", path=path)
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except av.error.FFmpegError as exc:
        raise UnsupportedFormatError(
            f"not a video FFmpeg can read ({exc.strerror or type(exc).__name__})", path=path
        ) from None
    if not container.streams.video:
        container.close()
        raise UnsupportedFormatError("the file has no video stream", path=path)
    return container


def _stream_duration(container: Any, stream: Any) -> float:
    if stream.duration is not None and stream.time_base is not None:
        d = float(stream.duration * stream.time_base)
        if d > 0:
            return d
    if container.duration:
        return float(container.duration) / 1_000_000.0
    return 0.0


def _decimate(plane: Any, h: int, w: int, gh: int, gw: int) -> np.ndarray:
    import numpy as np

    a = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)[:h, :w]
    sy, sx = max(1, h // gh), max(1, w // gw)
    return a[sy // 2::sy, sx // 2::sx]


def analyze_video(
    path: str | os.PathLike[str],
    *,
    start: float | None = None,
    end: float | None = None,
    max_fps: float = MAX_ANALYSIS_FPS,
    fast: bool | None = None,
    cancel: Any = None,
) -> VideoFeatures:
    """Decode ``path`` (optionally only ``start``..``end`` seconds) and measure it.

    Parameters
    ----------
    path : str or PathLike
        MP4, MOV, MKV, WEBM, AVI, MPG, OGV ... (anything FFmpeg decodes).
    start, end : float, optional
        In and out points, seconds. ``end`` past the end is clamped.
    max_fps : float
        Frames per second analysed at most.
    fast : bool, optional
        Skip non-reference frames (B-frames) in the decoder: about half the decode time,
        cut times then come from the decoded frames either side (error up to two frames).
        Default: on for clips heavier than :data:`FAST_ABOVE` (pixels x seconds).
    cancel : CancelToken, optional
        Checked every 64 frames.

    Raises
    ------
    NotFoundError, UnsupportedFormatError, CorruptFileError
        Missing file, not a video / no video stream, nothing decodable.
    ParameterError
        A negative or zero-length range, or a range past the end of the clip.
    ResourceLimitError
        A picture over :data:`MAX_PIXELS` or a clip over :data:`MAX_SECONDS`.
    """
    import av
    import numpy as np

    p = Path(os.fspath(path)).expanduser()
    s0 = 0.0 if start is None else float(start)
    if s0 < 0 or (end is not None and float(end) <= s0):
        raise ParameterError(
            f"the range {s0:g}-{float(end) if end is not None else 'end'} s is empty or negative", path=p
        )
    container = _open(p)
    try:
        stream = container.streams.video[0]
        cc = stream.codec_context
        width, height = int(cc.width or 0), int(cc.height or 0)
        if width * height > MAX_PIXELS:
            raise ResourceLimitError(
                f"the picture is {width}x{height}; pictures over {MAX_PIXELS // 1_000_000} megapixels "
                "are not analysed", path=p,
            )
        total = _stream_duration(container, stream)
        if total > MAX_SECONDS:
            raise ResourceLimitError(f"the clip lasts {total / 3600:.1f} h; at most "
                                     f"{MAX_SECONDS / 3600:.0f} h are analysed", path=p)
        if total > 0 and s0 >= total:
            raise ParameterError(f"the range starts at {s0:g} s, after the end of the clip ({total:.2f} s)",
                                 path=p)
        e0 = math.inf if end is None else float(end)
        rate = float(stream.average_rate or stream.guessed_rate or 25.0) or 25.0
        step = max(1, int(round(rate / max_fps)))
        stream.thread_type = "AUTO"
        span = (min(total, float(end)) if end is not None and total > 0 else total) - s0
        if fast is None:
            fast = span * width * height > FAST_ABOVE
        if fast:
            cc.skip_frame = "NONREF"
        if s0 > 0:
            try:
                container.seek(int(s0 / stream.time_base), stream=stream, backward=True, any_frame=False)
            except av.error.FFmpegError:
                container.seek(0)
        Y: list[np.ndarray] = []
        U: list[np.ndarray] = []
        V: list[np.ndarray] = []
        times: list[float] = []
        k = 0
        first_t: float | None = None
        try:
            for frame in container.decode(stream):
                t = frame.time
                if t is None:
                    t = (first_t or 0.0) + k / rate
                if first_t is None:
                    first_t = float(t)
                if t < s0 - 0.5 / rate:
                    continue
                if t >= e0:
                    break
                k += 1
                if (k - 1) % step:
                    continue
                if cancel is not None and k % 64 == 0:
                    cancel.raise_if_cancelled()
                y, u, v = _frame_planes(frame)
                Y.append(y)
                U.append(u)
                V.append(v)
                times.append(float(t))
        except (av.error.InvalidDataError, av.error.EOFError, av.error.FFmpegError) as exc:
            if not times:
                raise CorruptFileError(f"the video stream cannot be decoded ({exc})", path=p) from None
        if not times:
            if total > 0 and s0 > 0:
                raise ParameterError(f"no frames in the range {s0:g}-{e0:g} s", path=p)
            raise CorruptFileError("no frames could be decoded from the video stream", path=p)
    finally:
        container.close()
    t_arr = np.asarray(times, np.float64)
    order = np.argsort(t_arr, kind="stable")
    t_arr = t_arr[order]
    real_end = float(t_arr[-1] + step / rate)
    if math.isfinite(e0):
        real_end = min(real_end, e0)
    feats = _analyze(
        t_arr - s0,
        np.stack([Y[i] for i in order]), np.stack([U[i] for i in order]), np.stack([V[i] for i in order]),
        fps=(rate / step) if not fast or t_arr.size < 2 else (t_arr.size - 1) / max(float(t_arr[-1] - t_arr[0]), 1e-3),
        exact_cuts=step == 1 and not fast,
        duration=max(real_end - s0, 1.0 / rate),
    )
    feats.path, feats.start, feats.end = str(p), s0, s0 + feats.duration
    feats.width, feats.height = width, height
    return feats


def _frame_planes(frame: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    gh, gw = GRID
    fmt = frame.format.name
    if fmt not in _PLANAR:
        frame = frame.reformat(width=gw, height=gh, format="yuv444p")
        fmt = "yuv444p"
    h, w = frame.height, frame.width
    dy, dx = _PLANAR[fmt]
    y = _decimate(frame.planes[0], h, w, gh, gw)
    ch, cw = -(-h // dy), -(-w // dx)
    u = _decimate(frame.planes[1], ch, cw, gh // 2, gw // 2)
    v = _decimate(frame.planes[2], ch, cw, gh // 2, gw // 2)
    return y.copy(), u.copy(), v.copy()


# --------------------------------------------------------------------------- analysis

def analyze_frames(times: np.ndarray, frames: np.ndarray, *, fps: float | None = None) -> VideoFeatures:
    """Measure RGB frames (as returned by ``engines.media.video.sample_frames``).

    Parameters
    ----------
    times : ndarray, shape (n,)
        Frame times, seconds (relative to the clip start).
    frames : ndarray, shape (n, h, w, 3), uint8 RGB
    fps : float, optional
        Sampling rate; inferred from ``times`` if omitted.
    """
    import numpy as np

    f = np.asarray(frames, np.float32)
    if f.ndim != 4 or f.shape[0] == 0:
        raise ParameterError(f"frames must have shape (n, h, w, 3) with n > 0, not {np.shape(frames)}")
    r, g, b = f[..., 0], f[..., 1], f[..., 2]
    y = 0.299 * r + 0.587 * g + 0.114 * b
    u = np.clip((b - y) * 0.564 + 128.0, 0, 255)
    v = np.clip((r - y) * 0.713 + 128.0, 0, 255)
    t = np.asarray(times, np.float64)
    if fps is None:
        fps = 1.0 / float(np.median(np.diff(t))) if t.size > 1 else 25.0
    return _analyze(t, y.astype(np.uint8), u.astype(np.uint8), v.astype(np.uint8),
                    fps=float(fps), exact_cuts=True, duration=float(t[-1] + 1.0 / fps) if t.size else 0.0)


def _hist(a: np.ndarray, bins: int) -> np.ndarray:
    import numpy as np

    n = a.shape[0]
    q = a.reshape(n, -1) >> (8 - int(bins).bit_length() + 1)
    off = (np.arange(n, dtype=np.int32) * bins)[:, None]
    h = np.bincount((q + off).ravel(), minlength=n * bins).reshape(n, bins).astype(np.float32)
    return h / np.maximum(h.sum(axis=1, keepdims=True), 1.0)


#: frames after a jump at which a flash has passed (3 at 24 fps: 125 ms)
FLASH_FRAMES = 3


def detect_cuts(diff: np.ndarray, *, fps: float, min_shot: float = 0.2) -> np.ndarray:
    """Indices ``i`` (frame ``i`` starts a new shot) from a frame-difference score.

    ``diff[i]`` compares frame ``i`` with frame ``i-1`` (``diff[0]`` is ignored). A cut is a
    local peak above both an absolute floor and three times the local median (±1 s).
    """
    import numpy as np
    from numpy.lib.stride_tricks import sliding_window_view as windows

    d = np.asarray(diff, np.float64).copy()
    if d.size < 2:
        return np.zeros(0, np.int64)
    d[0] = 0.0
    win = max(3, int(round(fps)) * 2 + 1)
    med = np.median(windows(np.pad(d, win // 2, mode="edge"), win), axis=1)
    pw = max(3, int(round(min_shot * fps)) | 1)
    peak = windows(np.pad(d, pw // 2, mode="edge"), pw).max(axis=1)
    cand = np.flatnonzero((d >= 0.18) & (d > 3.0 * med + 0.03) & (d >= peak))
    out: list[int] = []
    gap = max(1, int(round(min_shot * fps)))
    for i in cand:
        if i == 0:
            continue
        if out and i - out[-1] < gap:
            if d[i] > d[out[-1]]:
                out[-1] = int(i)
            continue
        out.append(int(i))
    return np.asarray(out, np.int64)


def visual_tempo(motion: np.ndarray, cut_idx: np.ndarray, *, fps: float) -> tuple[float, float]:
    """Periodicity of motion (and cuts) in BPM, with its strength 0..1 (0, 0 when none)."""
    import numpy as np

    n = motion.size
    if n < 8 or fps <= 0:
        return 0.0, 0.0
    onset = np.maximum(np.diff(motion, prepend=motion[0]), 0.0)
    if onset.std() > 0:
        onset = onset / (onset.std() + 1e-9)
    if cut_idx.size:
        onset = onset.copy()
        onset[cut_idx] += 3.0
    x = onset - onset.mean()
    if not np.any(x):
        return 0.0, 0.0
    m = 1 << int(math.ceil(math.log2(2 * n)))
    F = np.fft.rfft(x, m)
    ac = np.fft.irfft(F * np.conj(F), m)[:n]
    ac = ac / max(ac[0], 1e-12)
    lo = max(1, int(fps * 60.0 / 200.0))
    hi = min(n - 1, int(fps * 60.0 / 50.0))
    if hi <= lo:
        return 0.0, 0.0
    lags = np.arange(lo, hi + 1)
    bpm = 60.0 * fps / lags
    prior = np.exp(-0.5 * (np.log2(bpm / 120.0) / 1.0) ** 2)
    j = int(np.argmax(ac[lags] * (0.5 + 0.5 * prior)))
    strength = float(np.clip(ac[lags[j]], 0.0, 1.0))
    if strength < 0.1:
        return 0.0, strength
    return float(bpm[j]), strength


def _analyze(times: np.ndarray, Y: np.ndarray, U: np.ndarray, V: np.ndarray, *, fps: float,
             exact_cuts: bool, duration: float) -> VideoFeatures:
    import numpy as np

    n = Y.shape[0]
    yf = Y.astype(np.float32)
    bright = yf.reshape(n, -1).mean(axis=1) / 255.0
    contrast = float(yf.reshape(n, -1).std(axis=1).mean() / 128.0)
    uf = U.astype(np.float32) - 128.0
    vf = V.astype(np.float32) - 128.0
    sat = np.sqrt(uf**2 + vf**2).reshape(n, -1).mean(axis=1) / 90.0
    warm = (vf - uf).reshape(n, -1).mean(axis=1) / 64.0
    # frame differences on a 2x-coarser grid (less noise)
    h2, w2 = (Y.shape[1] // 2) * 2, (Y.shape[2] // 2) * 2
    small = yf[:, :h2, :w2].reshape(n, h2 // 2, 2, w2 // 2, 2).mean(axis=(2, 4)) if h2 and w2 else yf
    pix = np.zeros(n, np.float32)
    if n > 1:
        pix[1:] = np.abs(np.diff(small, axis=0)).reshape(n - 1, -1).mean(axis=1) / 255.0
    hy, hu, hv = _hist(Y[:, ::2, ::2], 16), _hist(U, 8), _hist(V, 8)
    hd = np.zeros(n, np.float32)
    if n > 1:
        hd[1:] = (0.5 * np.abs(np.diff(hy, axis=0)).sum(axis=1)
                  + 0.25 * np.abs(np.diff(hu, axis=0)).sum(axis=1)
                  + 0.25 * np.abs(np.diff(hv, axis=0)).sum(axis=1)) / 2.0
    score = 0.5 * hd + 0.5 * np.clip(pix * 4.0, 0.0, 1.0)
    cut_idx = detect_cuts(score, fps=fps)
    if cut_idx.size:
        # a flash (a few bright frames, a strobe) jumps like a cut but the shot comes back: a
        # cut whose frame before and frame FLASH_FRAMES after still look alike is dropped
        def pair_score(a: int, b: int) -> float:
            h = (0.5 * np.abs(hy[b] - hy[a]).sum() + 0.25 * np.abs(hu[b] - hu[a]).sum()
                 + 0.25 * np.abs(hv[b] - hv[a]).sum()) / 2.0
            p = float(np.abs(small[b] - small[a]).mean() / 255.0)
            return float(0.5 * h + 0.5 * min(p * 4.0, 1.0))

        back = [pair_score(int(i) - 1, min(int(i) + FLASH_FRAMES, n - 1)) for i in cut_idx]
        cut_idx = cut_idx[[not (i + FLASH_FRAMES < n and b < 0.5 * float(score[i]) and b < 0.18)
                           for i, b in zip(cut_idx, back, strict=True)]]
    cut_times = times[cut_idx] if exact_cuts else 0.5 * (times[cut_idx] + times[cut_idx - 1])
    # motion without the jumps at cuts
    mot = pix.copy()
    if n > 1:
        mot[0] = mot[1]
    for i in cut_idx:
        nb = [mot[j] for j in (i - 1, i + 1) if 0 <= j < n and j not in cut_idx]
        mot[i] = float(np.mean(nb)) if nb else 0.0
    motion = 1.0 - np.exp(-mot / 0.03)
    vt, vts = visual_tempo(motion, cut_idx, fps=fps)
    secs = max(1, int(math.ceil(duration - 1e-6)))
    sec_idx = np.clip((times // 1.0).astype(np.int64), 0, secs - 1)
    m_sec = np.bincount(sec_idx, weights=motion, minlength=secs) / np.maximum(
        np.bincount(sec_idx, minlength=secs), 1)
    c_sec = np.bincount(np.clip((cut_times // 1.0).astype(np.int64), 0, secs - 1), minlength=secs)
    energy = np.clip(0.65 * m_sec + 0.35 * np.minimum(c_sec / 3.0, 1.0), 0.0, 1.0)
    cut_rate = float(len(cut_times) / max(duration, 1e-3))
    shot_len = float(duration / (len(cut_times) + 1))
    motion_mean = float(motion.mean())
    pace = float(np.clip(0.55 * min(cut_rate / 2.5, 1.0) + 0.45 * min(motion_mean / 0.6, 1.0), 0, 1))
    summary = {
        "motion": round(motion_mean, 4),
        "cut_rate": round(cut_rate, 4),
        "shot_length": round(shot_len, 3),
        "brightness": round(float(bright.mean()), 4),
        "saturation": round(float(np.clip(sat.mean(), 0, 1)), 4),
        "warmth": round(float(np.clip(warm.mean(), -1, 1)), 4),
        "contrast": round(contrast, 4),
        "pace": round(pace, 4),
        "energy": round(float(energy.mean()), 4),
    }

    def rl(a: np.ndarray, nd: int = 4) -> list[float]:
        return [round(float(x), nd) for x in a]

    return VideoFeatures(
        path="", start=0.0, end=float(duration), duration=round(float(duration), 4), fps=round(fps, 4),
        width=int(Y.shape[2]), height=int(Y.shape[1]),
        times=rl(times), motion=rl(motion), brightness=rl(bright), saturation=rl(np.clip(sat, 0, 1)),
        warmth=rl(np.clip(warm, -1, 1)), cuts=rl(cut_times), energy_curve=rl(energy, 3),
        visual_tempo=round(vt, 2), visual_tempo_strength=round(vts, 3), summary=summary,
    )
