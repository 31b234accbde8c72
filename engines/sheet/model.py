"""Two snippet encoders mapping audio and sheet excerpts into one space.

After Carvalho, Washüttl & Widmer (2023) and Dorfer et al. (TISMIR 2018): small CNNs, trained
contrastively (InfoNCE), L2-normalised embeddings compared by inner product.

* audio: ``(B, N_BANDS=80, frames=60)`` log-frequency spectrogram (3 s) → ``dim``
* sheet: ``(B, 64, 256)`` ink (one staff, staff height 20 px) → ``dim``

Checkpoints are a folder with ``model.safetensors`` and ``config.json`` (no pickle).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F


@dataclass
class ModelConfig:
    dim: int = 128
    audio_channels: list[int] = field(default_factory=lambda: [8, 16, 32, 64])
    sheet_channels: list[int] = field(default_factory=lambda: [8, 16, 32, 64])
    n_bands: int = 80
    audio_frames: int = 60
    strip_h: int = 64
    snippet_w: int = 256
    temperature: float = 0.07
    name: str = "custom"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in known})


def _block(cin: int, cout: int, n: int = 1) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(n):
        layers += [nn.Conv2d(cin if i == 0 else cout, cout, 3, padding=1, bias=False),
                   nn.BatchNorm2d(cout), nn.ELU(inplace=True)]
    return nn.Sequential(*layers)


class AudioEncoder(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        c = cfg.audio_channels
        self.net = nn.Sequential(
            _block(1, c[0]), nn.MaxPool2d(2),
            _block(c[0], c[1]), nn.MaxPool2d(2),
            _block(c[1], c[2], 2), nn.MaxPool2d(2),
            _block(c[2], c[3]),
            nn.AdaptiveAvgPool2d((cfg.n_bands // 8, 1)),
        )
        self.head = nn.Linear(c[3] * (cfg.n_bands // 8), cfg.dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, bands, frames)
        h = self.net(x.unsqueeze(1)).flatten(1)
        return F.normalize(self.head(h), dim=-1)


class SheetEncoder(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        c = cfg.sheet_channels
        self.net = nn.Sequential(
            nn.Conv2d(1, c[0], 5, stride=2, padding=2, bias=False), nn.BatchNorm2d(c[0]), nn.ELU(inplace=True),
            nn.MaxPool2d(2),
            _block(c[0], c[1]), nn.MaxPool2d(2),
            _block(c[1], c[2], 2), nn.MaxPool2d(2),
            _block(c[2], c[3]),
            nn.AdaptiveAvgPool2d((4, 4)),
        )
        self.head = nn.Linear(c[3] * 16, cfg.dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, H, W) in [0, 1]
        h = self.net(x.unsqueeze(1)).flatten(1)
        return F.normalize(self.head(h), dim=-1)


class SnippetModel(nn.Module):
    """Both encoders plus a learnable temperature."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.audio = AudioEncoder(cfg)
        self.sheet = SheetEncoder(cfg)
        self.logit_scale = nn.Parameter(torch.tensor(float(np.log(1 / cfg.temperature))))

    def loss(self, a: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """Symmetric InfoNCE over a batch of matching (audio, sheet) embeddings."""
        logits = a @ s.T * self.logit_scale.clamp(max=4.6).exp()
        target = torch.arange(a.shape[0])
        return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))

    # inference -----------------------------------------------------------------
    @torch.no_grad()
    def embed_audio(self, specs: np.ndarray, *, batch: int = 256) -> np.ndarray:
        """``(N, frames, bands)`` log-spectrogram snippets → ``(N, dim)`` float32."""
        self.eval()
        out = []
        for i in range(0, len(specs), batch):
            x = torch.from_numpy(np.ascontiguousarray(specs[i:i + batch], np.float32)).transpose(1, 2)
            out.append(self.audio(audio_norm(x)).numpy())
        return np.concatenate(out) if out else np.zeros((0, self.cfg.dim), np.float32)

    @torch.no_grad()
    def embed_sheet(self, inks: np.ndarray, *, batch: int = 256) -> np.ndarray:
        """``(N, 64, 256)`` uint8 ink snippets → ``(N, dim)`` float32."""
        self.eval()
        out = []
        for i in range(0, len(inks), batch):
            x = torch.from_numpy(np.ascontiguousarray(inks[i:i + batch])).float() / 255.0
            out.append(self.sheet(x).numpy())
        return np.concatenate(out) if out else np.zeros((0, self.cfg.dim), np.float32)

    # persistence ---------------------------------------------------------------
    def save(self, folder: str | Path) -> None:
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        save_file(state, str(folder / "model.safetensors"))
        (folder / "config.json").write_text(json.dumps(self.cfg.to_dict(), indent=2) + "\n", "utf-8")

    @classmethod
    def load(cls, folder: str | Path) -> SnippetModel:
        from safetensors.torch import load_file

        folder = Path(folder)
        cfg = ModelConfig.from_dict(json.loads((folder / "config.json").read_text("utf-8")))
        model = cls(cfg)
        model.load_state_dict(load_file(str(folder / "model.safetensors"), device="cpu"))
        return model.eval()

    @classmethod
    def debug(cls, seed: int = 0) -> SnippetModel:
        torch.manual_seed(seed)
        cfg = ModelConfig(dim=32, audio_channels=[4, 8, 8, 16], sheet_channels=[4, 8, 8, 16], name="debug")
        return cls(cfg).eval()


def audio_norm(x: torch.Tensor) -> torch.Tensor:
    """Per-snippet normalisation (gain invariance): subtract the mean, scale by a constant."""
    return (x - x.mean(dim=(1, 2), keepdim=True)) / 1.5
