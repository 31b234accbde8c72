"""Library indexing throughput on real tracks, against a naive librosa baseline.

Ours: ``engines.library.scanner.scan`` into a fresh data home (decode, one-STFT analysis in
one worker process per core, description, MiniLM embedding, SQLite commit, faiss index):
seconds of audio per wall-clock second, start-up included.

Naive: one file at a time in this process, librosa called per feature as a tutorial would
(librosa.load at its default 22.05 kHz, beat_track, chroma_cqt + Krumhansl key,
spectral_centroid, rms, mfcc), on an evenly spaced subset of the same tracks (the full
set would take tens of minutes); its throughput is audio seconds / wall seconds too.

Usage: python -m bench.library_index [DIR ...] [--limit N] [--naive N] [--json OUT]
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import tempfile
import time

DEFAULT_DIRS = [
    "/usr/share/games/wesnoth/1.16/data/core/music", "/usr/share/games/warzone2100/music/albums",
    "/usr/share/games/hedgewars/Data/Music", "/usr/share/games/supertux2/music",
    "/usr/share/games/widelands/data/music", "/tmp/extra_music/root/usr/share/games/etr/music",
    "/tmp/extra_music/root/usr/share/games/lincity-ng/music",
    "/tmp/extra_music/root/usr/share/games/pingus/data/music",
    "/tmp/extra_music/root/usr/share/freedroidrpg/data/sound/music",
    "/tmp/extra_music/root/usr/share/games/fretsonfire/data/songs",
]


def collect(dirs: list[str], limit: int) -> list[str]:
    from engines.library.scanner import audio_extensions

    exts = audio_extensions()
    out: list[str] = []
    for d in dirs:
        for f in sorted(glob.glob(os.path.join(d, "**", "*"), recursive=True)):
            if (os.path.splitext(f)[1].lower() in exts and os.path.getsize(f) > 100_000
                    and os.path.basename(f) not in ("guitar.ogg", "rhythm.ogg")):  # stems
                out.append(f)
    return out[:limit]


def naive_one(path: str) -> float:
    import librosa

    from engines.analysis.features import estimate_key

    y, sr = librosa.load(path)
    librosa.beat.beat_track(y=y, sr=sr)
    estimate_key(librosa.feature.chroma_cqt(y=y, sr=sr).mean(axis=1))
    librosa.feature.spectral_centroid(y=y, sr=sr)
    librosa.feature.rms(y=y)
    librosa.feature.mfcc(y=y, sr=sr, n_mfcc=13)
    return len(y) / sr


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("dirs", nargs="*")
    ap.add_argument("--limit", type=int, default=100000)
    ap.add_argument("--naive", type=int, default=16, help="tracks for the naive baseline")
    ap.add_argument("--json", dest="out")
    a = ap.parse_args()
    files = collect(a.dirs or DEFAULT_DIRS, a.limit)
    print(f"{len(files)} tracks", file=sys.stderr)

    from engines.core.home import DataHome
    from engines.core.jobs import JobContext
    from engines.library.catalog import Catalog
    from engines.library.index import load_index
    from engines.library.scanner import scan

    with tempfile.TemporaryDirectory() as tmp:
        links = os.path.join(tmp, "music")
        os.makedirs(links)
        for i, f in enumerate(files):  # one folder, so the scan walks exactly these files
            os.symlink(f, os.path.join(links, f"{i:04d}_{os.path.basename(f)}"))
        home = DataHome(os.path.join(tmp, "home"))
        main_cpu0 = time.process_time()
        t0 = time.perf_counter()
        with Catalog(home) as cat:
            rep = scan(JobContext(home=home), [links], catalog=cat)
            load_index(cat)
        wall = time.perf_counter() - t0
    main_cpu = time.process_time() - main_cpu0  # preload, embedding, SQLite, faiss (this process)
    ours = rep.audio_seconds / wall
    ours_cpu = rep.audio_seconds / (rep.analysis_cpu_seconds + main_cpu)  # per CPU-second
    print(f"ours: {rep.indexed} tracks, {rep.audio_seconds:.0f} s audio in {wall:.1f} s "
          f"= {ours:.1f} s/s ({len(rep.failed)} failed)", file=sys.stderr)

    step = max(1, len(files) // max(1, a.naive))
    subset = files[::step][: a.naive]
    naive_one(subset[0])  # pay librosa's import/JIT outside the timing, in its favour
    t0 = time.perf_counter()
    c0 = time.process_time()
    naive_audio = sum(naive_one(f) for f in subset)
    naive_wall = time.perf_counter() - t0
    naive_cpu = time.process_time() - c0
    naive = naive_audio / naive_wall
    print(f"naive: {len(subset)} tracks, {naive_audio:.0f} s audio in {naive_wall:.1f} s = {naive:.1f} s/s",
          file=sys.stderr)
    res = {"date": time.strftime("%Y-%m-%d %H:%M"), "cores": os.cpu_count(), "tracks": rep.indexed,
           "failed": rep.failed, "audio_seconds": round(rep.audio_seconds, 1), "wall_seconds": round(wall, 1),
           "ours_audio_s_per_s": round(ours, 1), "naive_tracks": len(subset),
           "naive_audio_seconds": round(naive_audio, 1), "naive_wall_seconds": round(naive_wall, 1),
           "naive_audio_s_per_s": round(naive, 1), "speedup": round(ours / naive, 2),
           # CPU-time view (the machine was shared when measured): audio s per CPU s;
           # "projected" assumes the 2 cores are ours (analysis is embarrassingly parallel)
           "ours_cpu_seconds": round(rep.analysis_cpu_seconds + main_cpu, 1),
           "ours_audio_s_per_cpu_s": round(ours_cpu, 1),
           "ours_projected_2core_audio_s_per_s": round(2 * ours_cpu, 1),
           "naive_cpu_seconds": round(naive_cpu, 1),
           "naive_audio_s_per_cpu_s": round(naive_audio / naive_cpu, 1),
           "speedup_cpu": round(ours_cpu / (naive_audio / naive_cpu), 2),
           "load_average": os.getloadavg()}
    print(json.dumps(res, indent=2))
    if a.out:
        with open(a.out, "w") as fh:
            json.dump(res, fh, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
