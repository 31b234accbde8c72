"""Waveform peaks of an audio file, read off the GUI thread.

The library's tracks come with peaks computed at indexing time (``library.show``); the
files compared in the Compare workspace (content-hashed copies in the preference store)
do not, so their peaks are read here with ``soundfile`` in a thread pool, block by block
(a five-minute track never sits in memory whole).
"""

from __future__ import annotations

import math
from pathlib import Path

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

N_PEAKS = 600


def read_peaks(path: str | Path, n: int = N_PEAKS) -> tuple[list[float], float]:
    """Absolute sample peaks (0..1 of full scale) in ``n`` equal slices, and the duration in seconds.

    Raises ``OSError`` / ``RuntimeError`` (from libsndfile) when the file cannot be decoded.
    """
    import numpy as np
    import soundfile as sf

    with sf.SoundFile(str(path)) as f:
        frames, sr = int(f.frames), int(f.samplerate)
        if frames <= 0 or sr <= 0:
            return [], 0.0
        n = max(1, min(n, frames))
        block = math.ceil(frames / n)
        peaks: list[float] = []
        for chunk in f.blocks(blocksize=block, dtype="float32", always_2d=True):
            peaks.append(float(np.abs(chunk).max()) if chunk.size else 0.0)
    return [min(1.0, p) for p in peaks], frames / sr


class _Relay(QObject):
    done = Signal(str, object, float, str)  # key, peaks, duration, error


class _Task(QRunnable):
    def __init__(self, relay: _Relay, key: str, path: str, n: int) -> None:
        super().__init__()
        self.relay, self.key, self.path, self.n = relay, key, path, n

    def run(self) -> None:
        try:
            peaks, duration = read_peaks(self.path, self.n)
        except Exception as exc:  # noqa: BLE001 - any decoder failure is shown, not raised
            self.relay.done.emit(self.key, [], 0.0, f"{type(exc).__name__}: {exc}")
        else:
            self.relay.done.emit(self.key, peaks, duration, "")


class PeaksLoader(QObject):
    """``request(key, path)`` reads peaks in the background; ``loaded(key, peaks, duration, error)``
    arrives in the GUI thread (``error`` is empty on success)."""

    loaded = Signal(str, object, float, str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(2)
        self._relay = _Relay(self)
        self._relay.done.connect(self.loaded)

    def request(self, key: str, path: str, n: int = N_PEAKS) -> None:
        if not path or not Path(path).is_file():
            self.loaded.emit(key, [], 0.0, f"missing file: {path or '(none)'}")
            return
        self.pool.start(_Task(self._relay, key, path, n))

    def wait(self, ms: int = 5000) -> bool:
        return self.pool.waitForDone(ms)
