"""Decode an audio (or video) file to mono at the analysis rate, for the library scanner.

Uses ``engines.media.audio.load_audio`` when that module is present, and otherwise
reads with soundfile block by block (downmix and streaming resampling with soxr, so a
long file never sits in memory at its native rate), falling back to PyAV for formats
libsndfile does not read.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from engines.core.errors import CorruptFileError, EngineError, UnsupportedFormatError

if TYPE_CHECKING:
    import numpy as np

#: longest stretch of a file the scanner decodes (seconds); longer files are truncated
MAX_DECODE_SECONDS = 1800.0


def load_mono(path: str, *, sr: int, max_duration: float = MAX_DECODE_SECONDS) -> np.ndarray:
    """Mono float32 samples of ``path`` at ``sr`` (at most ``max_duration`` seconds)."""
    import numpy as np

    if os.path.getsize(path) == 0:
        raise CorruptFileError("the file is empty", path=path)
    try:
        y = _load_soundfile(path, sr=sr, max_duration=max_duration)
    except UnsupportedFormatError:
        y = _load_media(path, sr=sr, max_duration=max_duration)
    if y.size == 0:
        raise CorruptFileError("no audio could be decoded", path=path)
    if not np.isfinite(y).all():
        y = np.nan_to_num(y)
    return y


def _load_soundfile(path: str, *, sr: int, max_duration: float) -> np.ndarray:
    import numpy as np
    import soundfile as sf
    import soxr

    try:
        f = sf.SoundFile(path)
    except sf.LibsndfileError as exc:
        raise UnsupportedFormatError(f"not readable by libsndfile ({exc})", path=path) from None
    except RuntimeError as exc:  # older soundfile
        raise UnsupportedFormatError(f"not readable by libsndfile ({exc})", path=path) from None
    out: list[np.ndarray] = []
    try:
        with f:
            native = f.samplerate
            limit = int(max_duration * native)
            stream = soxr.ResampleStream(native, sr, 1, dtype="float32", quality="MQ") if native != sr else None
            read = 0
            block = 1 << 17
            while read < limit:
                try:
                    x = f.read(min(block, limit - read), dtype="float32", always_2d=True)
                except (sf.LibsndfileError, RuntimeError) as exc:
                    if read == 0:
                        raise CorruptFileError(f"cannot decode audio ({exc})", path=path) from None
                    break  # keep what decoded before the damage
                if x.shape[0] == 0:
                    break
                read += x.shape[0]
                m = x.mean(axis=1) if x.shape[1] > 1 else x[:, 0]
                out.append(stream.resample_chunk(m) if stream is not None else m.copy())
            if stream is not None:
                out.append(stream.resample_chunk(np.zeros(0, np.float32), last=True))
    except EngineError:
        raise
    except Exception as exc:
        raise CorruptFileError(f"cannot decode audio ({exc})", path=path) from None
    return np.concatenate(out).astype(np.float32, copy=False) if out else np.zeros(0, np.float32)


def _load_media(path: str, *, sr: int, max_duration: float) -> np.ndarray:
    try:
        from engines.media.audio import load_audio  # type: ignore[import-not-found]
    except ImportError:
        return _load_av(path, sr=sr, max_duration=max_duration)
    return load_audio(path, sr=sr, mono=True, max_duration=max_duration)


def _load_av(path: str, *, sr: int, max_duration: float) -> np.ndarray:
    import av
    import numpy as np

    try:
        container = av.open(path)
    except Exception as exc:
        raise UnsupportedFormatError(f"not an audio file we can read ({exc})", path=path) from None
    out: list[np.ndarray] = []
    total = 0
    limit = int(max_duration * sr)
    try:
        with container:
            if not container.streams.audio:
                raise UnsupportedFormatError("the file has no audio stream", path=path)
            resampler = av.AudioResampler(format="flt", layout="mono", rate=sr)
            for frame in container.decode(audio=0):
                for rf in resampler.resample(frame):
                    a = rf.to_ndarray().reshape(-1)
                    out.append(a)
                    total += a.size
                if total >= limit:
                    break
    except EngineError:
        raise
    except Exception as exc:
        if not out:
            raise CorruptFileError(f"cannot decode audio ({exc})", path=path) from None
    y = np.concatenate(out).astype(np.float32) if out else np.zeros(0, np.float32)
    return y[:limit]
