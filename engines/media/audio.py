"""Audio files: probe, decode (any region, any rate), write WAV.

soundfile (libsndfile) reads WAV, AIFF, FLAC, Ogg Vorbis/Opus and MP3 directly and fast;
everything else (AAC/M4A, the audio track of a video) goes through PyAV (FFmpeg).
Resampling uses soxr.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engines.core.atomic import atomic_path
from engines.core.errors import (
    CorruptFileError,
    NotFoundError,
    ParameterError,
    ResourceLimitError,
    UnsupportedFormatError,
)
from engines.media._files import _existing_file

__all__ = [
    "AUDIO_EXTENSIONS",
    "VIDEO_EXTENSIONS",
    "AudioInfo",
    "audio_info",
    "load_audio",
    "write_wav",
]

AUDIO_EXTENSIONS: frozenset[str] = frozenset(
    {".wav", ".wave", ".aif", ".aiff", ".aifc", ".flac", ".ogg", ".oga", ".opus", ".mp3",
     ".m4a", ".aac", ".wma", ".caf", ".w64"}
)
VIDEO_EXTENSIONS: frozenset[str] = frozenset(
    {".mp4", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".m4v", ".ogv", ".wmv", ".flv", ".ts"}
)

#: decoded audio larger than this (float32 samples at the target rate) is refused
MAX_DECODED_BYTES = 4 * 2**30
_MAX_SR = 768_000

#: sniffed kinds libsndfile reads
_SF_KINDS = {"wav", "aiff", "flac", "ogg", "mp3", "caf", "w64"}


@dataclass(frozen=True)
class AudioInfo:
    """What :func:`audio_info` tells about an audio (or video) file.

    Attributes
    ----------
    path : Path
    duration : float
        Seconds.
    sample_rate : int
        Hz, as stored.
    channels : int
    format : str
        Container, lowercase (``"wav"``, ``"flac"``, ``"ogg"``, ``"mp3"``, ``"mp4"``, ...).
    codec : str
        Sample coding (``"pcm_24"``, ``"vorbis"``, ``"aac"``, ...).
    tags : dict of str to str
        ``title``, ``artist``, ``album``, ``genre`` when the file has them.
    """

    path: Path
    duration: float
    sample_rate: int
    channels: int
    format: str
    codec: str = ""
    tags: dict[str, str] = field(default_factory=dict)


# --------------------------------------------------------------------------- checks

def _sniff(head: bytes) -> str:
    """Name the container from the first bytes ('' when unknown)."""
    if head[:4] in (b"RIFF", b"RIFX") and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] in (b"RF64", b"BW64") and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "avi"
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return "aiff"
    if head[:4] == b"fLaC":
        return "flac"
    if head[:4] == b"OggS":
        return "ogg"
    if head[:4] == b"caff":
        return "caf"
    if head[:16] == b"riff.\x91\xcf\x11\xa5\xd6\x28\xdb\x04\xc0\x00\x00":
        return "w64"
    if head[4:8] == b"ftyp":
        return "mp4"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "matroska"
    if head[:4] in (b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3"):
        return "mpeg"
    if head[:3] == b"ID3":
        # ID3v2 tags precede MP3 (and sometimes AAC/FLAC) data
        return "id3"
    if head[:2] in (b"\xff\xf1", b"\xff\xf9"):
        return "aac"
    if len(head) >= 2 and head[0] == 0xFF and (head[1] & 0xE0) == 0xE0:
        return "mp3"
    if head[:4] == b"\x30\x26\xb2\x75":
        return "asf"
    if head[:3] == b"FLV":
        return "flv"
    if head[:1] == b"\x47" and len(head) > 188 and head[188:189] == b"\x47":
        return "mpegts"
    return ""


def _describe_content(head: bytes) -> str:
    if not head.strip(b"\x00"):
        return "it holds only zero bytes"
    sample = head[:512]
    try:
        text = sample.decode("utf-8")
    except UnicodeDecodeError:
        text = ""
    if text and all(c.isprintable() or c in "\r\n\t" for c in text):
        stripped = text.lstrip()
        if stripped.startswith("<"):
            return "it looks like XML/HTML text"
        if stripped.startswith(("{", "[")):
            return "it looks like JSON text"
        return "it looks like text"
    if sample[:4] == b"MThd":
        return "it is a MIDI file"
    if sample[:4] == b"PK\x03\x04":
        return "it is a ZIP archive"
    if sample[:4] == b"%PDF":
        return "it is a PDF document"
    if sample[:3] == b"\xff\xd8\xff" or sample[:8] == b"\x89PNG\r\n\x1a\n":
        return "it is an image"
    return "its content is not a known audio or video format"


def _read_head(p: Path, n: int = 512) -> bytes:
    with open(p, "rb") as fh:
        return fh.read(n)


def _check_region(p: Path, duration: float, start: float | None, end: float | None,
                  max_duration: float | None) -> tuple[float, float]:
    s = 0.0 if start is None else float(start)
    if not np.isfinite(s) or s < 0:
        raise ParameterError(f"start must be a time >= 0 s, not {start}", path=p)
    e = duration if end is None else float(end)
    if not (np.isfinite(e) or e == float("inf")):
        raise ParameterError(f"end must be a time in seconds, not {end}", path=p)
    if end is not None and e <= s:
        raise ParameterError(f"the region is empty: start {s:g} s is not before end {e:g} s", path=p)
    if duration > 0 and s >= duration:
        raise ParameterError(
            f"the region starts at {s:g} s but the file is only {duration:.3f} s long", path=p,
        )
    if duration > 0:
        e = min(e, duration)
    if max_duration is not None:
        if not max_duration > 0:
            raise ParameterError(f"max_duration must be > 0 s, not {max_duration}", path=p)
        e = min(e, s + float(max_duration))
    return s, e


def _check_sr(p: Path, sr: Any) -> int:
    if isinstance(sr, bool) or not isinstance(sr, (int, np.integer)) or not 0 < int(sr) <= _MAX_SR:
        raise ParameterError(f"sample rate must be a whole number of Hz in 1..{_MAX_SR}, not {sr!r}",
                             path=p)
    return int(sr)


# --------------------------------------------------------------------------- WAV header check

def _sniff_checked(p: Path) -> str:
    """The file's kind from its first bytes; a truncated WAV is refused here."""
    kind = _sniff(_read_head(p))
    if kind == "wav":
        trunc = _wav_truncation(p)
        if trunc is not None:
            raise CorruptFileError(
                f"truncated WAV: header says {trunc[0]:.3g} s, file holds {trunc[1]:.3g} s", path=p,
            )
    return kind


def _wav_truncation(p: Path) -> tuple[float, float] | None:
    """(seconds the header promises, seconds present) when a RIFF WAV is truncated."""
    try:
        size = p.stat().st_size
        with open(p, "rb") as fh:
            head = fh.read(12)
            if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return None
            byte_rate = 0
            pos = 12
            for _ in range(64):
                fh.seek(pos)
                chunk = fh.read(8)
                if len(chunk) < 8:
                    return None
                cid, clen = chunk[:4], struct.unpack("<I", chunk[4:])[0]
                if cid == b"fmt ":
                    fmt = fh.read(min(clen, 16))
                    if len(fmt) >= 12:
                        byte_rate = struct.unpack("<I", fmt[8:12])[0]
                elif cid == b"data":
                    if byte_rate <= 0 or clen in (0, 0xFFFFFFFF):
                        return None  # streamed WAV with a placeholder size
                    have = size - (pos + 8)
                    if clen > have:
                        return clen / byte_rate, max(0, have) / byte_rate
                    return None
                pos += 8 + clen + (clen & 1)
    except (OSError, struct.error):
        return None
    return None


# --------------------------------------------------------------------------- info

def _tags(p: Path) -> dict[str, str]:
    try:
        import mutagen

        f = mutagen.File(p, easy=True)
    except Exception:
        return {}
    if f is None or not getattr(f, "tags", None):
        return {}
    out: dict[str, str] = {}
    for key in ("title", "artist", "album", "genre"):
        try:
            value = f.tags.get(key)
        except Exception:
            continue
        if isinstance(value, list):
            value = value[0] if value else None
        if value:
            out[key] = str(value).strip()
    return out


def _sf_info(p: Path) -> Any | None:
    import soundfile as sf

    try:
        return sf.info(str(p))
    except Exception:
        return None


def _av_open(p: Path) -> Any:
    import av

    try:
        return av.open(str(p), metadata_errors="ignore")
    except av.error.FileNotFoundError:
        raise NotFoundError("file not found", path=p) from None
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise _unreadable(p, exc) from None


def _unreadable(p: Path, exc: BaseException | None = None) -> Exception:
    head = _read_head(p)
    kind = _sniff(head)
    suffix = p.suffix.lower()
    if not kind:
        label = f" although it is named {suffix}" if suffix else ""
        return UnsupportedFormatError(
            f"not an audio or video file{label}: {_describe_content(head)}", path=p,
        )
    detail = f" ({_short(exc)})" if exc is not None else ""
    return CorruptFileError(f"corrupt or truncated {kind.upper()} data{detail}", path=p)


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    # FFmpeg errors repeat the path; keep the reason
    text = text.replace("Error number", "error")
    return text[:160]


def _container_name(container: Any, p: Path) -> str:
    names = [n.strip() for n in str(container.format.name).split(",")]
    suffix = p.suffix.lower().lstrip(".")
    return suffix if suffix in names else names[0]


def audio_info(path: str | os.PathLike[str]) -> AudioInfo:
    """Describe an audio file (or the audio track of a video) without decoding it.

    Parameters
    ----------
    path : str or PathLike

    Returns
    -------
    AudioInfo

    Raises
    ------
    NotFoundError, CorruptFileError, UnsupportedFormatError
    """
    p = _existing_file(path)
    kind = _sniff_checked(p)
    if kind in _SF_KINDS or kind == "id3":
        info = _sf_info(p)
        if info is not None and info.frames > 0 and info.samplerate > 0:
            return AudioInfo(
                path=p, duration=info.frames / info.samplerate, sample_rate=int(info.samplerate),
                channels=int(info.channels), format=str(info.format).lower(),
                codec=str(info.subtype).lower(), tags=_tags(p),
            )
    _refuse_mislabelled(p, kind)
    with _av_open(p) as container:
        if not container.streams.audio:
            raise UnsupportedFormatError("the file has no audio track", path=p)
        stream = container.streams.audio[0]
        cc = stream.codec_context
        duration = _av_duration(container, stream)
        return AudioInfo(
            path=p, duration=duration, sample_rate=int(cc.sample_rate or 0),
            channels=int(cc.channels or 0), format=_container_name(container, p),
            codec=str(cc.name), tags=_tags(p),
        )


def _refuse_mislabelled(p: Path, kind: str) -> None:
    """A file named like a format libsndfile knows whose bytes are no audio at all."""
    if not kind and p.suffix.lower() in {".wav", ".wave", ".aif", ".aiff", ".flac"}:
        raise UnsupportedFormatError(
            f"not a {p.suffix.lstrip('.').upper()} file although it is named {p.suffix}: "
            f"{_describe_content(_read_head(p))}", path=p,
        )


def _av_duration(container: Any, stream: Any) -> float:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return float(container.duration) / 1_000_000
    return 0.0


# --------------------------------------------------------------------------- load

def _resample(y: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Resample (n,) or (n, ch) float32 with soxr."""
    if sr_in == sr_out or y.shape[0] == 0:
        return np.ascontiguousarray(y, dtype=np.float32)
    import soxr

    return soxr.resample(np.ascontiguousarray(y, dtype=np.float32), sr_in, sr_out, quality="HQ")


def _finish(data: np.ndarray, sr_in: int, sr: int, mono: bool) -> np.ndarray:
    """(n, ch) at sr_in -> (n,) or (ch, n) float32 at sr."""
    if data.ndim == 1:
        data = data[:, None]
    if mono:
        ch = data.shape[1]
        # a matrix-vector product is several times faster than mean(axis=1) on (n, ch)
        y = data @ np.full(ch, 1.0 / ch, dtype=np.float32) if ch > 1 else data[:, 0]
        y = _resample(y, sr_in, sr)
        return np.ascontiguousarray(y, dtype=np.float32)
    y = _resample(data, sr_in, sr)
    if y.ndim == 1:
        y = y[:, None]
    return np.ascontiguousarray(y.T, dtype=np.float32)


def _guard_size(p: Path, seconds: float, sr: int, channels: int) -> None:
    need = max(seconds, 0.0) * sr * max(channels, 1) * 4
    if need > MAX_DECODED_BYTES:
        raise ResourceLimitError(
            f"decoding {seconds:.0f} s would need {need / 2**30:.1f} GB; "
            "give start/end or max_duration to load a part", path=p,
        )


def _load_sf(p: Path, *, sr: int, mono: bool, start: float | None, end: float | None,
             max_duration: float | None, kind: str) -> np.ndarray | None:
    """Decode with libsndfile; None when libsndfile cannot open the file."""
    import soundfile as sf

    try:
        fh = sf.SoundFile(str(p))
    except Exception:
        return None
    with fh:
        sr_in = int(fh.samplerate)
        frames = int(fh.frames)
        if sr_in <= 0 or frames <= 0:
            return None
        duration = frames / sr_in
        s, e = _check_region(p, duration, start, end, max_duration)
        first = int(round(s * sr_in))
        last = min(frames, int(round(e * sr_in)))
        count = max(0, last - first)
        _guard_size(p, count / sr_in, max(sr, sr_in), 1 if mono else fh.channels)
        try:
            if first:
                fh.seek(first)
            data = fh.read(count, dtype="float32", always_2d=True)
        except Exception as exc:
            raise CorruptFileError(f"corrupt {kind.upper()} data ({_short(exc)})", path=p) from None
    got = data.shape[0]
    if got < count - max(16, int(0.01 * sr_in)) and kind in ("flac", "aiff", "wav"):
        raise CorruptFileError(
            f"truncated {kind.upper()}: header says {duration:.3g} s, file holds "
            f"{(first + got) / sr_in:.3g} s", path=p,
        )
    if got == 0:
        raise CorruptFileError(f"no audio could be decoded from this {kind.upper()} file", path=p)
    return _finish(data, sr_in, sr, mono)


def _load_av(p: Path, *, sr: int, mono: bool, start: float | None, end: float | None,
             max_duration: float | None) -> np.ndarray:
    import av

    with _av_open(p) as container:
        if not container.streams.audio:
            what = "video" if container.streams.video else "file"
            raise UnsupportedFormatError(f"the {what} has no audio track", path=p)
        stream = container.streams.audio[0]
        stream.thread_type = "AUTO"
        cc = stream.codec_context
        sr_in = int(cc.sample_rate or 0)
        channels = int(cc.channels or 0)
        if sr_in <= 0 or channels <= 0:
            raise CorruptFileError("the audio track has no valid sample rate or channel layout", path=p)
        duration = _av_duration(container, stream)
        s, e = _check_region(p, duration if duration > 0 else float("inf"), start, end, max_duration)
        if duration <= 0 and e == float("inf"):
            e = float("inf")
        _guard_size(p, (e - s) if np.isfinite(e) else 0.0, max(sr, sr_in), 1 if mono else channels)
        if s > 0:
            try:
                container.seek(int(s / stream.time_base), stream=stream, backward=True)
            except av.error.FFmpegError:
                container.seek(0)
        resampler = av.AudioResampler(format="flt", layout=cc.layout.name, rate=sr_in)
        chunks: list[np.ndarray] = []
        first_time: float | None = None
        pos_time = 0.0
        limit_samples = int(MAX_DECODED_BYTES // (4 * channels))
        total = 0
        try:
            for packet in container.demux(stream):
                for frame in packet.decode():
                    t = float(frame.pts * frame.time_base) if frame.pts is not None else pos_time
                    pos_time = t + frame.samples / sr_in
                    if pos_time <= s:
                        continue
                    if t >= e:
                        break
                    for out in resampler.resample(frame):
                        arr = out.to_ndarray().reshape(-1, channels)
                        if first_time is None:
                            first_time = t
                        chunks.append(arr)
                        total += arr.shape[0]
                    if total > limit_samples:
                        raise ResourceLimitError("the audio track is too long to decode at once", path=p)
                else:
                    continue
                break
        except (av.error.InvalidDataError, av.error.EOFError) as exc:
            if not chunks:
                raise CorruptFileError(f"corrupt audio data ({_short(exc)})", path=p) from None
        except av.error.FFmpegError as exc:
            raise CorruptFileError(f"the audio track cannot be decoded ({_short(exc)})", path=p) from None
    if not chunks:
        raise CorruptFileError("no audio could be decoded from the file", path=p)
    data = np.concatenate(chunks, axis=0)
    first_time = first_time or 0.0
    lo = max(0, int(round((s - first_time) * sr_in)))
    hi = data.shape[0] if not np.isfinite(e) else max(lo, int(round((e - first_time) * sr_in)))
    data = data[lo:hi]
    if data.shape[0] == 0:
        raise ParameterError(f"no audio in the region {s:g}-{e:g} s", path=p)
    return _finish(data, sr_in, sr, mono)


def load_audio(
    path: str | os.PathLike[str],
    *,
    sr: int,
    mono: bool = True,
    start: float | None = None,
    end: float | None = None,
    max_duration: float | None = None,
) -> np.ndarray:
    """Decode an audio file (or a video's audio track), resampled to ``sr``.

    Parameters
    ----------
    path : str or PathLike
        Any format libsndfile or FFmpeg reads.
    sr : int
        Target sample rate in Hz.
    mono : bool
        Average the channels.
    start, end : float, optional
        Region in seconds; only that region is decoded (seeking where the format allows).
        ``end`` past the end of the file is clamped; ``start`` past it is an error.
    max_duration : float, optional
        Decode at most this many seconds from ``start``.

    Returns
    -------
    np.ndarray, float32
        Shape ``(n,)`` when ``mono`` else ``(channels, n)``; ``n ≈ (end - start) * sr``.

    Raises
    ------
    NotFoundError
        No such file.
    CorruptFileError
        Empty, truncated or corrupt file.
    UnsupportedFormatError
        Not audio (for example a text file named ``.wav``) or a video without an audio track.
    ParameterError
        Bad ``sr``, or a region outside the file / with ``start >= end``.
    ResourceLimitError
        The decoded audio would be larger than :data:`MAX_DECODED_BYTES`.
    """
    p = _existing_file(path)
    sr = _check_sr(p, sr)
    kind = _sniff_checked(p)
    if kind in _SF_KINDS or kind == "id3":
        y = _load_sf(p, sr=sr, mono=mono, start=start, end=end, max_duration=max_duration, kind=kind)
        if y is not None:
            return y
        if kind in ("wav", "aiff", "flac"):
            # libsndfile reads every valid file of these kinds; FFmpeg may still salvage some
            try:
                return _load_av(p, sr=sr, mono=mono, start=start, end=end, max_duration=max_duration)
            except (CorruptFileError, UnsupportedFormatError):
                raise CorruptFileError(f"corrupt {kind.upper()} file: it cannot be decoded",
                                       path=p) from None
    _refuse_mislabelled(p, kind)
    return _load_av(p, sr=sr, mono=mono, start=start, end=end, max_duration=max_duration)


# --------------------------------------------------------------------------- write

def write_wav(path: str | os.PathLike[str], y: np.ndarray, *, sr: int, bits: int = 24) -> Path:
    """Write PCM WAV atomically.

    Parameters
    ----------
    path : str or PathLike
        Target file; its folder is created.
    y : np.ndarray
        Shape ``(n,)`` or ``(channels, n)``, float in [-1, 1] (clipped).
    sr : int
        Sample rate in Hz.
    bits : {16, 24}

    Returns
    -------
    Path
        ``path``.
    """
    import soundfile as sf

    p = Path(path).expanduser()
    sr = _check_sr(p, sr)
    if bits not in (16, 24):
        raise ParameterError(f"WAV bits must be 16 or 24, not {bits}", path=p)
    a = np.asarray(y)
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2 or a.shape[0] == 0:
        raise ParameterError(f"audio must have shape (n,) or (channels, n), not {np.shape(y)}", path=p)
    if a.shape[0] > 64:
        raise ParameterError(
            f"audio has shape {a.shape}: expected (channels, n) with at most 64 channels "
            "(transpose an (n, channels) array)", path=p,
        )
    if not np.issubdtype(a.dtype, np.number):
        raise ParameterError(f"audio must be numeric, not {a.dtype}", path=p)
    a = a.astype(np.float32, copy=False)
    if not np.all(np.isfinite(a)):
        raise ParameterError("audio contains NaN or infinite samples", path=p)
    data = np.clip(a, -1.0, 1.0).T
    fmt = "RF64" if data.size * (bits // 8) > 0xFFFFFFFF - 1024 else "WAV"
    with atomic_path(p) as tmp:
        sf.write(str(tmp), data, sr, subtype=f"PCM_{bits}", format=fmt)
    return p
