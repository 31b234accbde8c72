"""Train the piano-roll diffusion model from the music21 corpus (seeded, one command).

    python -m engines.generate.train                       # the shipped "default" model
    python -m engines.generate.train --steps 200 --out /tmp/m   # a quick smoke run

Builds (or reuses) the corpus cache (:func:`engines.generate.data.build_corpus`), trains on
the pieces that are not held out, and writes ``model.safetensors``, ``config.json`` and
``MODEL_CARD.md`` to ``--out`` (default ``resources/models/generate``). CPU only by default
(``torch.set_num_threads(2)``); the run is deterministic for a given seed and thread count.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from pathlib import Path

import numpy as np
import torch

from engines.generate import data as D
from engines.generate.model import ModelConfig, RollDiffusion, build_unet, make_train_scheduler

REPO = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO / "resources" / "models" / "generate"
# one thread: on a shared 2-core machine a second thread made each step several times slower
TRAIN_DEFAULTS = {"steps": 1000, "batch": 16, "lr": 2e-3, "seed": 1234, "p_drop": 0.15, "threads": 1}


def masked_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
    # note cells are rare: weigh them up so the model does not learn silence
    w = mask * (1.0 + 4.0 * (x0 > 0).float())
    return ((pred - target) ** 2 * w).sum() / w.sum().clamp_min(1.0)


def train(*, out: Path = DEFAULT_OUT, steps: int = TRAIN_DEFAULTS["steps"], batch: int = TRAIN_DEFAULTS["batch"],
          lr: float = TRAIN_DEFAULTS["lr"], seed: int = TRAIN_DEFAULTS["seed"], p_drop: float = TRAIN_DEFAULTS["p_drop"],
          threads: int = TRAIN_DEFAULTS["threads"], corpus: Path | None = None, cfg: ModelConfig | None = None,
          log_every: int = 100) -> dict:
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    corpus = Path(corpus or D.default_data_dir() / "corpus.npz")
    if not corpus.exists():
        D.build_corpus(corpus.parent)
    pieces = D.load_pieces(corpus)
    train_set = [p for p in pieces if not D.is_held_out(p.name)]
    held = [p for p in pieces if D.is_held_out(p.name)]
    cfg = cfg or ModelConfig()
    unet = build_unet(cfg)
    sched = make_train_scheduler(cfg)
    opt = torch.optim.AdamW(unet.parameters(), lr=lr, weight_decay=1e-4)
    lr_at = lambda i: lr * min(1.0, (i + 1) / 200) * (0.5 * (1 + math.cos(math.pi * i / steps)) * 0.95 + 0.05)  # noqa: E731
    n_params = sum(p.numel() for p in unet.parameters())
    print(f"{len(train_set)} training pieces, {len(held)} held out, {n_params / 1e6:.2f} M parameters")
    t0 = time.monotonic()
    hist = []
    unet.train()
    for i in range(steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(i)
        b = D.sample_batch(train_set, rng, batch, p_drop=p_drop)
        x0 = torch.from_numpy(b["x0"])
        noise = torch.randn_like(x0)
        t = torch.randint(0, cfg.num_train_timesteps, (batch,))
        xt = sched.add_noise(x0, noise, t)
        target = sched.get_velocity(x0, noise, t) if cfg.prediction_type == "v_prediction" else noise
        pred = unet(torch.cat([xt, torch.from_numpy(b["cond"])], 1), t,
                    class_labels=torch.from_numpy(b["cls"]))
        loss = masked_loss(pred, target, torch.from_numpy(b["loss_mask"]), x0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        opt.step()
        hist.append(float(loss.detach()))
        if (i + 1) % log_every == 0:
            print(f"step {i + 1}/{steps} loss {np.mean(hist[-log_every:]):.4f} "
                  f"{time.monotonic() - t0:.0f}s", flush=True)
    unet.eval()
    # held-out loss (fixed seed, fixed batches)
    vrng = np.random.default_rng(0)
    vl = []
    with torch.no_grad():
        for _ in range(8):
            b = D.sample_batch(held or train_set, vrng, 16, p_drop=0.0)
            x0 = torch.from_numpy(b["x0"])
            noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(len(vl)))
            t = torch.from_numpy(vrng.integers(0, cfg.num_train_timesteps, 16))
            xt = sched.add_noise(x0, noise, t)
            target = sched.get_velocity(x0, noise, t)
            pred = unet(torch.cat([xt, torch.from_numpy(b["cond"])], 1), t,
                        class_labels=torch.from_numpy(b["cls"]))
            vl.append(float(masked_loss(pred, target, torch.from_numpy(b["loss_mask"]), x0)))
    minutes = (time.monotonic() - t0) / 60
    model = RollDiffusion(unet, cfg, name="default")
    model.save(out)
    stats = {
        "train_pieces": len(train_set), "held_out_pieces": len(held), "parameters": n_params,
        "steps": steps, "batch": batch, "lr": lr, "seed": seed, "p_drop": p_drop, "threads": threads,
        "train_minutes": round(minutes, 1), "final_train_loss": round(float(np.mean(hist[-200:])), 4),
        "held_out_loss": round(float(np.mean(vl)), 4), "machine": f"{platform.machine()} {platform.processor()}",
        "torch": torch.__version__,
    }
    (Path(out) / "training.json").write_text(json.dumps(stats, indent=2) + "\n", "utf-8")
    write_model_card(Path(out), stats)
    print(json.dumps(stats, indent=2))
    return stats


def write_model_card(out: Path, stats: dict, metrics: dict | None = None) -> None:
    """(Re)write ``MODEL_CARD.md``; ``metrics`` (from ``bench/generate_eval.py``) adds the results."""
    metrics_path = out / "metrics.json"
    if metrics is None and metrics_path.exists():
        metrics = json.loads(metrics_path.read_text("utf-8"))
    lines = [
        "# Cue Studio generate model (piano-roll diffusion)",
        "",
        "**What it is.** A small `diffusers` `UNet2DModel` (v-prediction, DDIM sampling, classifier-free",
        "guidance) over a 3-role piano roll (melody / harmony / bass; onset + sustain planes; 64 pitches",
        "E1-G6; 16th-note grid), conditioned per step on chord tones, chord bass, key scale and tonic,",
        "beat / bar position and a texture class, plus *known-track planes* so the same network",
        "generates, arranges (inpaints missing tracks), regenerates one track and continues a piece.",
        "",
        "**What it is not.** It does not make drums, pop comping or bass grooves: those come from the",
        "rule-based style layer (`engines/generate/style.py`), see `docs/generate.md`.",
        "",
        "## Data",
        "",
        "The corpus bundled with music21 (no download): Bach chorales (`bach/bwv*.mxl`) and string",
        "quartet movements by Haydn, Mozart and Beethoven. Parts are assigned to roles by mean pitch",
        "(top = melody, inner = harmony, lowest = bass); harmony is analysed beat by beat with chord",
        "templates, the key with Krumhansl-Schmuckler. Every window is transposed at random (-6..+5",
        "semitones), so all keys are seen. Tracks (and time prefixes) are masked at random so the model",
        "learns arrangement and continuation; harmony planes and the class are dropped with p = "
        f"{stats.get('p_drop', 0.15)} for classifier-free guidance. 10 % of the pieces (by a hash of the",
        "file name, `data.is_held_out`) are held out for evaluation.",
        "",
        f"- training pieces: {stats.get('train_pieces')}, held out: {stats.get('held_out_pieces')}",
        f"- parameters: {stats.get('parameters', 0) / 1e6:.2f} M",
        "",
        "## Reproduce",
        "",
        "```",
        "nice -n 10 python -m engines.generate.train "
        f"--steps {stats.get('steps')} --batch {stats.get('batch')} --seed {stats.get('seed')}",
        "```",
        "",
        f"Training took {stats.get('train_minutes')} min on {stats.get('threads')} CPU threads "
        f"({stats.get('machine')}, torch {stats.get('torch')}); corpus parsing adds about 2 min the first time.",
        f"Final training loss {stats.get('final_train_loss')}, held-out loss {stats.get('held_out_loss')}.",
        "",
        "## Evaluation",
        "",
    ]
    if metrics:
        lines.append("From `python bench/generate_eval.py` (see `docs/generate.md` for the metric definitions):")
        lines.append("")
        lines.append("| metric | value |")
        lines.append("| --- | --- |")
        for k, v in metrics.items():
            if isinstance(v, (int, float)):
                lines.append(f"| {k} | {v:.3f} |" if isinstance(v, float) else f"| {k} | {v} |")
    else:
        lines.append("Run `python bench/generate_eval.py --update-card` to fill this section.")
    lines += ["", "## Licence of the data", "",
              "The music21 corpus files are public-domain scores distributed with music21 (BSD).", ""]
    (out / "MODEL_CARD.md").write_text("\n".join(lines), "utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    for k, v in TRAIN_DEFAULTS.items():
        ap.add_argument(f"--{k.replace('_', '-')}", type=type(v), default=v)
    ap.add_argument("--corpus", type=Path, default=None)
    a = ap.parse_args(argv)
    train(out=a.out, steps=a.steps, batch=a.batch, lr=a.lr, seed=a.seed, p_drop=a.p_drop, threads=a.threads,
          corpus=a.corpus)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
