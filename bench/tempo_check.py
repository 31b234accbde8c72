"""Tempo estimates against warzone2100's ``album.json`` bpm values.

Caveat: the ``bpm`` field is unreliable as ground truth: most tracks say 80, which is the
game's default. Agreement is reported separately for the tracks whose value is not 80
(more likely set by hand) and for the 80s. A match is within 4 %; an estimate within 4 %
of half or double the listed value is counted as an octave error, not a match.
Tempo is estimated from the first 180 s of each track (the library analyses up to 600 s).

Usage: python -m bench.tempo_check [ALBUMS_DIR] [--json OUT]
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import glob
import json
import os
import sys
import time

ALBUMS = "/usr/share/games/warzone2100/music/albums"


def estimate(path: str) -> float:
    from engines.analysis.decode import load_mono
    from engines.analysis.features import ANALYSIS_SR, analyze_audio

    return analyze_audio(load_mono(path, sr=ANALYSIS_SR, max_duration=180.0), ANALYSIS_SR).tempo


def verdict(est: float, ref: float, tol: float = 0.04) -> str:
    if abs(est / ref - 1) <= tol:
        return "match"
    if any(abs(est / (ref * m) - 1) <= tol for m in (0.5, 2.0)):
        return "octave"
    return "miss"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("albums", nargs="?", default=ALBUMS)
    ap.add_argument("--json", dest="out")
    a = ap.parse_args()
    items = []
    for aj in sorted(glob.glob(os.path.join(a.albums, "*", "album.json"))):
        album = json.load(open(aj))
        for t in album.get("tracks", []):
            p = os.path.join(os.path.dirname(aj), t["filename"])
            if "bpm" in t and os.path.exists(p):
                items.append((p, float(t["bpm"])))
    from engines.library.scanner import _init_worker, mp_context

    with cf.ProcessPoolExecutor(os.cpu_count() or 1, mp_context=mp_context(), initializer=_init_worker) as pool:
        ests = list(pool.map(estimate, [p for p, _ in items]))
    rows = [{"file": os.path.relpath(p, a.albums), "listed_bpm": ref, "estimated_bpm": round(e, 1),
             "verdict": verdict(e, ref)} for (p, ref), e in zip(items, ests, strict=True)]
    out = {"date": time.strftime("%Y-%m-%d %H:%M"), "tracks": rows}
    for name, sel in (("non_80", [r for r in rows if r["listed_bpm"] != 80]),
                      ("listed_80", [r for r in rows if r["listed_bpm"] == 80])):
        out[name] = {k: sum(r["verdict"] == k for r in sel) for k in ("match", "octave", "miss")}
        out[name]["n"] = len(sel)
    for r in rows:
        print(f"{r['file']:<45} listed {r['listed_bpm']:>6.1f}  est {r['estimated_bpm']:>6.1f}  {r['verdict']}",
              file=sys.stderr)
    print(json.dumps({k: v for k, v in out.items() if k != "tracks"}, indent=2))
    if a.out:
        with open(a.out, "w") as fh:
            json.dump(out, fh, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
