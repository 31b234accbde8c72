"""Train the learned matcher (seeded, one command): ``studio video learn FOLDER``.

Every video in FOLDER that carries sound is one training pair: its picture and its own
soundtrack (demuxed and analysed exactly like a library track). Text for each pair is
synthesised from the soundtrack's analysis (tempo, energy, mode, brightness, density
words: the stand-in for ViML's tagger/LLM-written descriptions) and dropped at random
(p = 0.5) so the model serves video-only queries too. Loss: symmetric InfoNCE.

A held-out 20 % of the pairs (split by soundtrack file when a ``clips.json`` manifest
names one, so no held-out music is seen in training) decides whether the model becomes
the default: it must beat the zero-shot matcher there (lower median rank, R@5 not lower).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from engines.core.errors import InputError
from engines.core.home import DataHome
from engines.core.jobs import JobContext

VIDEO_EXT = (".mp4", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".m4v", ".ogv")


def synth_texts(f: dict[str, Any], rng: np.random.Generator, k: int = 4) -> list[str]:
    """``k`` short descriptions of a track from its analysis (random attribute subsets)."""
    from engines.analysis.text import brightness_word, density_word, energy_word, tempo_word

    words = [tempo_word(float(f.get("tempo") or 0)), energy_word(float(f.get("energy") or 0)),
             "happy, major key" if f.get("mode") == "major" else "sad, minor key",
             brightness_word(float(f.get("brightness") or 0)), density_word(float(f.get("onset_density") or 0))]
    out = []
    for _ in range(k):
        n = int(rng.integers(1, 4))
        pick = rng.choice(len(words), size=n, replace=False)
        out.append(", ".join(words[i] for i in sorted(pick)))
    return out


def train_model(V: np.ndarray, M: np.ndarray, ME: np.ndarray, T: np.ndarray, *, epochs: int = 300,
                seed: int = 0, text_dropout: float = 0.5, lr: float = 3e-3, ctx: JobContext | None = None) -> Any:
    """V (n, VIDEO_DIM), M (n, MUSIC_DIM), ME (n, 384) music description embeddings,
    T (n, k, 384) synthesised query texts. Returns a trained :class:`TrimodalModel`."""
    import torch

    from engines.video2music.model import TrimodalModel

    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    model = TrimodalModel()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-3)
    Vt, Mt, MEt, Tt = (torch.from_numpy(np.asarray(a, np.float32)) for a in (V, M, ME, T))
    n = Vt.shape[0]
    bs = min(128, n)
    for ep in range(epochs):
        perm = torch.randperm(n, generator=g)
        for s in range(0, n - 1, bs):
            idx = perm[s:s + bs]
            if idx.numel() < 2:
                continue
            v = Vt[idx] + 0.03 * torch.randn(idx.numel(), Vt.shape[1], generator=g)
            pick = torch.randint(0, Tt.shape[1], (idx.numel(),), generator=g)
            t = Tt[idx, pick]
            keep = (torch.rand(idx.numel(), 1, generator=g) > text_dropout).float()
            q = model.query(v, t * keep)
            k = model.key(Mt[idx], MEt[idx])
            logits = q @ k.T * model.log_temp.exp().clamp(max=100)
            y = torch.arange(idx.numel())
            loss = 0.5 * (torch.nn.functional.cross_entropy(logits, y)
                          + torch.nn.functional.cross_entropy(logits.T, y))
            opt.zero_grad()
            loss.backward()
            opt.step()
        if ctx is not None:
            ctx.check()
            ctx.progress(0.5 + 0.4 * (ep + 1) / epochs, f"training: epoch {ep + 1}/{epochs}, loss {loss.item():.3f}")
    model.eval()
    return model


def ranks_of(scores: np.ndarray) -> np.ndarray:
    """Rank (1 = best) of the diagonal in each row of a (queries, candidates) score matrix."""
    diag = scores[np.arange(scores.shape[0]), np.arange(scores.shape[0])]
    return 1 + (scores > diag[:, None]).sum(axis=1)


def retrieval_stats(r: np.ndarray) -> dict[str, float]:
    return {"R@1": float(np.mean(r <= 1)), "R@5": float(np.mean(r <= 5)), "R@10": float(np.mean(r <= 10)),
            "median_rank": float(np.median(r)), "n": int(r.size)}


def load_pairs(folder: str | os.PathLike[str], *, ctx: JobContext | None = None) -> list[dict[str, Any]]:
    """Analyse every video with sound in ``folder``: picture features and soundtrack features."""
    from engines.analysis.features import ANALYSIS_SR, analyze_audio
    from engines.analysis.video import analyze_video
    from engines.core.errors import EngineError
    from engines.media.audio import load_audio

    root = Path(folder).expanduser()
    if not root.is_dir():
        raise InputError("not a folder of videos", path=root)
    manifest: dict[str, str] = {}
    if (root / "clips.json").is_file():
        manifest = {e["clip"]: e.get("track_path", "") for e in json.loads((root / "clips.json").read_text())}
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in VIDEO_EXT)
    pairs = []
    for i, p in enumerate(files):
        try:
            v = analyze_video(p)
            y = load_audio(p, sr=ANALYSIS_SR)
        except EngineError:
            continue  # no sound, or unreadable: not a training pair
        if y.size < ANALYSIS_SR or float(np.abs(y).max()) < 1e-4:
            continue
        pairs.append({"clip": str(p), "video": v.to_dict(), "music": analyze_audio(y, ANALYSIS_SR).to_dict(),
                      "group": manifest.get(p.name, str(p))})
        if ctx is not None:
            ctx.check()
            ctx.progress(0.5 * (i + 1) / max(len(files), 1), f"analysed {p.name}")
    return pairs


def pair_arrays(pairs: list[dict[str, Any]], *, seed: int = 0, embed: Any = None) -> dict[str, Any]:
    from engines.analysis.text import describe_track
    from engines.analysis.video import VideoFeatures
    from engines.video2music.model import music_matrix, video_vector
    from engines.video2music.music import matrix_from_features

    rng = np.random.default_rng(seed)
    feats = [p["music"] for p in pairs]
    descs = [describe_track(f) for f in feats]
    texts = [synth_texts(f, rng) for f in feats]
    if embed is not None:
        ME = embed(descs)
        flat = embed([t for ts in texts for t in ts])
        T = flat.reshape(len(pairs), -1, flat.shape[-1])
    else:
        ME = np.zeros((len(pairs), 384), np.float32)
        T = np.zeros((len(pairs), 4, 384), np.float32)
    lib = matrix_from_features(feats, [{"title": os.path.basename(p["clip"]), "description": d}
                                       for p, d in zip(pairs, descs, strict=True)], ME)
    videos = [VideoFeatures.from_dict(p["video"]) for p in pairs]
    V = np.stack([video_vector(v) for v in videos])
    return {"V": V, "M": music_matrix(lib), "ME": ME, "T": T, "lib": lib, "videos": videos,
            "texts": texts}


def zero_shot_scores(videos: list[Any], lib: Any) -> np.ndarray:
    """(queries, candidates) zero-shot scores including beat/cut sync and energy-curve fit."""
    from engines.video2music.engine import rank
    from engines.video2music.matchers import ZeroShotMatcher

    zs = ZeroShotMatcher()
    out = np.full((len(videos), len(lib)), -1e9)
    for qi, v in enumerate(videos):
        rows, _ = rank(v, {}, lib, zs, top=len(lib), diversify=False)
        for r in rows:
            out[qi, r["row"]] = r["score"]
    return out


def learn_from_folder(home: DataHome, folder: str, *, epochs: int = 300, seed: int = 0,
                      ctx: JobContext | None = None, out_dir: Path | None = None) -> dict[str, Any]:
    """Train from a folder of videos with music; save to ``<home>/models/video2music``."""
    import torch

    from engines.analysis.text import shared_embedder
    from engines.video2music.model import TrimodalModel, save_model

    t0 = time.time()
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    pairs = load_pairs(folder, ctx=ctx)
    if len(pairs) < 8:
        raise InputError(f"found {len(pairs)} video(s) with sound; at least 8 are needed to learn",
                         path=folder)
    emb = shared_embedder()
    A = pair_arrays(pairs, seed=seed, embed=lambda xs: emb.embed(xs))
    groups = sorted({p["group"] for p in pairs})
    rng = np.random.default_rng(seed)
    held_groups = set(rng.permutation(groups)[: max(2, len(groups) // 5)].tolist())
    test = np.array([p["group"] in held_groups for p in pairs])
    tr = ~test
    model = train_model(A["V"][tr], A["M"][tr], A["ME"][tr], A["T"][tr], epochs=epochs, seed=seed, ctx=ctx)
    # held-out comparison, video only (one candidate per held-out soundtrack)
    ti = np.flatnonzero(test)
    with torch.no_grad():
        q = model.query(torch.from_numpy(A["V"][ti]), None).numpy()
        k = model.key(torch.from_numpy(A["M"][ti]), torch.from_numpy(A["ME"][ti])).numpy()
    learned = retrieval_stats(ranks_of(q @ k.T))
    from engines.video2music.music import matrix_from_features

    sub = matrix_from_features([pairs[i]["music"] for i in ti], [{} for _ in ti], A["ME"][ti])
    zero = retrieval_stats(ranks_of(zero_shot_scores([A["videos"][i] for i in ti], sub)))
    better = learned["median_rank"] < zero["median_rank"] and learned["R@5"] >= zero["R@5"]
    dest = out_dir or (home.models / "video2music")
    assert isinstance(model, TrimodalModel)
    save_model(model, dest, extra={"default": bool(better), "trained_pairs": int(tr.sum()),
                                   "held_out_pairs": int(test.sum()), "held_out_learned": learned,
                                   "held_out_zero_shot": zero, "epochs": epochs, "seed": seed,
                                   "seconds": round(time.time() - t0, 1)})
    msg = (f"trained on {int(tr.sum())} clips; held-out ({int(test.sum())}) median rank "
           f"learned {learned['median_rank']:.1f} vs zero-shot {zero['median_rank']:.1f}: "
           + ("the learned model is now the default" if better else "zero-shot stays the default"))
    if ctx is not None:
        ctx.progress(1.0, msg)
    return {"model_dir": str(dest), "default": bool(better), "learned": learned, "zero_shot": zero,
            "pairs": len(pairs), "message": msg}
