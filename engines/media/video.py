"""Video files: probe and sample frames (PyAV / FFmpeg)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engines.core.errors import (
    CorruptFileError,
    ParameterError,
    ResourceLimitError,
    UnsupportedFormatError,
)
from engines.media._files import _existing_file
from engines.media.audio import _av_open, _short

__all__ = ["MAX_SIDE", "VideoInfo", "sample_frames", "video_info"]

#: videos (or requested frame sizes) larger than this many pixels on a side are refused
MAX_SIDE = 16384
#: sampled frames larger than this in total are refused
MAX_FRAMES_BYTES = 2 * 2**30
#: when the next wanted frame is this far ahead, seek instead of decoding through
_SEEK_GAP = 4.0


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`video_info` tells about a video file.

    Attributes
    ----------
    path : Path
    duration : float
        Seconds.
    fps : float
        Average frame rate (frames per second).
    width, height : int
        Pixels.
    frame_count : int
        Number of frames (from the container, else ``round(duration * fps)``: an estimate).
    has_audio : bool
    codec : str
        Video codec (``"h264"``, ``"vp9"``, ...).
    """

    path: Path
    duration: float
    fps: float
    width: int
    height: int
    frame_count: int
    has_audio: bool
    codec: str


def _video_stream(p: Path, container: Any) -> Any:
    if not container.streams.video:
        raise UnsupportedFormatError(
            "the file has no video track" + (" (it is audio only)" if container.streams.audio else ""),
            path=p,
        )
    stream = container.streams.video[0]
    cc = stream.codec_context
    w, h = int(cc.width or 0), int(cc.height or 0)
    if w <= 0 or h <= 0:
        raise CorruptFileError("the video track has no valid frame size", path=p)
    if w > MAX_SIDE or h > MAX_SIDE:
        raise ResourceLimitError(
            f"the video is {w}x{h} pixels; sides over {MAX_SIDE} px are refused", path=p,
        )
    return stream


def _duration(container: Any, stream: Any) -> float:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return float(container.duration) / 1_000_000
    return 0.0


def _fps(stream: Any) -> float:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate is not None and float(rate) > 0:
            return float(rate)
    return 0.0


def video_info(path: str | os.PathLike[str]) -> VideoInfo:
    """Describe a video file without decoding it.

    Raises
    ------
    NotFoundError, CorruptFileError
    UnsupportedFormatError
        Not a video, or no video track.
    ResourceLimitError
        Frame sides over :data:`MAX_SIDE` pixels.
    """
    p = _existing_file(path)
    with _av_open(p) as container:
        stream = _video_stream(p, container)
        duration = _duration(container, stream)
        fps = _fps(stream)
        frames = int(stream.frames or 0) or int(round(duration * fps))
        return VideoInfo(
            path=p, duration=duration, fps=fps, width=int(stream.codec_context.width),
            height=int(stream.codec_context.height), frame_count=frames,
            has_audio=bool(container.streams.audio), codec=str(stream.codec_context.name),
        )


def sample_frames(
    path: str | os.PathLike[str],
    *,
    fps: float,
    size: tuple[int, int] | None = (160, 90),
    start: float | None = None,
    end: float | None = None,
    max_frames: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Sample frames at a fixed rate.

    For each wanted time ``start + k / fps`` (``< end``) the first frame whose time is at
    or after it (within a quarter of a frame) is returned. Far-apart samples are reached by seeking; frames in between are
    decoded but never converted.

    Parameters
    ----------
    path : str or PathLike
    fps : float
        Samples per second (> 0).
    size : (width, height) or None
        Scale frames to this size (pixels); ``None`` keeps the video's size.
    start, end : float, optional
        Region in seconds (default: the whole video).
    max_frames : int, optional
        Stop after this many frames.

    Returns
    -------
    times : np.ndarray, float64, shape (n,)
        Presentation time of each returned frame in seconds.
    frames : np.ndarray, uint8, shape (n, height, width, 3)
        RGB.

    Raises
    ------
    ParameterError
        Bad ``fps``, ``size`` or region.
    UnsupportedFormatError
        No video track.
    CorruptFileError
        No frame could be decoded.
    ResourceLimitError
        Absurd frame size, or the frames would need more than ``MAX_FRAMES_BYTES``.
    """
    import av

    p = _existing_file(path)
    if not (isinstance(fps, (int, float)) and np.isfinite(fps) and fps > 0):
        raise ParameterError(f"fps must be > 0, not {fps!r}", path=p)
    if max_frames is not None and max_frames < 1:
        raise ParameterError(f"max_frames must be at least 1, not {max_frames}", path=p)
    if size is not None:
        if len(size) != 2 or min(size) < 1:
            raise ParameterError(f"size must be (width, height) in pixels, not {size!r}", path=p)
        if max(size) > MAX_SIDE:
            raise ResourceLimitError(f"frame size {size} is over {MAX_SIDE} px on a side", path=p)
    with _av_open(p) as container:
        stream = _video_stream(p, container)
        stream.thread_type = "AUTO"
        duration = _duration(container, stream)
        s = 0.0 if start is None else float(start)
        if s < 0:
            raise ParameterError(f"start must be >= 0 s, not {start}", path=p)
        e = float("inf") if end is None else float(end)
        if end is not None and e <= s:
            raise ParameterError(f"the region is empty: start {s:g} s is not before end {e:g} s", path=p)
        if duration > 0:
            if s >= duration:
                raise ParameterError(
                    f"the region starts at {s:g} s but the video is only {duration:.3f} s long", path=p,
                )
            e = min(e, duration)
        w, h = (int(stream.codec_context.width), int(stream.codec_context.height)) if size is None \
            else (int(size[0]), int(size[1]))
        wanted = int(np.ceil((e - s) * fps)) if np.isfinite(e) else None
        if max_frames is not None:
            wanted = max_frames if wanted is None else min(wanted, max_frames)
        if wanted is not None and wanted * w * h * 3 > MAX_FRAMES_BYTES:
            raise ResourceLimitError(
                f"{wanted} frames of {w}x{h} would need {wanted * w * h * 3 / 2**30:.1f} GB; "
                "lower fps, size or the region", path=p,
            )
        limit = wanted if wanted is not None else MAX_FRAMES_BYTES // (w * h * 3)

        times: list[float] = []
        frames: list[np.ndarray] = []
        k = 0
        target = s
        half = 0.25 / max(_fps(stream), 1.0)  # tolerance for jittered timestamps
        last_t = -1.0
        may_seek = True

        def seek(t: float) -> None:
            if t <= 0:
                container.seek(0)
            else:
                container.seek(int(t / stream.time_base), stream=stream, backward=True)

        try:
            if s > 0:
                seek(s)
            restart = True
            while restart:
                restart = False
                seeked_to = last_t
                first_after_seek = True
                for frame in container.decode(stream):
                    t = frame.time if frame.time is not None else last_t + 4 * half
                    if first_after_seek and may_seek and seeked_to >= 0 and t < seeked_to - half:
                        may_seek = False  # keyframes too sparse: seeking would go backwards
                    first_after_seek = False
                    last_t = max(last_t, t)
                    if t >= e:
                        break
                    if t + half < target:
                        continue
                    img = frame.to_ndarray(format="rgb24", width=w, height=h)
                    while t + half >= target and len(frames) < limit and target < e:
                        times.append(t)
                        frames.append(img)
                        k += 1
                        target = s + k / fps
                    if len(frames) >= limit or target >= e:
                        break
                    if may_seek and target - t > _SEEK_GAP:
                        seek(target)
                        restart = True
                        break
        except (av.error.InvalidDataError, av.error.EOFError) as exc:
            if not frames:
                raise CorruptFileError(f"corrupt video data ({_short(exc)})", path=p) from None
        except av.error.FFmpegError as exc:
            raise CorruptFileError(f"the video cannot be decoded ({_short(exc)})", path=p) from None
    if not frames:
        raise CorruptFileError("no video frames could be decoded" + (
            f" between {s:g} and {e:g} s" if start is not None or end is not None else ""), path=p)
    return np.asarray(times, dtype=np.float64), np.stack(frames).astype(np.uint8, copy=False)
