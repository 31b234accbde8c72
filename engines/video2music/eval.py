"""Evaluation protocol (ViML / MVPt style own-soundtrack retrieval, plus steering and refinement).

``python -m bench.video2music_eval --work DIR`` runs it end to end:

1. Analyse the real Debian game-soundtrack tracks (:data:`data.MUSIC_DIRS`, first 45 s).
2. Split tracks: 100 held out for evaluation, the rest for training.
3. Build edited clips (:mod:`engines.video2music.data`): 3 per training track (MP4 with
   their own music → ``learn``), 1 per held-out track (footage seed differs).
4. Retrieval: each held-out clip against the 100 held-out tracks (full-track analysis):
   R@1/5/10 and median rank of its own track, per matcher, without and with text (a short
   description synthesised from the target track's analysis), and random chance.
5. Steering: attribute words vs the same query without words — fraction of clips whose
   top-10 moves toward the attribute (mean of the measured attribute, or tag share).
6. Refinement: after 'less drums', fraction of new top-5 tracks with lower onset density
   (the library's drum/busyness proxy) than the previous top-5's mean.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from engines.video2music.train import ranks_of, retrieval_stats

#: each track is analysed over its first this many seconds (library and clips alike)
ANALYSE_SECONDS = 45.0
COLLECTION_GENRE = {"wesnoth": "orchestral fantasy", "warzone2100": "electronic ambient",
                    "hedgewars": "soundtrack themed", "supertux2": "chiptune pop",
                    "widelands": "orchestral folk"}


def _analyse_one(path: str) -> dict[str, Any] | None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from engines.analysis.features import ANALYSIS_SR, analyze_audio
    from engines.media.audio import load_audio

    try:
        y = load_audio(path, sr=ANALYSIS_SR, end=ANALYSE_SECONDS)
    except Exception:
        return None
    if y.size < 20 * ANALYSIS_SR:
        return None
    return {"path": path, "features": analyze_audio(y, ANALYSIS_SR).to_dict()}


def analyse_tracks(paths: list[str], cache: Path, workers: int = 2) -> list[dict[str, Any]]:
    if cache.is_file():
        return json.loads(cache.read_text())
    with cf.ProcessPoolExecutor(workers) as ex:
        out = [r for r in ex.map(_analyse_one, paths, chunksize=4) if r is not None]
    cache.write_text(json.dumps(out))
    return out


def genre_of(path: str) -> str:
    for k, g in COLLECTION_GENRE.items():
        if f"/{k}/" in path:
            return g
    return ""


def pool_matrix(tracks: list[dict[str, Any]], embed: Any) -> Any:
    from engines.analysis.text import describe_track
    from engines.video2music.music import matrix_from_features

    meta = [{"title": Path(t["path"]).stem, "genre": genre_of(t["path"]), "path": t["path"],
             "album": Path(t["path"]).parent.name} for t in tracks]
    descs = [describe_track(t["features"], m) for t, m in zip(tracks, meta, strict=True)]
    for m, d in zip(meta, descs, strict=True):
        m["description"] = d
    return matrix_from_features([t["features"] for t in tracks], meta, embed(descs))


def score_matrix(videos: list[Any], lib: Any, matcher: Any, texts: list[str] | None) -> np.ndarray:
    from engines.video2music.engine import apply_turn, rank
    from engines.video2music.steer import parse_turn

    out = np.full((len(videos), len(lib)), -1e9)
    for qi, v in enumerate(videos):
        state: dict[str, Any] = {}
        text = texts[qi] if texts else ""
        if text:
            plain, _ = rank(v, {}, lib, matcher, top=5, text="")
            apply_turn(state, parse_turn(text), lib, [r["row"] for r in plain])
        rows, _ = rank(v, state, lib, matcher, top=len(lib), text=text, diversify=False)
        for r in rows:
            out[qi, r["row"]] = r["score"]
    return out


STEER_WORDS = [("slower", "tempo", -1), ("faster", "tempo", 1), ("calmer", "energy", -1),
               ("more energetic", "energy", 1), ("happier", "major", 1), ("sadder, minor key", "major", -1),
               ("brighter", "brightness", 1), ("darker", "brightness", -1), ("with drums", "density", 1),
               ("less drums", "density", -1), ("orchestral", "tag:orchestral", 1),
               ("electronic", "tag:electronic", 1), ("chiptune", "tag:chiptune", 1)]


def _attr(lib: Any, rows: list[int], attr: str) -> float:
    if attr.startswith("tag:"):
        w = attr[4:]
        return float(np.mean([w in lib.meta["genre"][i] for i in rows]))
    return float(np.mean(lib.scaled(attr)[rows]))


def steering_eval(videos: list[Any], lib: Any, matcher: Any) -> dict[str, float]:
    from engines.video2music.engine import apply_turn, rank
    from engines.video2music.steer import parse_turn

    out = {}
    base = [rank(v, {}, lib, matcher, top=10, text="", diversify=False)[0] for v in videos]
    for word, attr, sign in STEER_WORDS:
        moved = []
        for v, b in zip(videos, base, strict=True):
            rows0 = [r["row"] for r in b]
            st: dict[str, Any] = {}
            apply_turn(st, parse_turn(word), lib, rows0[:5])
            rows1 = [r["row"] for r in rank(v, st, lib, matcher, top=10, text=word, diversify=False)[0]]
            moved.append(sign * (_attr(lib, rows1, attr) - _attr(lib, rows0, attr)) > 1e-9)
        out[word] = float(np.mean(moved))
    return out


def refinement_eval(videos: list[Any], lib: Any, matcher: Any, text: str = "less drums") -> dict[str, float]:
    from engines.video2music.engine import apply_turn, rank
    from engines.video2music.steer import parse_turn

    fr, n_new = [], []
    dens = lib.scaled("density")
    for v in videos:
        prev = [r["row"] for r in rank(v, {}, lib, matcher, top=5, text="")[0]]
        st: dict[str, Any] = {"shown_ids": [int(lib.ids[i]) for i in prev]}
        apply_turn(st, parse_turn(text), lib, prev)
        new = [r["row"] for r in rank(v, st, lib, matcher, top=5, text=text)[0]]
        fresh = [i for i in new if i not in prev]
        n_new.append(len(fresh))
        ref = float(np.mean(dens[prev]))
        fr += [float(dens[i] < ref) for i in fresh]
    return {"fraction_satisfying": float(np.mean(fr)) if fr else float("nan"),
            "new_per_turn": float(np.mean(n_new)), "n_new": len(fr)}


def run(work: str, *, test_tracks: int = 100, clips_per_train_track: int = 3, seconds: float = 16.0,
        epochs: int = 300, seed: int = 0, log: Any = print) -> dict[str, Any]:
    import torch

    from engines.analysis.text import shared_embedder
    from engines.analysis.video import analyze_video
    from engines.core.home import DataHome
    from engines.video2music import data as D
    from engines.video2music.matchers import LearnedMatcher, ZeroShotMatcher
    from engines.video2music.model import load_model
    from engines.video2music.train import learn_from_folder, synth_texts

    torch.set_num_threads(2)
    W = Path(work)
    W.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    tracks = analyse_tracks(D.music_files(), W / "tracks.json")
    log(f"{len(tracks)} tracks analysed ({time.time() - t0:.0f} s)")
    by_path = {t["path"]: t for t in tracks}
    train_p, test_p = D.split_tracks(sorted(by_path), test=test_tracks, seed=seed)
    footage = D.Footage.load(seed=seed)
    if not (W / "train" / "clips.json").is_file():
        D.build_edited_set(W / "train", [by_path[p] for p in train_p], clips_per_track=clips_per_train_track,
                           seconds=seconds, seed=seed, footage=footage)
    if not (W / "test" / "clips.json").is_file():
        D.build_edited_set(W / "test", [by_path[p] for p in test_p], clips_per_track=1, seconds=seconds,
                           seed=seed + 1000, footage=footage)
    log(f"clips built ({time.time() - t0:.0f} s)")
    home = DataHome(W / "home")
    model_dir = W / "model"
    if not (model_dir / "model.safetensors").is_file():
        rep = learn_from_folder(home, str(W / "train"), epochs=epochs, seed=seed, out_dir=model_dir)
        log(rep["message"])
    t_train = time.time() - t0
    manifest = json.loads((W / "test" / "clips.json").read_text())
    videos = [analyze_video(W / "test" / e["clip"]) for e in manifest]
    emb = shared_embedder()
    test_tracks_l = [by_path[e["track_path"]] for e in manifest]
    lib = pool_matrix(test_tracks_l, lambda xs: emb.embed(xs))
    rng = np.random.default_rng(seed + 7)
    texts = [synth_texts(t["features"], rng, k=1)[0] for t in test_tracks_l]
    embed_one = emb.embed_one
    matchers = {"zero-shot": ZeroShotMatcher(embed=embed_one),
                "learned": LearnedMatcher(load_model(model_dir), embed=embed_one)}
    n = len(lib)
    res: dict[str, Any] = {"pool": n, "clips": len(videos),
                           "random": {"R@1": 1 / n, "R@5": 5 / n, "R@10": 10 / n, "median_rank": (n + 1) / 2}}
    for name, m in matchers.items():
        for with_text in (False, True):
            S = score_matrix(videos, lib, m, texts if with_text else None)
            res[f"{name}{' + text' if with_text else ''}"] = retrieval_stats(ranks_of(S))
            log(name, with_text, res[f"{name}{' + text' if with_text else ''}"])
    res["steering"] = {name: steering_eval(videos[:40], lib, m) for name, m in matchers.items()}
    res["refinement"] = {name: refinement_eval(videos[:40], lib, m) for name, m in matchers.items()}
    res["model_config"] = json.loads((model_dir / "config.json").read_text())
    res["seconds"] = round(time.time() - t0, 1)
    res["train_seconds"] = round(t_train, 1)
    (W / "results.json").write_text(json.dumps(res, indent=1))
    return res
