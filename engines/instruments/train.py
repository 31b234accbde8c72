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

from engines.instruments.model import InstrumentModel, ModelConfig, MultiEncoder, save


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
                device: torch.device, log: list, lr: float = 2e-3, warm: int = 30, stage: str = "multi",
                seed_offset: int = 1) -> None:
    """The Multi-Instrument Encoder on real (waveform) mixtures of ``data``'s clips; also the
    short fine-tune after mel-cache training (``stage="multi-audio"``, no warm-up)."""
    single, enc = model.single.to(device).eval(), model.multi.to(device)
    torch.manual_seed(seed + seed_offset)
    rng = np.random.default_rng(seed + seed_offset)
    with torch.no_grad():
        mels = _logmels(single.frontend, data["waves"], device)
        targets = torch.cat([single.embed_features(mels[i:i + 128].float().to(device))
                             for i in range(0, len(mels), 128)])
    del mels
    pitch_all = torch.from_numpy(data["pitch"]).float().to(device)
    opt = torch.optim.AdamW(enc.parameters(), lr=lr, weight_decay=1e-4)
    t0 = time.time()
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = _lr(step, steps, lr, warm=warm)
        waves, members = sample_mixtures(rng, data, batch)
        enc.train()
        emb, logit, pitch = enc(torch.from_numpy(waves).to(device))
        loss, cos = hungarian_loss(emb, logit, pitch, [targets[torch.as_tensor(m)] for m in members],
                                   [pitch_all[torch.as_tensor(m)] for m in members])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 25 == 0 or step == steps - 1:
            row = {"stage": stage, "step": step, "loss": round(float(loss.detach()), 4), "matched_cos": round(cos, 4),
                   "seconds": round(time.time() - t0, 1)}
            log.append(row)
            print(json.dumps(row), flush=True)
    enc.eval()


# --------------------------------------------------------------------------- mel-cache training
# The same two stages on a cache of quantised mel power (engines.instruments.data.build_mel_cache):
# ~8 KB a clip, so a large set travels to a GPU machine. Mixtures are summed in the mel power
# domain; phase cross-terms of a real mix are ignored (finish with `--finetune-audio`).

def mel_input(q: torch.Tensor) -> torch.Tensor:
    """Quantised dB-below-peak (N, mels, frames) -> the model's log-mel input (N, 1, mels, frames),
    exactly what :class:`~engines.instruments.model.LogMel` gives for that clip alone."""
    return ((-q.float()).clamp_min(-80.0) / 40.0 + 1.0).unsqueeze(1)


def mel_mix(q: torch.Tensor, peak_db: torch.Tensor, idx: torch.Tensor, mask: torch.Tensor,
            gain_db: torch.Tensor) -> torch.Tensor:
    """Log-mel input of mixtures summed in the power domain.

    q (N, mels, frames) uint8, peak_db (N,), idx/mask/gain_db (B, K) -> (B, 1, mels, frames).
    """
    db = peak_db[idx][..., None, None] + gain_db[..., None, None] - q[idx].float()
    power = torch.where(mask[..., None, None], torch.pow(10.0, db / 10.0), torch.zeros((), device=q.device)).sum(1)
    out = 10 * torch.log10(power.clamp_min(1e-10))
    out = out - out.amax(dim=(1, 2), keepdim=True)
    return (out.clamp_min(-80.0) / 40.0 + 1.0).unsqueeze(1)


def _budget_steps(requested: int, step_fn, minutes: float | None, probe: int = 20) -> int:  # noqa: ANN001
    """Run ``probe`` warm-up steps and cap the step count to fit ``minutes``."""
    if not minutes:
        return requested
    for i in range(probe):
        step_fn(i, requested, warmup=True)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    t0 = time.time()
    for i in range(probe):
        step_fn(i, requested, warmup=True)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    per = (time.time() - t0) / probe
    return max(probe, min(requested, int(minutes * 60 / per)))


def train_single_mels(model: InstrumentModel, tr: dict, va: dict, *, steps: int, batch: int, seed: int,
                      device: torch.device, log: list, minutes: float | None = None) -> int:
    enc = model.single.to(device)
    torch.manual_seed(seed)
    gen = torch.Generator(device=device).manual_seed(seed)
    q = torch.from_numpy(tr["q"]).to(device)
    labels = torch.from_numpy(tr["labels"]).to(device)
    val_x = mel_input(torch.from_numpy(va["q"]).to(device))
    frames = q.shape[-1]
    crop = int(round(frames * 2 / 3))
    opt = torch.optim.AdamW(enc.parameters(), lr=3e-3, weight_decay=1e-4)
    s, m = 16.0, 0.2
    t0 = time.time()
    tilt_ramp = torch.linspace(-0.5, 0.5, q.shape[1], device=device)[None, :, None]
    best: tuple[float, dict | None] = (1.0, None)

    def step_fn(step: int, total: int, warmup: bool = False) -> torch.Tensor:
        for g in opt.param_groups:
            g["lr"] = _lr(step, total, 3e-3, warm=max(30, total // 50))
        idx = torch.randint(0, len(q), (batch,), device=device, generator=gen)
        off = int(torch.randint(0, frames - crop + 1, (1,), generator=gen, device=device))
        # a random spectral tilt of up to ±4 dB across the band (other recordings, other EQ),
        # then a light SpecAugment (one frequency band masked)
        tilt = (torch.rand(batch, 1, 1, generator=gen, device=device) * 8 - 4) * tilt_ramp
        x = mel_input((q[idx, :, off:off + crop].float() - tilt).clamp(0, 255))
        f0 = int(torch.randint(0, x.shape[2] - 6, (1,), generator=gen, device=device))
        x[:, :, f0:f0 + int(torch.randint(0, 6, (1,), generator=gen, device=device))] = 0.0
        enc.train()
        cos = enc.logits(enc.embed_features(x))
        y = labels[idx]
        loss = F.cross_entropy(s * (cos - m * F.one_hot(y, cos.shape[1])), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if not warmup:
            opt.step()
        return loss.detach()

    steps = _budget_steps(steps, step_fn, minutes)
    every = max(50, steps // 20)
    for step in range(steps):
        loss = step_fn(step, steps)
        if step % every == 0 or step == steps - 1:
            enc.eval()
            with torch.no_grad():
                ve = torch.cat([enc.embed_features(val_x[i:i + 256]) for i in range(0, len(val_x), 256)]).cpu().numpy()
            v = single_eer(ve, va["labels"])
            if v < best[0]:
                best = (v, {k: t.detach().clone() for k, t in enc.state_dict().items()})
            row = {"stage": "single", "step": step, "of": steps, "loss": round(float(loss), 4),
                   "val_eer": round(v, 4), "seconds": round(time.time() - t0, 1)}
            log.append(row)
            print(json.dumps(row), flush=True)
    if best[1] is not None:  # keep the checkpoint with the best validation EER (unseen instruments)
        enc.load_state_dict(best[1])
        log.append({"stage": "single", "kept_val_eer": round(best[0], 4)})
    enc.eval()
    return steps


def _sample_sets(gen: torch.Generator, by_label: list[torch.Tensor], n_labels: int, batch: int, kmax: int,
                 kmin: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    k = torch.randint(kmin, kmax + 1, (batch,), generator=gen, device=device)
    labs = torch.argsort(torch.rand(batch, n_labels, generator=gen, device=device), dim=1)[:, :kmax]
    counts = torch.tensor([len(b) for b in by_label], device=device)
    starts = torch.cumsum(counts, 0) - counts
    flat = torch.cat(by_label)
    pick = (torch.rand(batch, kmax, generator=gen, device=device) * counts[labs]).long()
    idx = flat[starts[labs] + pick]
    mask = torch.arange(kmax, device=device)[None, :] < k[:, None]
    return idx, mask


def _val_matched_cos(enc: MultiEncoder, x: torch.Tensor, t: torch.Tensor, mask: torch.Tensor) -> float:
    """Mean best-slot cosine of each present instrument (a greedy, order-free check)."""
    enc.eval()
    with torch.no_grad():
        emb = torch.cat([enc.embed_features(x[i:i + 256])[0] for i in range(0, len(x), 256)])
        sim = torch.einsum("bsd,bkd->bsk", emb, t).amax(dim=1)  # (B, K)
    return float(sim[mask].mean())


def train_multi_mels(model: InstrumentModel, tr: dict, *, steps: int, batch: int, seed: int,
                     device: torch.device, log: list, minutes: float | None = None,
                     va: dict | None = None) -> int:
    from scipy.optimize import linear_sum_assignment

    single, enc = model.single.to(device).eval(), model.multi.to(device)
    torch.manual_seed(seed + 1)
    gen = torch.Generator(device=device).manual_seed(seed + 1)
    q = torch.from_numpy(tr["q"]).to(device)
    peak = torch.from_numpy(tr["peak_db"]).to(device)
    with torch.no_grad():
        targets = torch.cat([single.embed_features(mel_input(q[i:i + 256])) for i in range(0, len(q), 256)])
    pitch_all = torch.from_numpy(tr["pitch"]).float().to(device)
    labels = tr["labels"]
    by_label = [torch.from_numpy(np.flatnonzero(labels == lab)).to(device) for lab in np.unique(labels)]
    kmax = 6
    opt = torch.optim.AdamW(enc.parameters(), lr=2e-3, weight_decay=1e-4)
    t0 = time.time()
    S = enc.cfg.slots

    def step_fn(step: int, total: int, warmup: bool = False) -> tuple[float, float]:
        for g in opt.param_groups:
            g["lr"] = _lr(step, total, 2e-3, warm=max(30, total // 50))
        idx, mask = _sample_sets(gen, by_label, len(by_label), batch, kmax, 2, device)
        gain = -12.0 * torch.rand(idx.shape, generator=gen, device=device)
        x = mel_mix(q, peak, idx, mask, gain)
        enc.train()
        emb, logit, pitch = enc.embed_features(x)
        t = targets[idx]  # (B, K, D)
        sim = torch.einsum("bsd,bkd->bsk", emb, t)  # (B, S, K)
        cost = (1 - sim.detach()).masked_fill(~mask[:, None, :], 1e3).cpu().numpy()
        kk = mask.sum(1).cpu().numpy()
        rows, cols, bidx = [], [], []
        for b in range(len(cost)):
            r, c = linear_sum_assignment(cost[b, :, : kk[b]])
            rows.append(r)
            cols.append(c)
            bidx.append(np.full(len(r), b))
        bb = torch.from_numpy(np.concatenate(bidx)).to(device)
        rr = torch.from_numpy(np.concatenate(rows)).to(device)
        cc = torch.from_numpy(np.concatenate(cols)).to(device)
        matched = sim[bb, rr, cc]
        # mean over each mixture's matched slots, then over the batch
        per_mix = torch.zeros(len(cost), device=device).index_add_(0, bb, 1 - matched) / torch.from_numpy(kk).to(device)
        present = torch.zeros(len(cost), S, device=device)
        present[bb, rr] = 1.0
        loss = per_mix.mean() + 0.5 * F.binary_cross_entropy_with_logits(logit, present)
        tp = pitch_all[idx][bb, cc]
        ok = ~torch.isnan(tp)
        if bool(ok.any()):
            loss = loss + 0.1 * ((pitch[bb, rr][ok] - tp[ok]).abs().mean() / 24.0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if not warmup:
            opt.step()
        return float(loss.detach()), float(matched.detach().mean())

    val = None
    if va is not None:  # fixed mixtures of the validation instruments (never trained on)
        vq = torch.from_numpy(va["q"]).to(device)
        vgen = torch.Generator(device=device).manual_seed(seed + 7)
        vby = [torch.from_numpy(np.flatnonzero(va["labels"] == lab)).to(device) for lab in np.unique(va["labels"])]
        vidx, vmask = _sample_sets(vgen, vby, len(vby), 512, kmax, 2, device)
        vgain = -12.0 * torch.rand(vidx.shape, generator=vgen, device=device)
        with torch.no_grad():
            vt = torch.cat([single.embed_features(mel_input(vq[i:i + 256])) for i in range(0, len(vq), 256)])
        val = (mel_mix(vq, torch.from_numpy(va["peak_db"]).to(device), vidx, vmask, vgain), vt[vidx], vmask)
    best: tuple[float, dict | None] = (-1.0, None)
    steps = _budget_steps(steps, step_fn, minutes)
    every = max(25, steps // 20)
    for step in range(steps):
        loss, cos = step_fn(step, steps)
        if step % every == 0 or step == steps - 1:
            row = {"stage": "multi", "step": step, "of": steps, "loss": round(loss, 4), "matched_cos": round(cos, 4),
                   "seconds": round(time.time() - t0, 1)}
            if val is not None:
                v = _val_matched_cos(enc, *val)
                row["val_matched_cos"] = round(v, 4)
                if v > best[0]:
                    best = (v, {k: t.detach().clone() for k, t in enc.state_dict().items()})
            log.append(row)
            print(json.dumps(row), flush=True)
    if best[1] is not None:
        enc.load_state_dict(best[1])
        log.append({"stage": "multi", "kept_val_matched_cos": round(best[0], 4)})
    enc.eval()
    return steps


def finetune_audio(folder: str | Path, audio_data: str | Path, *, steps: int, seed: int = 0,
                   batch: int = 32, threads: int = 2) -> Path:
    """Load the model in ``folder``, fine-tune its multi encoder on real audio mixtures, save in place."""
    from engines.instruments.model import load

    torch.set_num_threads(threads)
    folder = Path(folder)
    model = load(folder)
    tr = dict(np.load(Path(audio_data) / "train.npz"))
    log = json.loads((folder / "train_log.json").read_text()) if (folder / "train_log.json").is_file() else []
    t0 = time.time()
    train_multi(model, tr, steps=steps, batch=batch, seed=seed, device=_device(), log=log, lr=3e-4, warm=0,
                stage="multi-audio", seed_offset=2)
    model.cfg.extra.update({"finetune_audio_steps": steps, "finetune_audio_batch": batch,
                            "finetune_audio_minutes": round((time.time() - t0) / 60, 1)})
    save(model.cpu().eval(), folder)
    (folder / "train_log.json").write_text(json.dumps(log, indent=1) + "\n")
    return folder


def train_mels(data_dir: str | Path, out: str | Path, *, seed: int = 0, single_steps: int = 6000,
               multi_steps: int = 8000, batch: int = 256, channels: tuple[int, ...] = (32, 64, 128, 256),
               single_minutes: float | None = None, multi_minutes: float | None = None) -> Path:
    """Both stages from a mel cache (GPU when torch sees one). Step counts are capped to the
    minutes given (after timing 20 warm-up steps); the steps actually run go in config.json."""
    data_dir = Path(data_dir)
    tr = dict(np.load(data_dir / "train_mels.npz"))
    va = dict(np.load(data_dir / "val_mels.npz"))
    meta = json.loads((data_dir / "presets.json").read_text())
    device = _device()
    torch.manual_seed(seed)
    cfg = ModelConfig(n_classes=len(meta["train"]), single_channels=channels, multi_channels=channels)
    model = InstrumentModel(cfg)
    log: list[dict] = []
    t0 = time.time()
    s_steps = train_single_mels(model, tr, va, steps=single_steps, batch=batch, seed=seed, device=device,
                                log=log, minutes=single_minutes)
    m_steps = train_multi_mels(model, tr, steps=multi_steps, batch=batch, seed=seed, device=device, log=log,
                               minutes=multi_minutes, va=va)
    extra = {"seed": seed, "data": "mel cache (engines.instruments.data --mels)", "single_steps": s_steps,
             "multi_steps": m_steps, "batch": batch, "train_instruments": len(meta["train"]),
             "val_instruments": len(meta["val"]), "train_clips": int(len(tr["labels"])),
             "per_instrument": meta.get("per_instrument"), "soundfonts": sorted(meta["soundfonts"]),
             "train_minutes": round((time.time() - t0) / 60, 1), "device": device.type,
             "gpu": torch.cuda.get_device_name(0) if device.type == "cuda" else None}
    cfg.extra.update(extra)
    out = Path(out)
    save(model.cpu().eval(), out)
    (out / "train_log.json").write_text(json.dumps(log, indent=1) + "\n")
    return out


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
    ap.add_argument("--mels", action="store_true",
                    help="train from a mel cache (--data holds train_mels.npz; build it with "
                         "`python -m engines.instruments.data --mels`); for a GPU machine")
    ap.add_argument("--channels", default="16,32,64,128", help="conv channels of both encoders")
    ap.add_argument("--single-minutes", type=float, help="cap the single stage to this many minutes")
    ap.add_argument("--multi-minutes", type=float, help="cap the multi stage to this many minutes")
    ap.add_argument("--finetune-audio", type=int, default=0, metavar="STEPS",
                    help="then fine-tune the multi encoder on real audio mixtures from --audio-data")
    ap.add_argument("--audio-data", default="data/instruments")
    args = ap.parse_args(argv)
    if args.mels:
        channels = tuple(int(c) for c in args.channels.split(","))
        out = train_mels(args.data, args.out, seed=args.seed, single_steps=args.single_steps,
                         multi_steps=args.multi_steps, batch=args.batch, channels=channels,
                         single_minutes=args.single_minutes, multi_minutes=args.multi_minutes)
    elif args.finetune_audio:
        out = Path(args.out)
    else:
        out = train(args.data, args.out, seed=args.seed, single_steps=args.single_steps,
                    multi_steps=args.multi_steps, batch=args.batch)
    if args.finetune_audio:
        out = finetune_audio(out, args.audio_data, steps=args.finetune_audio, seed=args.seed)
    if not args.no_eval:
        from engines.instruments.eval import write_model_card

        write_model_card(out, seed=args.seed)


if __name__ == "__main__":
    main()
