"""Evaluation protocol (Carvalho et al. 2023; Dorfer et al. 2018) on held-out pieces.

1. Snippet retrieval, audio→sheet and sheet→audio, over every (note position) pair of the
   held-out pieces (≥ 10,000 candidates): R@1, R@10, MRR, median rank. Conditions: training
   SoundFont family + training engraving style ("held-out pieces"), held-out SoundFont
   (sf_GMbank), held-out engraving style (Petaluma), both.
2. Piece identification with the held-out pieces as the library and ≤ 30-s queries: top-1 and
   top-5 for the image route (snippet voting) and the symbolic route (chroma/onset DTW), plus
   the share of correct top-1 answers whose bar is within one bar of the truth.
3. Alignment of whole held-out renderings (each with a tempo change): share of bar onsets
   within ±0.5 s, and share of bars whose middle is assigned the right bar.

    python -m engines.sheet.eval --data data/sheet --model default --json bench/out/sheet_eval.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from engines.sheet.align import subseq_costs
from engines.sheet.data import crop_audio, crop_sheet, load_split, sample_position, warp_time
from engines.sheet.engine import (
    SheetEngine,
    bar_at_time,
    image_points,
    symbolic_match,
    symbolic_points,
    vote,
)
from engines.sheet.features import CHROMA_FPS, SR, chroma_onset, synth_notes
from engines.sheet.pages import Strip


def _ranks(q: np.ndarray, c: np.ndarray, chunk: int = 1024) -> np.ndarray:
    """1-based rank of the matching candidate (same index) for each query."""
    ranks = np.empty(len(q), np.int64)
    for i in range(0, len(q), chunk):
        sims = q[i:i + chunk] @ c.T
        true = sims[np.arange(sims.shape[0]), np.arange(i, i + sims.shape[0])]
        ranks[i:i + chunk] = (sims > true[:, None]).sum(axis=1) + 1
    return ranks


def _metrics(ranks: np.ndarray) -> dict[str, float]:
    return {"R@1": round(float(np.mean(ranks <= 1)), 4), "R@10": round(float(np.mean(ranks <= 10)), 4),
            "MRR": round(float(np.mean(1.0 / ranks)), 4), "median_rank": float(np.median(ranks)),
            "candidates": int(len(ranks))}


def snippet_retrieval(engine: SheetEngine, recs: list[dict[str, np.ndarray]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    pairs = []
    for p, rec in enumerate(recs):
        anchors = rec["style0_anchors"]
        for i in range(len(anchors)):
            pairs.append((p, i))
    conditions = {"heldout_pieces": (0, 0), "heldout_soundfont": (1, 0), "heldout_style": (0, 1),
                  "heldout_soundfont_and_style": (1, 1)}
    for name, (r, s) in conditions.items():
        auds, shs = [], []
        for p, i in pairs:
            rec = recs[p]
            t, k, x = sample_position(rec[f"style{s}_anchors"], i, 0.5)
            auds.append(crop_audio(rec[f"render{r}_spec"].astype(np.float32),
                                   warp_time(rec[f"render{r}_warp"], t)))
            shs.append(crop_sheet(rec[f"style{s}_ink"], rec[f"style{s}_offsets"], k, x))
        a = engine.model.embed_audio(np.stack(auds))
        sh = engine.model.embed_sheet(np.stack(shs))
        out[name] = {"audio_to_sheet": _metrics(_ranks(a, sh)), "sheet_to_audio": _metrics(_ranks(sh, a))}
    return out


def _strips(rec: dict[str, np.ndarray], style: int = 0) -> list[Strip]:
    off = rec[f"style{style}_offsets"]
    bars = rec[f"style{style}_bars"]
    out = []
    for k in range(len(off) - 1):
        out.append(Strip(ink=rec[f"style{style}_ink"][:, off[k]:off[k + 1]], page=1, box=(0, 0, 1, 1),
                         bars=[(float(a), float(b), int(bar)) for kk, a, b, bar in bars if int(kk) == k]))
    return out


def _strip_bars(rec: dict[str, np.ndarray]) -> list[list[tuple[float, float, int]]]:
    return [s.bars for s in _strips(rec)]


def identification(engine: SheetEngine, recs: list[dict[str, np.ndarray]], *, query_s: float = 30.0,
                   seed: int = 0) -> dict[str, Any]:
    import faiss

    rng = np.random.default_rng(seed)
    embs, ids, metas = [], [], []
    feats = []
    for p, rec in enumerate(recs):
        e, m = engine.embed_windows(_strips(rec))
        embs.append(e)
        metas.append(m)
        ids.append(np.full(len(e), p))
        y = synth_notes([tuple(n) for n in rec["notes"]])
        feats.append(chroma_onset(y))
    feats_dec = np.concatenate([f[::2] for f in feats])
    dec_offs = np.cumsum([0] + [len(f[::2]) for f in feats])
    index = faiss.IndexFlatIP(embs[0].shape[1])
    index.add(np.concatenate(embs).astype(np.float32))
    labels_all = np.concatenate(ids)
    res: dict[str, Any] = {"library_pieces": len(recs), "query_seconds": query_s}
    timings = {"image": [], "symbolic": []}
    for r, rname in ((0, "train_soundfont"), (1, "heldout_soundfont")):
        hits = {"image": [], "symbolic": []}
        bar_ok = {"image": [], "symbolic": []}
        for p, rec in enumerate(recs):
            y = rec[f"render{r}_audio"].astype(np.float32) / 32767
            dur = len(y) / SR
            start = float(rng.uniform(0, max(0.0, dur - query_s))) if dur > query_s else 0.0
            q = y[int(start * SR):int((start + query_s) * SR)]
            # the true bar at the excerpt's start (inverse of the warp)
            w = rec[f"render{r}_warp"]
            score_ms = float(np.interp(start + 0.2, w[1], w[0]))
            true_bar = bar_at_time(rec["bar_onsets_ms"] / 1000.0, score_ms / 1000.0)
            # image route
            t0 = time.perf_counter()
            q_emb, q_times = engine.audio_snippets(q)
            sims, nn = index.search(q_emb.astype(np.float32), 20)
            votes = vote(labels_all[nn], sims)
            ranked = [k for k, _ in sorted(votes.items(), key=lambda kv: -kv[1])]
            if ranked and ranked[0] == p:
                pts = image_points(q_emb, q_times, embs[p], metas[p], _strip_bars(rec))
                bar_ok["image"].append(bool(pts) and abs(pts[0]["bar"] - true_bar) <= 1)
            timings["image"].append(time.perf_counter() - t0)
            hits["image"].append(ranked.index(p) + 1 if p in ranked else 10**6)
            # symbolic route
            t0 = time.perf_counter()
            qf = chroma_onset(q)
            costs = subseq_costs(qf[::2], feats_dec, dec_offs)
            order = np.argsort(costs)
            rank = int(np.flatnonzero(order == p)[0]) + 1
            hits["symbolic"].append(rank)
            if rank == 1:
                _, path = symbolic_match(qf, feats[p])
                bar = bar_at_time(rec["bar_onsets_ms"] / 1000.0, path[0, 1] / CHROMA_FPS)
                bar_ok["symbolic"].append(abs(bar - true_bar) <= 1)
            timings["symbolic"].append(time.perf_counter() - t0)
        res[rname] = {
            route: {"top1": round(float(np.mean(np.array(h) <= 1)), 4),
                    "top5": round(float(np.mean(np.array(h) <= 5)), 4),
                    "bar_within_1_of_correct_top1": round(float(np.mean(bar_ok[route])), 4)
                    if bar_ok[route] else None}
            for route, h in hits.items()}
    res["seconds_per_query"] = {k: round(float(np.mean(v)), 4) for k, v in timings.items()}
    return res


def alignment(engine: SheetEngine, recs: list[dict[str, np.ndarray]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for route in ("symbolic", "image"):
        within, right_bar, n_points_ok = [], [], []
        for rec in recs:
            y = rec["render0_audio"].astype(np.float32) / 32767
            w = rec["render0_warp"]
            onsets = rec["bar_onsets_ms"].astype(np.float64)
            truth = np.interp(onsets, w[0], w[1])
            if route == "symbolic":
                feats = chroma_onset(synth_notes([tuple(n) for n in rec["notes"]]))
                pts = symbolic_points(chroma_onset(y), feats, onsets / 1000.0, np.ones(len(onsets), np.int32))
            else:
                e, m = engine.embed_windows(_strips(rec))
                q_emb, q_times = engine.audio_snippets(y, hop_s=0.25)
                pts = image_points(q_emb, q_times, e, m, _strip_bars(rec), full=True)
            pred = {p["bar"]: p["time_s"] for p in pts}
            n_points_ok.append(len(pts) == len(onsets))
            for b, t in enumerate(truth, start=1):
                within.append(b in pred and abs(pred[b] - t) <= 0.5)
            # right bar at the middle of each bar
            times = np.array([p["time_s"] for p in pts]) if pts else np.zeros(0)
            bars = np.array([p["bar"] for p in pts]) if pts else np.zeros(0)
            ends = np.append(truth[1:], truth[-1] + 1.0)
            for b, (t0, t1) in enumerate(zip(truth, ends, strict=True), start=1):
                mid = 0.5 * (t0 + t1)
                k = np.searchsorted(times, mid, side="right") - 1
                right_bar.append(k >= 0 and int(bars[k]) == b)
        out[route] = {"onsets_within_0.5s": round(float(np.mean(within)), 4),
                      "right_bar_at_mid_bar": round(float(np.mean(right_bar)), 4),
                      "one_point_per_bar": round(float(np.mean(n_points_ok)), 4),
                      "pieces": len(recs), "bars": len(within)}
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Evaluate the sheet engine on held-out pieces")
    ap.add_argument("--data", default="data/sheet")
    ap.add_argument("--model", default="default")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--align-pieces", type=int, default=100)
    ap.add_argument("--parts", default="retrieval,identification,alignment",
                    help="comma-separated subset of retrieval, identification, alignment")
    ap.add_argument("--json", default="")
    ns = ap.parse_args(argv)
    parts = {p.strip() for p in ns.parts.split(",") if p.strip()}
    import torch

    torch.set_num_threads(2)
    engine = SheetEngine.from_pretrained(ns.model)
    recs = load_split(ns.data, "test", limit=ns.limit)
    t0 = time.time()
    report: dict[str, Any] = {"model": engine.name, "test_pieces": len(recs)}
    if "retrieval" in parts:
        report["snippet_retrieval"] = snippet_retrieval(engine, recs)
        print(json.dumps(report["snippet_retrieval"], indent=1), flush=True)
    if "identification" in parts:
        report["identification"] = identification(engine, recs)
        print(json.dumps(report["identification"], indent=1), flush=True)
    if "alignment" in parts:
        report["alignment"] = alignment(engine, recs[: ns.align_pieces])
        print(json.dumps(report["alignment"], indent=1), flush=True)
    report["seconds"] = round(time.time() - t0)
    if ns.json:
        Path(ns.json).parent.mkdir(parents=True, exist_ok=True)
        Path(ns.json).write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
