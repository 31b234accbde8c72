"""Shared helpers for the GUI tests."""

from __future__ import annotations

import wave
from pathlib import Path

HERE = Path(__file__).resolve().parent


def is_decodable_wav(path: str | Path) -> bool:
    with wave.open(str(path), "rb") as w:
        return w.getnframes() > 0 and len(w.readframes(1024)) > 0
