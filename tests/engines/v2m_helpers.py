"""Tiny media and libraries for the video2music tests (not a test module)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from engines.core.home import DataHome


def make_track(folder: Path, name: str, tempo: float, *, seconds: float = 12.0, level: float = 0.5,
               tone: float = 1000.0, sr: int = 22050) -> Path:
    from engines.media.audio import write_wav
    from engines.video2music.data import click_track

    y = click_track(tempo, seconds, sr=sr, level=level, tone=tone)
    return write_wav(folder / f"{name}.wav", y, sr=sr, bits=16)


def add_tracks(home: DataHome, specs: list[dict]) -> dict[str, int]:
    """Analyse WAVs and put them in the catalog directly (no embeddings: no MiniLM needed)."""
    from engines.analysis.features import analyze_audio
    from engines.library.catalog import Catalog, content_hash
    from engines.media.audio import load_audio

    ids = {}
    with Catalog(home) as cat:
        for s in specs:
            p = str(s["path"])
            y = load_audio(p, sr=22050)
            f = analyze_audio(y, 22050).to_dict()
            f.update(s.get("override", {}))
            st = os.stat(p)
            ids[s["name"]] = cat.put_track(
                path=p, size=st.st_size, mtime=st.st_mtime, content_hash=content_hash(p),
                tags={"title": s["name"], "album": s.get("album", s["name"]), "genre": s.get("genre", "")},
                features=f, description=s.get("description", ""), embedding=None)
    return ids


def fast_cut_clip(path: Path, *, seconds: float = 4.0, shot: float | list[float] = 0.5, fps: int = 24,
                  audio: np.ndarray | None = None, **kw) -> Path:
    from engines.video2music.data import cut_frames, write_video

    return write_video(path, cut_frames(seconds, fps=fps, shot=shot, **kw), fps=fps, audio=audio)
