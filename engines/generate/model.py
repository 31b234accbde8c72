"""The diffusion model: a small diffusers ``UNet2DModel`` over multi-track piano-roll planes.

Input ``(B, 24, 64 pitches, W steps)`` = noisy track planes (6) concatenated with the
condition planes (9) and the known-track planes (9) of :mod:`engines.generate.data`; output
the v-prediction for the 6 track planes. The texture class (chorale / quartet) goes through
the UNet's class embedding. The network is fully convolutional, so it samples any width
that is a multiple of ``2 ** (len(block_out_channels) - 1)``.

Sampling is DDIM with classifier-free guidance: the unconditional branch has the harmony
planes zeroed and class 0, exactly as the condition dropout in training.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from engines.generate import data as D


@dataclass
class ModelConfig:
    block_out_channels: tuple[int, ...] = (32, 64, 64)
    #: pitch rows folded into channels (space-to-depth): 64 pitches -> 8 rows x 8 channels
    pitch_fold: int = 8
    layers_per_block: int = 1
    norm_num_groups: int = 8
    num_train_timesteps: int = 1000
    beta_schedule: str = "squaredcos_cap_v2"
    prediction_type: str = "v_prediction"
    in_channels: int = D.IN_CHANNELS
    out_channels: int = D.N_TRACK_CH
    n_pitch: int = D.N_PITCH
    pitch_lo: int = D.PITCH_LO
    window: int = D.WINDOW
    n_classes: int = len(D.SOURCES)
    sampling_steps: int = 16
    guidance: float = 2.0
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        known = set(cls.__dataclass_fields__)
        kw = {k: v for k, v in d.items() if k in known}
        if "block_out_channels" in kw:
            kw["block_out_channels"] = tuple(kw["block_out_channels"])
        return cls(**kw)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["block_out_channels"] = list(self.block_out_channels)
        return d


class FoldedUNet(torch.nn.Module):
    """``UNet2DModel`` on planes whose pitch axis is folded into channels.

    ``(B, C, 64, W)`` -> ``(B, C * f, 64 / f, W)`` (f = ``pitch_fold``): eight times fewer
    positions for the convolutions, which is what makes CPU sampling take about a second.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        from diffusers import UNet2DModel

        n = len(cfg.block_out_channels)
        f = cfg.pitch_fold
        self.fold = f
        self.unet = UNet2DModel(
            sample_size=(cfg.n_pitch // f, cfg.window),
            in_channels=cfg.in_channels * f,
            out_channels=cfg.out_channels * f,
            block_out_channels=tuple(cfg.block_out_channels),
            layers_per_block=cfg.layers_per_block,
            down_block_types=("DownBlock2D",) * n,
            up_block_types=("UpBlock2D",) * n,
            norm_num_groups=cfg.norm_num_groups,
            num_class_embeds=cfg.n_classes,
            add_attention=False,
        )

    def _fold(self, x: torch.Tensor) -> torch.Tensor:
        b, c, p, w = x.shape
        f = self.fold
        return x.reshape(b, c, p // f, f, w).permute(0, 1, 3, 2, 4).reshape(b, c * f, p // f, w)

    def _unfold(self, x: torch.Tensor) -> torch.Tensor:
        b, cf, r, w = x.shape
        f = self.fold
        return x.reshape(b, cf // f, f, r, w).permute(0, 1, 3, 2, 4).reshape(b, cf // f, r * f, w)

    def forward(self, x: torch.Tensor, t: torch.Tensor | int, class_labels: torch.Tensor) -> torch.Tensor:
        return self._unfold(self.unet(self._fold(x), t, class_labels=class_labels).sample)


def build_unet(cfg: ModelConfig) -> torch.nn.Module:
    return FoldedUNet(cfg)


def make_train_scheduler(cfg: ModelConfig):  # noqa: ANN201
    from diffusers import DDPMScheduler

    return DDPMScheduler(num_train_timesteps=cfg.num_train_timesteps, beta_schedule=cfg.beta_schedule,
                         prediction_type=cfg.prediction_type, clip_sample=False)


def make_sample_scheduler(cfg: ModelConfig):  # noqa: ANN201
    from diffusers import DDIMScheduler

    return DDIMScheduler(num_train_timesteps=cfg.num_train_timesteps, beta_schedule=cfg.beta_schedule,
                         prediction_type=cfg.prediction_type, clip_sample=True, set_alpha_to_one=True)


class RollDiffusion:
    """A UNet plus its config; samples track planes given condition planes."""

    def __init__(self, unet: torch.nn.Module, cfg: ModelConfig, *, name: str = "custom",
                 device: str = "cpu") -> None:
        self.unet = unet.to(device).eval()
        self.cfg = cfg
        self.name = name
        self.device = device
        self.quantum = 2 ** (len(cfg.block_out_channels) - 1)
        self.threads = 1

    # persistence -------------------------------------------------------------------
    @classmethod
    def load(cls, folder: str | Path, *, device: str = "cpu") -> RollDiffusion:
        from safetensors.torch import load_file

        folder = Path(folder)
        cfg = ModelConfig.from_dict(json.loads((folder / "config.json").read_text("utf-8")))
        unet = build_unet(cfg)
        state = load_file(str(folder / "model.safetensors"), device="cpu")
        unet.load_state_dict(state)
        return cls(unet, cfg, name=folder.name, device=device)

    @classmethod
    def random(cls, cfg: ModelConfig, *, seed: int = 0, name: str = "debug") -> RollDiffusion:
        torch.manual_seed(seed)
        return cls(build_unet(cfg), cfg, name=name)

    def save(self, folder: str | Path) -> None:
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous() for k, v in self.unet.state_dict().items()}
        save_file(state, str(folder / "model.safetensors"))
        (folder / "model.safetensors").chmod(0o644)
        (folder / "config.json").write_text(json.dumps(self.cfg.to_dict(), indent=2) + "\n", "utf-8")

    # sampling ----------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, cond: np.ndarray, cls_label: int, *, seed: int, steps: int | None = None,
               guidance: float | None = None, check: Callable[[], None] | None = None) -> np.ndarray:
        """Sample track planes.

        Parameters
        ----------
        cond : ndarray, shape (18, P, W)
            Condition + known planes (:mod:`engines.generate.data`).
        cls_label : int
            Texture class (0 = none).
        seed : int
            Seeds the initial noise; the same seed gives the same planes.

        Returns
        -------
        ndarray, shape (6, P, W), values in [-1, 1] (onset/active per role).
        """
        cfg = self.cfg
        steps = steps or cfg.sampling_steps
        w = cfg.guidance if guidance is None else guidance
        P, W = cond.shape[1], cond.shape[2]
        Wp = -(-W // self.quantum) * self.quantum
        c = np.zeros((cond.shape[0], P, Wp), np.float32)
        c[:, :, :W] = cond
        sched = make_sample_scheduler(cfg)
        sched.set_timesteps(steps)
        gen = torch.Generator().manual_seed(int(seed) & 0x7FFFFFFF)
        x = torch.randn((1, cfg.out_channels, P, Wp), generator=gen).to(self.device)
        ct = torch.from_numpy(c)[None].to(self.device)
        cu = ct.clone()
        cu[:, list(D.HARMONY_CH)] = 0.0
        both = torch.cat([ct, cu], 0)
        labels = torch.tensor([cls_label, 0], device=self.device)
        for t in sched.timesteps:
            if check is not None:
                check()
            if w == 1.0:
                out = self.unet(torch.cat([x, ct], 1), t, class_labels=labels[:1])
            else:
                inp = torch.cat([torch.cat([x, x], 0), both], 1)
                o = self.unet(inp, t, class_labels=labels)
                out = o[1:] + w * (o[:1] - o[1:])
            x = sched.step(out, t, x).prev_sample
        return x[0, :, :, :W].clamp(-1, 1).cpu().numpy()


#: notes per quarter note a model role plays at density 0 and at density 1 (linear in between)
ROLE_RATE = {"melody": (0.75, 2.75), "harmony": (0.5, 1.7), "bass": (0.4, 1.6)}


def pick_notes(onset: np.ndarray, active: np.ndarray, *, steps_per_beat: int, steps_per_bar: int,
               density: float, role: str, start: int = 0, floor: float = -0.2
               ) -> list[tuple[int, int, int, float]]:
    """Notes of one role from its continuous onset/active planes, at a chosen density.

    The sampler's planes hold a graded belief per pitch and step. Instead of a fixed threshold
    (which keeps nearly every step of an under-trained model), each bar keeps its
    ``ROLE_RATE[role]``-given number of onsets (``density`` 0 sparse .. 1 busy): the steps with the
    strongest onset belief, with a small bonus for downbeats and beats, and never a step whose
    belief is below ``floor``. At a kept step the melody and bass play the most likely pitch,
    the harmony its two (three when ``density`` > 0.6) most likely pitches. A note lasts until
    the role's next onset or until its pitch's active plane falls below zero (at least half
    a beat when the next onset is later).

    Parameters
    ----------
    onset, active : ndarray, shape (P, W), values in [-1, 1]
    steps_per_beat, steps_per_bar : int
    density : float
    role : str
        ``"melody"``, ``"harmony"`` or ``"bass"``.

    Returns
    -------
    list of (pitch, start, end, confidence)
    """
    P, W = onset.shape
    lo_r, hi_r = ROLE_RATE[role]
    d = float(np.clip(density, 0.0, 1.0))
    per_bar = max(1, int(round((lo_r + (hi_r - lo_r) * d) * steps_per_bar / 4)))  # rate per quarter note
    pos = (np.arange(W) + start) % steps_per_bar
    bonus = np.where(pos == 0, 0.25, np.where(pos % steps_per_beat == 0, 0.12,
                                              np.where(pos % max(1, steps_per_beat // 2) == 0, 0.04, 0.0)))
    strength = onset.max(axis=0) + bonus
    chosen: list[int] = []
    bar_of = (np.arange(W) + start) // steps_per_bar
    for b in np.unique(bar_of):
        idx = np.nonzero(bar_of == b)[0]
        ok = idx[onset[:, idx].max(axis=0) > floor]
        order = ok[np.argsort(-strength[ok], kind="stable")]
        chosen += sorted(int(t) for t in order[:per_bar])
    chosen.sort()
    voices = 1 if role != "harmony" else (3 if d > 0.6 else 2)
    min_len = max(1, steps_per_beat // 2)
    out: list[tuple[int, int, int, float]] = []
    for j, t in enumerate(chosen):
        nxt = chosen[j + 1] if j + 1 < len(chosen) else W
        score = onset[:, t] + 0.5 * active[:, t]
        for p in np.argsort(-score, kind="stable")[:voices]:
            if voices > 1 and onset[p, t] <= floor and p != int(np.argmax(score)):
                continue
            e = t + 1
            while e < nxt and (active[p, e] > 0 or e - t < min_len):
                e += 1
            out.append((int(p) + D.PITCH_LO, t + start, e + start, float(onset[p, t])))
    return out
