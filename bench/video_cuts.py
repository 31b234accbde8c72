"""Cut detection against the edit cuts of the held-out video-to-music clips.

    nice -n 10 python bench/video_cuts.py --work /tmp/v2m_eval   # after bench.video2music_eval built the clips

Each clip of ``WORK/test`` was cut by ``engines.video2music.data.edit_to_music`` at known times
(``clips.json``). A detected cut within 0.1 s of an edit cut is a hit. The source footage has
cuts of its own (game intros), which the edit list does not know: "false" cuts are an upper bound.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engines.analysis.video import analyze_video  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path("/tmp/v2m_eval"))
    ap.add_argument("--tolerance", type=float, default=0.1)
    a = ap.parse_args(argv)
    meta = json.loads((a.work / "test" / "clips.json").read_text("utf-8"))
    tp = fp = fn = 0
    for m in meta:
        det = list(analyze_video(a.work / "test" / m["clip"]).cuts)
        used: set[int] = set()
        for c in m["cuts"]:
            j = next((k for k, d in enumerate(det) if k not in used and abs(d - c) <= a.tolerance), None)
            if j is None:
                fn += 1
            else:
                used.add(j)
                tp += 1
        fp += len(det) - len(used)
    print(json.dumps({"clips": len(meta), "edit_cuts": tp + fn, "detected": tp + fp, "hits": tp,
                      "not_in_edit_list": fp, "missed": fn, "precision_lower_bound": round(tp / max(tp + fp, 1), 3),
                      "recall": round(tp / max(tp + fn, 1), 3)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
