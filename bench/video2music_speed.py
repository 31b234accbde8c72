"""Speed: a 60 s 1080p H.264 clip against a 10,000-track library (wall time, this machine).

    nice -n 10 python -m bench.video2music_speed --work /tmp/v2m_speed

The clip is generated (30 fps, shots of 0.5-2 s with distinct looks, x264 "veryfast" with
B-frames, as an NLE export would be); the library rows carry random but plausible analysis
(tempo, key, energy, beats, energy curves, 384-d embeddings) inserted through the catalog.
Reports the one-off library-matrix cache build, then a match split into video analysis and
ranking (the clip-analysis cache is cleared before each timed run).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from fractions import Fraction
from pathlib import Path

import numpy as np


def make_clip(path: Path, seconds: float = 60.0, fps: int = 30) -> Path:
    import av

    if path.is_file():
        return path
    rng = np.random.default_rng(0)
    out = av.open(str(path), "w")
    s = out.add_stream("libx264", rate=fps)
    s.width, s.height, s.pix_fmt = 1920, 1080, "yuv420p"
    s.options = {"preset": "veryfast", "crf": "26", "bf": "3"}
    yy, xx = np.mgrid[0:135, 0:240].astype(np.float32)
    t, k = 0.0, 0
    while t < seconds:
        shot = rng.uniform(0.5, 2.0)
        c1, c2 = rng.uniform(20, 235, 3), rng.uniform(20, 235, 3)
        base = (xx / 240)[..., None] * c1 + (1 - xx / 240)[..., None] * c2
        vx = rng.uniform(-4, 4)
        for _ in range(int(shot * fps)):
            img = base.copy()
            cx = (60 + vx * k) % 240
            img[((xx - cx) ** 2 + (yy - 67) ** 2) < 400] = 255 - c1
            big = np.repeat(np.repeat(img.astype(np.uint8), 8, 0), 8, 1)
            f = av.VideoFrame.from_ndarray(big, format="rgb24")
            f.pts, f.time_base = k, Fraction(1, fps)
            for p in s.encode(f):
                out.mux(p)
            k += 1
        t += shot
    for p in s.encode():
        out.mux(p)
    out.close()
    return path


def make_library(home, n: int = 10_000) -> None:  # noqa: ANN001
    from engines.library.catalog import Catalog

    rng = np.random.default_rng(1)
    with Catalog(home) as cat:
        if cat.count() >= n:
            return
        with cat.transaction() as con:
            now = time.time()
            for i in range(n):
                tempo = float(rng.uniform(60, 180))
                dur = float(rng.uniform(90, 300))
                beats = np.arange(rng.uniform(0, 0.5), dur, 60 / tempo).round(3).tolist()
                mode = "major" if rng.random() < 0.5 else "minor"
                f = {"duration": dur, "tempo": tempo, "beats": beats, "key": f"A {mode}", "mode": mode,
                     "energy": float(rng.uniform(0, 1)), "brightness": float(rng.uniform(600, 3500)),
                     "onset_density": float(rng.uniform(0.3, 6)), "loudness_db": float(rng.uniform(-30, -8)),
                     "energy_curve": rng.uniform(0, 1, int(dur)).round(3).tolist(),
                     "timbre": rng.normal(0, 1, 26).round(3).tolist(), "key_confidence": 0.5}
                e = rng.normal(0, 1, 384).astype(np.float32)
                e /= np.linalg.norm(e)
                con.execute(
                    "INSERT INTO tracks (path,size,mtime,content_hash,title,duration,tempo,key,mode,energy,"
                    "brightness,onset_density,loudness,features_json,description,embedding,added_at,updated_at) "
                    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (f"/synthetic/{i:05d}.ogg", 1, now, f"h{i}", f"track {i}", dur, tempo, f["key"], mode,
                     f["energy"], f["brightness"], f["onset_density"], f["loudness_db"],
                     json.dumps(f), "", e.tobytes(), now, now))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", default="/tmp/v2m_speed")
    ap.add_argument("--tracks", type=int, default=10_000)
    a = ap.parse_args()
    from engines.core.home import DataHome
    from engines.video2music import music
    from engines.video2music.engine import Engine, MatchRequest

    W = Path(a.work)
    W.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    clip = make_clip(W / "clip_1080p_60s.mp4")
    print(f"clip ready ({time.perf_counter() - t:.1f} s)")
    home = DataHome(W / "home")
    make_library(home, a.tracks)
    shutil.rmtree(home.cache / "video2music", ignore_errors=True)
    t = time.perf_counter()
    music.load_library(home)
    build = time.perf_counter() - t
    music._mem.clear()
    t = time.perf_counter()
    music.load_library(home)
    disk = time.perf_counter() - t
    print(f"library matrix: build {build:.2f} s (once per library change), load from cache {disk:.2f} s")
    eng = Engine(home, matcher="zero-shot")
    runs = []
    for _ in range(2):
        shutil.rmtree(home.cache / "video2music" / "clips", ignore_errors=True)
        t = time.perf_counter()
        r = eng.match(MatchRequest(video=str(clip), top=5))
        total = time.perf_counter() - t
        runs.append({**r.timings, "total_s": round(total, 3), "cuts": r.suggestions[0].cuts_total})
        print(json.dumps(runs[-1]))
    print(json.dumps({"cores": os.cpu_count(), "tracks": a.tracks, "build_s": round(build, 2),
                      "cache_load_s": round(disk, 2), "runs": runs}))


if __name__ == "__main__":
    main()
