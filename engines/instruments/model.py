"""Torch modules: log-mel front end, Single-Instrument Encoder, Multi-Instrument Encoder.

Shapes: audio ``(batch, samples)`` at :data:`ModelConfig.sr`; log-mel ``(batch, 1, n_mels,
frames)``; embeddings L2-normalised ``(batch, emb_dim)`` (single) and ``(batch, slots,
emb_dim)`` (multi), with a "present" logit and a register (median MIDI pitch) per slot.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild the modules (stored beside the weights as config.json)."""

    name: str = "default"
    sr: int = 16000
    seconds: float = 3.0
    n_fft: int = 1024
    hop: int = 400
    n_mels: int = 64
    fmin: float = 30.0
    fmax: float = 8000.0
    emb_dim: int = 128
    single_channels: tuple[int, ...] = (16, 32, 64, 128)
    multi_channels: tuple[int, ...] = (16, 32, 64, 128)
    multi_hidden: int = 256
    slots: int = 6
    n_classes: int = 593
    version: int = 1
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def samples(self) -> int:
        return int(round(self.sr * self.seconds))

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        for k in ("single_channels", "multi_channels"):
            if k in known:
                known[k] = tuple(known[k])
        return cls(**known)


DEBUG_CONFIG = ModelConfig(name="debug", n_mels=32, emb_dim=16, single_channels=(4, 8, 8, 8),
                           multi_channels=(4, 8, 8, 8), multi_hidden=16, slots=4, n_classes=8)


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    """Slaney's mel scale: linear below 1 kHz, logarithmic above (librosa's default)."""
    f = np.asarray(f, dtype=np.float64)
    lin = f / (200.0 / 3)
    logstep = np.log(6.4) / 27.0
    return np.where(f >= 1000.0, 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / logstep, lin)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    logstep = np.log(6.4) / 27.0
    return np.where(m >= 15.0, 1000.0 * np.exp(logstep * (m - 15.0)), m * (200.0 / 3))


def mel_filterbank(*, sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """Triangular, area-normalised ("slaney") mel filters, shape ``(n_mels, 1 + n_fft // 2)``.

    The same matrix as ``librosa.filters.mel`` with its defaults (checked in the tests), written
    out so the model needs only numpy and torch (it also trains where librosa is not installed).
    """
    fft_freqs = np.linspace(0, sr / 2, 1 + n_fft // 2)
    mel_f = _mel_to_hz(np.linspace(_hz_to_mel(np.array(fmin)), _hz_to_mel(np.array(fmax)), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2:n_mels + 2] - mel_f[:n_mels]))[:, None]
    return weights.astype(np.float32)


class LogMel(nn.Module):
    """Log-mel spectrogram in dB relative to each clip's maximum, floored at -80 dB, scaled /40.

    Relative to the maximum, so a single instrument's embedding ignores its gain.
    """

    fb: torch.Tensor
    window: torch.Tensor

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        fb = mel_filterbank(sr=cfg.sr, n_fft=cfg.n_fft, n_mels=cfg.n_mels, fmin=cfg.fmin, fmax=cfg.fmax)
        self.register_buffer("fb", torch.from_numpy(fb.astype(np.float32)), persistent=False)
        self.register_buffer("window", torch.hann_window(cfg.n_fft), persistent=False)
        self.n_fft, self.hop = cfg.n_fft, cfg.hop

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        spec = torch.stft(y, self.n_fft, self.hop, window=self.window, center=True, return_complex=True)
        power = spec.real ** 2 + spec.imag ** 2
        mel = torch.matmul(self.fb, power)
        db = 10 * torch.log10(mel.clamp_min(1e-10))
        db = db - db.amax(dim=(1, 2), keepdim=True)
        return (db.clamp_min(-80.0) / 40.0 + 1.0).unsqueeze(1)


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
    )


class Backbone(nn.Module):
    """A small VGG-ish CNN: (B, 1, mels, frames) -> (B, C, mels/16, frames/16)."""

    def __init__(self, channels: tuple[int, ...]) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = 1
        for c in channels:
            layers.append(_block(cin, c))
            layers.append(nn.MaxPool2d(2))
            cin = c
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class SingleEncoder(nn.Module):
    """Single-Instrument Encoder: classifies training instruments; the penultimate layer
    (L2-normalised) is the instrument embedding. The classifier is cosine-based (AM-softmax)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.frontend = LogMel(cfg)
        self.backbone = Backbone(cfg.single_channels)
        c = cfg.single_channels[-1]
        self.proj = nn.Sequential(nn.Linear(2 * c, 256), nn.BatchNorm1d(256), nn.ReLU(inplace=True),
                                  nn.Linear(256, cfg.emb_dim))
        self.classifier = nn.Parameter(torch.randn(cfg.n_classes, cfg.emb_dim) * 0.05)

    def embed_features(self, x: torch.Tensor) -> torch.Tensor:
        h = self.backbone(x).mean(dim=2)  # (B, C, T)
        h = torch.cat([h.mean(dim=2), h.amax(dim=2)], dim=1)
        return F.normalize(self.proj(h), dim=-1)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        """Audio (B, samples) -> embeddings (B, emb_dim)."""
        return self.embed_features(self.frontend(y))

    def logits(self, emb: torch.Tensor) -> torch.Tensor:
        return emb @ F.normalize(self.classifier, dim=-1).T


class MultiEncoder(nn.Module):
    """Multi-Instrument Encoder: a mixture -> ``slots`` embeddings, present logits, registers."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.frontend = LogMel(cfg)
        self.backbone = Backbone(cfg.multi_channels)
        c = cfg.multi_channels[-1]
        mels_left = cfg.n_mels // 2 ** len(cfg.multi_channels)
        self.head = nn.Sequential(
            nn.Linear(2 * c * mels_left, cfg.multi_hidden), nn.BatchNorm1d(cfg.multi_hidden),
            nn.ReLU(inplace=True), nn.Dropout(0.1),
            nn.Linear(cfg.multi_hidden, cfg.slots * (cfg.emb_dim + 2)),
        )

    def forward(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Audio (B, samples) -> (embeddings (B, S, D), present logits (B, S), pitch (B, S))."""
        return self.embed_features(self.frontend(y))

    def embed_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Log-mel (B, 1, mels, frames) -> the same as :meth:`forward`."""
        h = self.backbone(x)  # (B, C, F, T)
        h = torch.cat([h.mean(dim=3), h.amax(dim=3)], dim=1).flatten(1)
        out = self.head(h).view(-1, self.cfg.slots, self.cfg.emb_dim + 2)
        emb = F.normalize(out[..., : self.cfg.emb_dim], dim=-1)
        return emb, out[..., self.cfg.emb_dim], 60.0 + 24.0 * out[..., self.cfg.emb_dim + 1]


class InstrumentModel(nn.Module):
    """Both encoders, saved and loaded together."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.single = SingleEncoder(cfg)
        self.multi = MultiEncoder(cfg)


def save(model: InstrumentModel, folder: str | os.PathLike[str], *, half: bool = False) -> Path:
    """Write ``model.safetensors`` and ``config.json`` into ``folder``."""
    from safetensors.torch import save_file

    from engines.core.atomic import atomic_path, atomic_write_text

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: (v.half() if half and v.is_floating_point() else v).contiguous().cpu()
             for k, v in model.state_dict().items()}
    with atomic_path(folder / "model.safetensors") as tmp:
        save_file(state, str(tmp), metadata={"config": model.cfg.to_json()})
    atomic_write_text(folder / "config.json", model.cfg.to_json() + "\n")
    return folder


def load(folder: str | os.PathLike[str]) -> InstrumentModel:
    """Rebuild an :class:`InstrumentModel` from ``folder`` (no pickle)."""
    from safetensors.torch import load_file

    folder = Path(folder)
    cfg = ModelConfig.from_dict(json.loads((folder / "config.json").read_text("utf-8")))
    model = InstrumentModel(cfg)
    state = load_file(str(folder / "model.safetensors"))
    own = model.state_dict()
    state = {k: v.to(own[k].dtype) if k in own else v for k, v in state.items()}
    model.load_state_dict(state)
    return model.eval()
