"""Reproducible training of the instrument encoders (seeded, one command).

::

    nice -n 10 python -m engines.instruments.train --data data/instruments \\
        --out resources/models/instruments --seed 0

1. builds the data if ``--data`` is missing (:mod:`engines.instruments.data`);
2. trains the Single-Instrument Encoder (AM-softmax over the training instruments, random
   2 s crops of 3 s phrases);
3. embeds every training phrase with it and trains the Multi-Instrument Encoder on random
   mixtures of 2-6 training instruments with a permutation-invariant loss (Hungarian
   matching on cosine distance, scipy ``linear_sum_assignment``) plus a "present" logit per
   slot (BCE) and the register of each matched part (L1 on median MIDI pitch);
4. saves ``model.safetensors`` + ``config.json`` and runs :mod:`engines.instruments.eval` to
   write ``MODEL_CARD.md`` and ``metrics.json``.

Uses CUDA when torch sees one.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from engines.instruments.model import InstrumentModel, ModelConfig, save


def _device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _logmels(frontend: torch.nn.Module, waves: np.ndarray, device: torch.device, batch: int = 64) -> torch.Tensor:
    out = []
    with torch.no_grad():
        for i in range(0, len(waves), batch):
            y = torch.from_numpy(waves[i:i + batch].astype(np.float32)).to(device)
            out.append(frontend(y).half().cpu())
    return torch.cat(out)


def _lr(step: int, total: int, peak: float, warm: int = 30) -> float:
    if step < warm:
        return peak * (step + 1) / warm
    return peak * 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))


def eer(scores: np.ndarray, same: np.ndarray) -> float:
    """Equal error rate of verification scores (higher = same)."""
    order = np.argsort(-scores)
    same = same[order].astype(bool)
    pos, neg = max(1, same.sum()), max(1, (~same).sum())
    far = np.cumsum(~same) / neg  # accepted impostors
    frr = 1 - np.cumsum(same) / pos  # rejected genuine
    i = int(np.argmin(np.abs(far - frr)))
    return float((far[i] + frr[i]) / 2)


def single_eer(emb: np.ndarray, labels: np.ndarray) -> float:
    sims = emb @ emb.T
    iu = np.triu_indices(len(emb), k=1)
    return eer(sims[iu], (labels[:, None] == labels[None, :])[iu])


def train_single(model: InstrumentModel, data: dict, val: dict, *, steps: int, batch: int,
                 seed: int, device: torch.device, log: list) -> None:
    enc = model.single.to(device)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    mels = _logmels(enc.frontend, data["waves"], device)
    val_mels = _logmels(enc.frontend, val["waves"], device)
    labels = torch.from_numpy(data["labels"])
    frames = mels.shape[-1]
    crop = int(round(frames * 2 / 3))
    opt = torch.optim.AdamW(enc.parameters(), lr=3e-3, weight_decay=1e-4)
    s, m = 16.0, 0.2
    t0 = time.time()
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = _lr(step, steps, 3e-3)
        idx = torch.from_numpy(rng.integers(0, len(mels), batch))
        off = int(rng.integers(0, frames - crop + 1))
        x = mels[idx, :, :, off:off + crop].float().to(device)
        # frequency masking, a light SpecAugment
        f0 = int(rng.integers(0, x.shape[2] - 6))
        x[:, :, f0:f0 + int(rng.integers(0, 6))] = 0.0
        enc.train()
        emb = enc.embed_features(x)
        cos = enc.logits(emb)
        y = labels[idx].to(device)
        loss = F.cross_entropy(s * (cos - m * F.one_hot(y, cos.shape[1])), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 50 == 0 or step == steps - 1:
            enc.eval()
            with torch.no_grad():
                ve = torch.cat([enc.embed_features(val_mels[i:i + 128].float().to(device))
                                for i in range(0, len(val_mels), 128)]).cpu().numpy()
            v = single_eer(ve, val["labels"])
            row = {"stage": "single", "step": step, "loss": round(float(loss.detach()), 4), "val_eer": round(v, 4),
                   "seconds": round(time.time() - t0, 1)}
            log.append(row)
            print(json.dumps(row), flush=True)
    enc.eval()


def hungarian_loss(emb: torch.Tensor, logit: torch.Tensor, pitch: torch.Tensor,
                   targets: list[torch.Tensor], target_pitch: list[torch.Tensor]) -> tuple[torch.Tensor, float]:
    """Permutation-invariant loss of one batch; returns (loss, mean matched cosine)."""
    from scipy.optimize import linear_sum_assignment

    losses, present, cos_all = [], torch.zeros_like(logit), []
    pitch_losses = []
    for b, (t, tp) in enumerate(zip(targets, target_pitch, strict=True)):
        sim = emb[b] @ t.T  # (S, k)
        rows, cols = linear_sum_assignment((1 - sim).detach().cpu().numpy())
        r, c = torch.as_tensor(rows), torch.as_tensor(cols)
        matched = sim[r, c]
        losses.append((1 - matched).mean())
        cos_all.append(float(matched.detach().mean()))
        present[b, r] = 1.0
        ok = ~torch.isnan(tp[c])
        if ok.any():
            pitch_losses.append((pitch[b, r][ok] - tp[c][ok]).abs().mean() / 24.0)
    loss = torch.stack(losses).mean() + 0.5 * F.binary_cross_entropy_with_logits(logit, present)
    if pitch_losses:
        loss = loss + 0.1 * torch.stack(pitch_losses).mean()
    return loss, float(np.mean(cos_all))


def sample_mixtures(rng: np.random.Generator, data: dict, batch: int, *, kmin: int = 2, kmax: int = 6,
                    labels_allowed: np.ndarray | None = None) -> tuple[np.ndarray, list[np.ndarray]]:
    """Random mixtures: (batch, SEG) audio and, per mixture, the clip indices it holds."""
    from engines.instruments.data import mix

    by_label: dict[int, np.ndarray] = data.setdefault("_by_label", {})
    if not by_label:
        for lab in np.unique(data["labels"]):
            by_label[int(lab)] = np.flatnonzero(data["labels"] == lab)
    pool = np.array(sorted(by_label)) if labels_allowed is None else labels_allowed
    waves, members = [], []
    for _ in range(batch):
        k = int(rng.integers(kmin, kmax + 1))
        labs = rng.choice(pool, size=k, replace=False)
        clips = np.array([rng.choice(by_label[int(lab)]) for lab in labs])
        waves.append(mix(data["waves"][clips], rng))
        members.append(clips)
    return np.stack(waves).astype(np.float32), members


def train_multi(model: InstrumentModel, data: dict, *, steps: int, batch: int, seed: int,
                device: torch.device, log: list) -> None:
    single, enc = model.single.to(device).eval(), model.multi.to(device)
    torch.manual_seed(seed + 1)
    rng = np.random.default_rng(seed + 1)
    with torch.no_grad():
        mels = _logmels(single.frontend, data["waves"], device)
        targets = torch.cat([single.embed_features(mels[i:i + 128].float().to(device))
                             for i in range(0, len(mels), 128)])
    del mels
    pitch_all = torch.from_numpy(data["pitch"]).float().to(device)
    opt = torch.optim.AdamW(enc.parameters(), lr=2e-3, weight_decay=1e-4)
    t0 = time.time()
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = _lr(step, steps, 2e-3)
        waves, members = sample_mixtures(rng, data, batch)
        enc.train()
        emb, logit, pitch = enc(torch.from_numpy(waves).to(device))
        loss, cos = hungarian_loss(emb, logit, pitch, [targets[torch.as_tensor(m)] for m in members],
                                   [pitch_all[torch.as_tensor(m)] for m in members])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 25 == 0 or step == steps - 1:
            row = {"stage": "multi", "step": step, "loss": round(float(loss.detach()), 4), "matched_cos": round(cos, 4),
                   "seconds": round(time.time() - t0, 1)}
            log.append(row)
            print(json.dumps(row), flush=True)
    enc.eval()


def train(data_dir: str | Path, out: str | Path, *, seed: int = 0, single_steps: int = 250,
          multi_steps: int = 300, batch: int = 32, threads: int = 2) -> Path:
    from engines.instruments import data as D

    torch.set_num_threads(threads)
    data_dir = Path(data_dir)
    if not (data_dir / "train.npz").is_file():
        D.build(data_dir, seed=seed)
    tr = dict(np.load(data_dir / "train.npz"))
    va = dict(np.load(data_dir / "val.npz"))
    meta = json.loads((data_dir / "presets.json").read_text())
    torch.manual_seed(seed)
    cfg = ModelConfig(n_classes=len(meta["train"]), extra={
        "seed": seed, "single_steps": single_steps, "multi_steps": multi_steps, "batch": batch,
        "train_instruments": len(meta["train"]), "val_instruments": len(meta["val"]),
        "train_clips": int(len(tr["labels"])), "soundfonts": sorted(meta["soundfonts"]),
    })
    model = InstrumentModel(cfg)
    device = _device()
    log: list[dict] = []
    t0 = time.time()
    train_single(model, tr, va, steps=single_steps, batch=batch, seed=seed, device=device, log=log)
    train_multi(model, tr, steps=multi_steps, batch=batch, seed=seed, device=device, log=log)
    model = model.cpu().eval()
    cfg.extra["train_minutes"] = round((time.time() - t0) / 60, 1)
    cfg.extra["device"] = device.type
    out = Path(out)
    save(model, out)
    (out / "train_log.json").write_text(json.dumps(log, indent=1) + "\n")
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Train the instrument encoders and write the model card")
    ap.add_argument("--data", default="data/instruments")
    ap.add_argument("--out", default="resources/models/instruments")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--single-steps", type=int, default=250)
    ap.add_argument("--multi-steps", type=int, default=300)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--no-eval", action="store_true", help="skip the evaluation and model card")
    args = ap.parse_args(argv)
    out = train(args.data, args.out, seed=args.seed, single_steps=args.single_steps,
                multi_steps=args.multi_steps, batch=args.batch)
    if not args.no_eval:
        from engines.instruments.eval import write_model_card

        write_model_card(out, seed=args.seed)


if __name__ == "__main__":
    main()
