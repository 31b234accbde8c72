"""The learned trimodal matcher (ViML manner): (video, text) and music in one space.

* Video tower: an MLP over a fixed-size clip vector (:func:`video_vector`: picture
  scalars, a resampled energy curve, and a *cut periodicity spectrum* — for 24
  log-spaced tempi 60..190 BPM, how many shots last a whole number of beats).
* Text: the offline MiniLM sentence embedding (384-d), projected; fused with the video by
  addition ("prompt analogies"); dropped (zeroed) at random during training so the model
  also works with video alone.
* Music tower: an MLP over each track's analysis (:func:`music_matrix`: attributes,
  the same tempo spectrum, timbre, energy-curve statistics).

Trained with symmetric InfoNCE (:mod:`engines.video2music.train`). Weights are safetensors
with a ``config.json`` beside them (``default`` says whether it beat zero-shot on
held-out clips); loading never unpickles.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from engines.analysis.video import VideoFeatures
from engines.core.errors import ModelError
from engines.video2music.music import LibraryMatrix

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
N_TEMPI = 24
TEMPI = 60.0 * 2 ** np.linspace(0, math.log2(190 / 60), N_TEMPI)
N_CURVE = 8
VIDEO_DIM = 12 + N_CURVE + N_TEMPI + 6
MUSIC_DIM = 8 + N_TEMPI + 26 + 4
TEXT_DIM = 384


def cut_spectrum(cuts: list[float] | np.ndarray) -> np.ndarray:
    """For each tempo in :data:`TEMPI`: the mean closeness of shot lengths to whole beats."""
    c = np.asarray(cuts, np.float64)
    out = np.zeros(N_TEMPI, np.float32)
    if c.size < 2:
        return out
    lens = np.diff(c)
    lens = lens[(lens > 0.1) & (lens < 16)]
    if lens.size == 0:
        return out
    for k, t in enumerate(TEMPI):
        b = lens * t / 60.0
        r = np.abs(b - np.maximum(np.round(b), 1.0))
        out[k] = float(np.mean(np.exp(-0.5 * (r / 0.08) ** 2)))
    return out - out.mean()


def _resample(curve: Any, n: int) -> np.ndarray:
    a = np.asarray(curve, np.float64)
    if a.size == 0:
        return np.zeros(n)
    if a.size == 1:
        return np.full(n, a[0])
    return np.interp(np.linspace(0, a.size - 1, n), np.arange(a.size), a)


def video_vector(v: VideoFeatures) -> np.ndarray:
    s = v.summary
    vt = float(v.visual_tempo)
    scal = [s.get("motion", 0), min(s.get("cut_rate", 0), 4) / 2, math.log2(max(s.get("shot_length", 1), 0.1)) / 3,
            s.get("brightness", 0), s.get("saturation", 0) * 2, s.get("warmth", 0) * 3,
            s.get("contrast", 0), s.get("pace", 0), s.get("energy", 0),
            (math.log2(vt / 110) if vt > 0 else 0.0), float(v.visual_tempo_strength), float(vt > 0)]
    curve = _resample(v.energy_curve, N_CURVE)
    spec = cut_spectrum(v.cuts) * 3
    b = np.asarray(v.brightness, np.float64)
    m = np.asarray(v.motion, np.float64)
    extra = [b.std() * 4 if b.size else 0, m.std() * 3 if m.size else 0, float(np.std(curve)) * 3,
             len(v.cuts) / max(v.duration, 1) / 2, np.asarray(v.saturation).std() * 4 if v.saturation else 0,
             np.asarray(v.warmth).std() * 4 if v.warmth else 0]
    return np.concatenate([scal, curve, spec, extra]).astype(np.float32)


def tempo_code(tempo: np.ndarray) -> np.ndarray:
    t = np.maximum(np.asarray(tempo, np.float64), 1.0)[:, None]
    d = np.log2(t / TEMPI[None, :])
    return np.where(t > 1.0, np.exp(-0.5 * ((d - np.round(d)) / 0.05) ** 2), 0.0)


def music_matrix(lib: LibraryMatrix) -> np.ndarray:
    tempo = lib.col("tempo")
    cols = [lib.scaled("tempo"), lib.scaled("energy"), lib.scaled("brightness"), lib.scaled("density"),
            lib.scaled("major"), lib.scaled("loudness"), np.clip(lib.col("key_confidence"), 0, 1),
            (tempo > 0).astype(np.float64)]
    tim = lib.timbre.astype(np.float64)
    tim = (tim - tim.mean(axis=0)) / (tim.std(axis=0) + 1e-6) * 0.5 if len(lib) > 1 else tim * 0
    curves = np.zeros((len(lib), 4))
    for i in range(len(lib)):
        c = lib.curve(i)
        if c.size:
            curves[i] = [c.mean(), c.std() * 3, c.max(), np.abs(np.diff(c)).mean() * 5 if c.size > 1 else 0]
    return np.concatenate([np.stack(cols, 1), tempo_code(tempo), tim, curves], 1).astype(np.float32)


class TrimodalModel(nn.Module):
    def __init__(self, *, hidden: int = 128, dim: int = 64, version: str = "v1") -> None:
        super().__init__()
        self.config = {"hidden": hidden, "dim": dim, "version": version, "video_dim": VIDEO_DIM,
                       "music_dim": MUSIC_DIM, "text_dim": TEXT_DIM}
        self.version = version
        self.video = nn.Sequential(nn.Linear(VIDEO_DIM, hidden), nn.GELU(), nn.Linear(hidden, dim))
        self.text = nn.Sequential(nn.Linear(TEXT_DIM, hidden), nn.GELU(), nn.Linear(hidden, dim))
        self.music = nn.Sequential(nn.Linear(MUSIC_DIM + TEXT_DIM, hidden), nn.GELU(), nn.Linear(hidden, dim))
        self.log_temp = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    @classmethod
    def debug(cls) -> TrimodalModel:
        torch.manual_seed(0)
        m = cls(hidden=16, dim=8, version="debug")
        m.eval()
        return m

    def query(self, v: torch.Tensor, t: torch.Tensor | None) -> torch.Tensor:
        q = self.video(v)
        if t is not None:
            q = q + self.text(t)
        return nn.functional.normalize(q, dim=-1)

    def key(self, m: torch.Tensor, memb: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(self.music(torch.cat([m, memb], -1)), dim=-1)

    # numpy helpers used by the matcher --------------------------------------------------
    @torch.no_grad()
    def embed_query_np(self, video: VideoFeatures, text_vec: np.ndarray | None) -> np.ndarray:
        v = torch.from_numpy(video_vector(video))[None]
        t = None if text_vec is None else torch.from_numpy(np.asarray(text_vec, np.float32))[None]
        return self.query(v, t)[0].numpy()

    @torch.no_grad()
    def embed_music_np(self, lib: LibraryMatrix) -> np.ndarray:
        m = torch.from_numpy(music_matrix(lib))
        e = torch.from_numpy(np.ascontiguousarray(lib.emb, np.float32))
        return self.key(m, e).numpy()


def save_model(model: TrimodalModel, folder: Path, *, extra: dict[str, Any] | None = None) -> Path:
    from safetensors.torch import save_file

    from engines.core.atomic import atomic_path, atomic_write_text

    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(folder / WEIGHTS) as tmp:
        save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, str(tmp))
    atomic_write_text(folder / CONFIG, json.dumps({**model.config, **(extra or {})}, indent=2) + "\n")
    return folder


def load_config(folder: Path) -> dict[str, Any]:
    try:
        return dict(json.loads((folder / CONFIG).read_text("utf-8")))
    except (OSError, ValueError) as exc:
        raise ModelError(f"the model config cannot be read ({exc})", path=folder / CONFIG) from None


def is_default(folder: Path) -> bool:
    try:
        return bool(load_config(folder).get("default", False))
    except ModelError:
        return False


def load_model(folder: Path) -> TrimodalModel:
    from safetensors.torch import load_file

    cfg = load_config(folder)
    if cfg.get("video_dim") != VIDEO_DIM or cfg.get("music_dim") != MUSIC_DIM:
        raise ModelError("the model was trained for another feature layout; retrain it", path=folder)
    model = TrimodalModel(hidden=int(cfg["hidden"]), dim=int(cfg["dim"]), version=str(cfg.get("version", "v1")))
    try:
        model.load_state_dict(load_file(str(folder / WEIGHTS)))
    except Exception as exc:
        raise ModelError(f"the model weights cannot be loaded ({exc})", path=folder / WEIGHTS) from None
    model.eval()
    return model
