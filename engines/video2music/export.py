"""Exports: the chosen track as WAV (whole, or cut to the clip from the offset with fades),
or the clip as MP4 with that music muxed in (replacing the original audio, or under it).

Video is re-encoded to H.264 (``libx264``, fast preset) for the chosen range, so any input
codec and any in/out point works; audio is AAC at 48 kHz.
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import numpy as np

from engines.core.atomic import atomic_path
from engines.core.errors import CorruptFileError, NotFoundError, ParameterError
from engines.media.audio import load_audio, write_wav

VIDEO_SR = 48000
FADE_IN = 0.05
FADE_OUT = 0.5
#: music under the original sound is this many dB down
UNDER_DB = -10.0


def _fades(y: np.ndarray, sr: int, fade_in: float, fade_out: float) -> np.ndarray:
    n = y.shape[-1]
    a = min(n, int(fade_in * sr))
    b = min(n, int(fade_out * sr))
    g = np.ones(n, np.float32)
    if a:
        g[:a] = np.linspace(0.0, 1.0, a, dtype=np.float32)
    if b:
        g[n - b:] *= np.linspace(1.0, 0.0, b, dtype=np.float32)
    return (y * g).astype(np.float32)


def music_segment(track: str, *, offset: float, duration: float | None, sr: int,
                  fade_in: float = FADE_IN, fade_out: float = FADE_OUT) -> np.ndarray:
    """``(2, n)`` float32: the track from ``offset`` for ``duration`` s (padded with silence
    when the track ends first), with fades; the whole track when ``duration`` is None."""
    if not Path(track).is_file():
        raise NotFoundError("the track's file is gone (moved or deleted?)", path=track)
    if duration is None:
        y = load_audio(track, sr=sr, mono=False)
        return np.atleast_2d(y).astype(np.float32)
    y = load_audio(track, sr=sr, mono=False, start=max(0.0, offset), end=offset + duration)
    y = np.atleast_2d(y)
    if y.shape[0] == 1:
        y = np.repeat(y, 2, axis=0)
    y = y[:2]
    n = int(round(duration * sr))
    if y.shape[1] < n:
        y = np.pad(y, ((0, 0), (0, n - y.shape[1])))
    return _fades(y[:, :n], sr, fade_in, fade_out)


def export_wav(track: str, out: str | os.PathLike[str], *, offset: float, duration: float | None,
               sr: int = VIDEO_SR, bits: int = 24) -> Path:
    """Write the track (whole, or ``duration`` s from ``offset`` with fades) as WAV."""
    y = music_segment(track, offset=offset, duration=duration, sr=sr)
    return write_wav(out, y, sr=sr, bits=bits)


def export_mp4(video: str, track: str, out: str | os.PathLike[str], *, start: float, end: float,
               offset: float, mode: str = "replace", crf: int = 20) -> Path:
    """Write the clip (``start``..``end`` of ``video``) as H.264/AAC MP4 with the music.

    ``mode="replace"`` drops the original sound; ``"under"`` mixes the music
    :data:`UNDER_DB` dB under it (a clip without sound gets the music alone).
    """
    import av

    if mode not in ("replace", "under"):
        raise ParameterError(f"mix must be 'replace' or 'under', not {mode!r}")
    duration = float(end) - float(start)
    if duration <= 0:
        raise ParameterError(f"the range {start:g}-{end:g} s is empty", path=video)
    music = music_segment(track, offset=offset, duration=duration, sr=VIDEO_SR)
    if mode == "under":
        try:
            orig = np.atleast_2d(load_audio(video, sr=VIDEO_SR, mono=False, start=start, end=end))
        except Exception:
            orig = None
        if orig is not None and orig.size:
            if orig.shape[0] == 1:
                orig = np.repeat(orig, 2, axis=0)
            orig = orig[:2, : music.shape[1]]
            orig = np.pad(orig, ((0, 0), (0, music.shape[1] - orig.shape[1])))
            music = np.clip(orig + music * (10 ** (UNDER_DB / 20)), -1, 1).astype(np.float32)
    outp = Path(os.fspath(out)).expanduser()
    with atomic_path(outp, suffix=".mp4") as tmp:
        try:
            src = av.open(str(video))
        except av.error.FFmpegError as exc:
            raise CorruptFileError(f"the clip cannot be opened ({exc})", path=video) from None
        try:
            vin = src.streams.video[0]
            vin.thread_type = "AUTO"
            rate = vin.average_rate or Fraction(25)
            dst = av.open(str(tmp), "w", format="mp4")
            vout = dst.add_stream("libx264", rate=rate)
            vout.width = (vin.codec_context.width // 2) * 2
            vout.height = (vin.codec_context.height // 2) * 2
            vout.pix_fmt = "yuv420p"
            vout.options = {"preset": "veryfast", "crf": str(crf)}
            aout = dst.add_stream("aac", rate=VIDEO_SR)
            aout.layout = "stereo"
            if start > 0:
                src.seek(int(start / vin.time_base), stream=vin, backward=True)
            k = 0
            for frame in src.decode(vin):
                t = frame.time
                if t is None or t < start - 1e-6:
                    continue
                if t >= end:
                    break
                f = frame.reformat(width=vout.width, height=vout.height, format="yuv420p")
                f.pts = k
                f.time_base = Fraction(1, 1) / rate
                k += 1
                for pkt in vout.encode(f):
                    dst.mux(pkt)
            for pkt in vout.encode():
                dst.mux(pkt)
            if k == 0:
                raise CorruptFileError("no frames in the chosen range", path=video)
            pcm = np.ascontiguousarray(music.T.astype(np.float32))  # (n, 2) interleaved
            hop = 1024
            for i in range(0, pcm.shape[0], hop):
                chunk = pcm[i:i + hop]
                fr = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="flt", layout="stereo")
                fr.sample_rate = VIDEO_SR
                fr.pts = i
                fr.time_base = Fraction(1, VIDEO_SR)
                for pkt in aout.encode(fr):
                    dst.mux(pkt)
            for pkt in aout.encode():
                dst.mux(pkt)
            dst.close()
        finally:
            src.close()
    return outp
