"""Search latency (p50 / p95) at 1k, 10k and 100k tracks.

Rows are synthetic (for scaling): attributes drawn at random, descriptions built by
``describe_track`` from them, embedded with the real MiniLM (2,000 distinct descriptions,
reused with a little noise and re-normalised), bulk-inserted into a real catalog. Each
query goes through ``LibrarySearcher.search`` as the app runs it: query embedding
(model already loaded), attribute parsing, scoring of every track, top-k, catalog rows.

Usage: python -m bench.search_latency [--sizes 1000 10000 100000] [--queries 200] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

QUERIES = ["slow calm piano", "fast energetic rock", "sad minor strings", "around 120 bpm electronic",
           "bright upbeat folk", "dark ambient", "90-110 bpm orchestral", "happy major dance",
           "sparse quiet guitar", "intense battle music"]
GENRES = ["orchestral", "rock", "electronic", "folk", "ambient", "chiptune", "jazz", "classical piano",
          "metal", "celtic"]


def build(home_root: str, n: int, vec_pool, descs) -> None:
    import numpy as np

    from engines.core.home import DataHome
    from engines.library.catalog import Catalog

    rng = np.random.default_rng(n)
    home = DataHome(home_root)
    with Catalog(home) as cat:
        con = cat.con
        con.execute("BEGIN")
        rows = []
        for i in range(n):
            j = int(rng.integers(len(descs)))
            d, feats, tags = descs[j]
            v = vec_pool[j] + rng.normal(0, 0.02, vec_pool.shape[1]).astype(np.float32)
            v /= np.linalg.norm(v)
            rows.append((f"/synthetic/{i:06d}.ogg", 1000 + i, 0.0, f"h{i}", tags["title"], "", "",
                         tags["genre"], 180.0, feats["tempo"], feats["key"], feats["mode"], feats["energy"],
                         feats["brightness"], feats["onset_density"], -14.0, "{}", d, v.tobytes(), 0,
                         time.time(), time.time()))
        con.executemany(
            "INSERT INTO tracks (path, size, mtime, content_hash, title, artist, album, genre, duration, "
            "tempo, key, mode, energy, brightness, onset_density, loudness, features_json, description, "
            "embedding, demo, added_at, updated_at) VALUES (" + ",".join("?" * 22) + ")", rows)
        con.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key='generation'")
        con.execute("COMMIT")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--json", dest="out")
    a = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import numpy as np

    from engines.analysis.text import TextEmbedder, describe_track
    from engines.core.home import DataHome
    from engines.library.search import LibrarySearcher

    emb = TextEmbedder()
    rng = np.random.default_rng(0)
    descs = []
    for i in range(2000):
        feats = {"tempo": float(rng.uniform(60, 180)), "energy": float(rng.uniform()),
                 "brightness": float(rng.uniform(500, 3500)), "onset_density": float(rng.uniform(0, 6)),
                 "mode": "minor" if rng.uniform() < 0.4 else "major"}
        feats["key"] = f"{['C', 'D', 'E', 'F', 'G', 'A', 'B'][i % 7]} {feats['mode']}"
        tags = {"title": f"Track {i}", "genre": GENRES[i % len(GENRES)]}
        descs.append((describe_track(feats, tags), feats, tags))
    t0 = time.perf_counter()
    vec_pool = emb.embed([d for d, _, _ in descs])
    print(f"embedded 2000 descriptions in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    results = {"date": time.strftime("%Y-%m-%d %H:%M"), "cores": os.cpu_count(), "sizes": {}}
    for n in a.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            build(tmp, n, vec_pool, descs)
            s = LibrarySearcher(DataHome(tmp), embedder=emb)
            s.search("warm up", top=10)  # builds the index and the caches
            setup = time.perf_counter() - t0
            lat, cpu = [], []
            for q in range(a.queries):
                text = QUERIES[q % len(QUERIES)] + ("" if q < len(QUERIES) else f" {q}")
                t, c = time.perf_counter(), time.process_time()
                s.search(text, top=10)
                lat.append((time.perf_counter() - t) * 1000)
                cpu.append((time.process_time() - c) * 1000)
            p50, p95 = np.percentile(lat, [50, 95])
            c50, c95 = np.percentile(cpu, [50, 95])
            # wall latency is what a user sees; CPU time (all threads) shows the work when the
            # machine is shared
            results["sizes"][str(n)] = {"p50_ms": round(float(p50), 2), "p95_ms": round(float(p95), 2),
                                        "cpu_p50_ms": round(float(c50), 2), "cpu_p95_ms": round(float(c95), 2),
                                        "setup_s": round(setup, 1)}
            print(f"{n:>7} tracks: p50 {p50:.1f} ms, p95 {p95:.1f} ms (setup {setup:.1f} s)", file=sys.stderr)
    # the query embedding alone, for reference
    lat = []
    for q in range(100):
        t = time.perf_counter()
        emb.embed_one(QUERIES[q % len(QUERIES)] + f" {q}")
        lat.append((time.perf_counter() - t) * 1000)
    results["embed_only_p50_ms"] = round(float(np.percentile(lat, 50)), 2)
    results["load_average"] = os.getloadavg()
    print(json.dumps(results, indent=2))
    if a.out:
        with open(a.out, "w") as fh:
            json.dump(results, fh, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
