"""Train the audio/sheet snippet encoders contrastively (one command, seeded, time-bounded).

    nice -n 10 python -m engines.sheet.train --data data/sheet --minutes 25 \
        --out resources/models/sheet

Each batch draws random (piece, rendering, note position) triples from the training split
of :mod:`engines.sheet.data`: the audio snippet is 3 s of the rendering's spectrogram centred
at the warped time, the sheet snippet the 256-px staff window centred at the interpolated
note-head position. Augmentation (on top of the varied rendering/engraving): sheet x-scale
0.8–1.25, shifts, ink noise and contrast; audio time jitter, gain, noise, band masking.
Loss: symmetric InfoNCE with a learned temperature.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from engines.sheet.data import crop_audio, crop_sheet, load_split, sample_position, warp_time
from engines.sheet.model import ModelConfig, SnippetModel


class PairSampler:
    def __init__(self, recs: list[dict[str, np.ndarray]], *, seed: int, augment: bool = True) -> None:
        self.recs = recs
        self.rng = np.random.default_rng(seed)
        self.augment = augment
        self.renders = [sorted({k.split("_")[0] for k in r if k.startswith("render")}) for r in recs]

    def pair(self) -> tuple[np.ndarray, np.ndarray, int]:
        rng = self.rng
        p = int(rng.integers(len(self.recs)))
        rec = self.recs[p]
        anchors = rec["style0_anchors"]
        i = int(rng.integers(len(anchors)))
        t, k, x = sample_position(anchors, i, float(rng.random()))
        r = self.renders[p][int(rng.integers(len(self.renders[p])))]
        a_s = warp_time(rec[f"{r}_warp"], t)
        spec = rec[f"{r}_spec"]
        if self.augment:
            a_s += rng.normal(0, 0.08)
            aud = crop_audio(spec, a_s).astype(np.float32)
            aud = aud + rng.normal(0, rng.uniform(0, 0.15), aud.shape).astype(np.float32)
            aud *= rng.uniform(0.8, 1.2)
            if rng.random() < 0.3:
                b = int(rng.integers(0, aud.shape[1] - 4))
                aud[:, b:b + int(rng.integers(1, 4))] = 0
            sh = crop_sheet(rec["style0_ink"], rec["style0_offsets"], k, x + rng.normal(0, 6),
                            scale=float(np.exp(rng.uniform(np.log(0.8), np.log(1.25)))),
                            dy=int(rng.integers(-2, 3)))
            sh = sh.astype(np.float32) * rng.uniform(0.7, 1.0)
            sh += rng.normal(0, rng.uniform(0, 12), sh.shape)
            sh = np.clip(sh, 0, 255).astype(np.uint8)
        else:
            aud = crop_audio(spec, a_s)
            sh = crop_sheet(rec["style0_ink"], rec["style0_offsets"], k, x)
        return aud, sh, p

    def batch(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        auds, shs, seen = [], [], set()
        while len(auds) < n:
            a, s, p = self.pair()
            key = (p, int(self.rng.integers(4)))  # at most a few pairs per piece in a batch
            if key in seen and len(seen) < len(self.recs):
                continue
            seen.add(key)
            auds.append(a)
            shs.append(s)
        return np.stack(auds), np.stack(shs)


def train(data: str, out: str, *, minutes: float, batch: int = 128, lr: float = 2e-3, seed: int = 0,
          limit: int | None = None, threads: int = 2, reload_every: int = 0) -> dict:
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    recs = load_split(data, "train", limit=limit)
    if not recs:
        raise SystemExit(f"no training data in {data}/train: run python -m engines.sheet.data first")
    cfg = ModelConfig(name="sheet-v1")
    model = SnippetModel(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sampler = PairSampler(recs, seed=seed)
    t0 = time.time()
    budget = minutes * 60
    step, losses, log = 0, [], []
    model.train()
    while time.time() - t0 < budget:
        frac = (time.time() - t0) / budget
        for g in opt.param_groups:
            g["lr"] = lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * frac))) * min(1.0, (step + 1) / 100)
        if reload_every and step and step % reload_every == 0:
            fresh = load_split(data, "train", limit=limit)
            if len(fresh) > len(recs):  # the data build is still running: use what it added
                recs = fresh
                sampler = PairSampler(recs, seed=seed + step)
        a, s = sampler.batch(batch)
        xa = torch.from_numpy(a).transpose(1, 2)
        from engines.sheet.model import audio_norm

        ea = model.audio(audio_norm(xa))
        es = model.sheet(torch.from_numpy(s).float() / 255.0)
        loss = model.loss(ea, es)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        step += 1
        if step % 50 == 0:
            entry = {"step": step, "s": round(time.time() - t0), "pieces": len(recs), "loss": round(float(np.mean(losses[-50:])), 4),
                     "temp": round(float(1 / model.logit_scale.exp()), 4)}
            log.append(entry)
            print(json.dumps(entry), flush=True)
    model.eval()
    model.save(out)
    info = {"steps": step, "seconds": round(time.time() - t0), "batch": batch, "lr": lr, "seed": seed,
            "train_pieces": len(recs), "final_loss": log[-1]["loss"] if log else None}
    Path(out, "train_log.json").write_text(json.dumps({"info": info, "log": log}, indent=1) + "\n")
    return info


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Train the sheet snippet encoders")
    ap.add_argument("--data", default="data/sheet")
    ap.add_argument("--out", default="resources/models/sheet")
    ap.add_argument("--minutes", type=float, default=25)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reload-every", type=int, default=0,
                    help="reload the training split every N steps (while the data build still runs)")
    ns = ap.parse_args(argv)
    print(train(ns.data, ns.out, minutes=ns.minutes, batch=ns.batch, lr=ns.lr, seed=ns.seed, limit=ns.limit,
                threads=ns.threads, reload_every=ns.reload_every))


if __name__ == "__main__":
    main()
