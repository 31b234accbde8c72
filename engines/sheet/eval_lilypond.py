"""Held-out engraving style: snippet retrieval on the LilyPond documentation's snippets.

The LilyPond docs ship each example as source (``lily-*.ly``) and the PNG LilyPond engraved
from it. The sheet model never saw LilyPond engraving (it trains on verovio only). Here:

1. every ``.ly`` is read by :mod:`engines.sheet.lilypond`; snippets outside its subset are
   skipped and counted by reason; kept: at least ``min_notes`` sounding notes, one staff, one
   system in the PNG, and a note sequence not seen before (the docs repeat examples across
   translations);
2. the PNG's staff is found by horizontal projection (five evenly spaced dark rows), cut and
   scaled like verovio strips (staff height :data:`~engines.sheet.pages.STAFF_PX` px, 64 rows);
3. note x positions are *estimated* (LilyPond's positions are not in the PNG): the clef /
   key / time-signature header width is estimated from the key and the ``notime`` option, and
   the rest of the staff is shared among notes and rests in proportion to LilyPond's duration
   spacing (``2 + 1.2·log2(d / shortest)`` staff spaces);
4. the notes are rendered at 120 quarter notes a minute times a duration factor 0.8–1.25 with
   a tempo change (as the verovio test renderings) with the held-out SoundFont and with FluidR3;
5. one snippet pair per note (midpoint to the next note, as :func:`engines.sheet.eval.snippet_retrieval`)
   and retrieval both ways among all LilyPond pairs, then again with the verovio held-out
   pairs (Petaluma + held-out SoundFont) added as distractors to reach ``min_candidates``.

Pure evaluation: nothing here trains.
"""

from __future__ import annotations

import argparse
import collections
import glob
import json
import math
import re
import time
from pathlib import Path
from typing import Any

import numpy as np

from engines.sheet.data import (
    HELDOUT_SOUNDFONT,
    SF_DIR,
    crop_audio,
    crop_sheet,
    load_split,
    make_warp,
    render_audio,
    sample_position,
    warp_time,
)
from engines.sheet.eval import _metrics, _ranks
from engines.sheet.lilypond import LilyPondError, Snippet, parse_file
from engines.sheet.pages import STAFF_PX, _cut

DOC_DIR = "/usr/share/doc/lilypond/html/Documentation"
TRAIN_FAMILY_SOUNDFONT = f"{SF_DIR}/FluidR3_GM.sf2"
BPM = 120.0


def find_staves(ink: np.ndarray) -> list[tuple[float, float, float, float]]:
    """Five-line staves of an anti-aliased PNG: ``(x0, ytop, x1, ybot)`` top to bottom.

    Rows darker than half the widest dark row run are line candidates (LilyPond's PNGs are
    cropped to the music, so staff lines span most of the width); runs of adjacent rows are
    one line; five lines with near-equal gaps make a staff.
    """
    dark = ink > 90
    if dark.size == 0:
        return []
    row = dark.mean(axis=1)
    if row.max() <= 0:
        return []
    cand = np.flatnonzero(row > max(0.3, 0.6 * float(row.max())))
    if cand.size == 0:
        return []
    runs = np.split(cand, np.flatnonzero(np.diff(cand) > 1) + 1)
    lines = [float(r.mean()) for r in runs if r.size <= 4]
    staves = []
    i = 0
    while i + 4 < len(lines):
        gaps = np.diff(lines[i:i + 5])
        g = float(np.median(gaps))
        if g >= 3 and np.all(np.abs(gaps - g) <= max(1.0, 0.15 * g)):
            ytop, ybot = lines[i], lines[i + 4]
            xs = np.flatnonzero(dark[int(round(ytop))])
            staves.append((float(xs[0]), ytop, float(xs[-1]), ybot))
            i += 5
        else:
            i += 1
    return staves


def book_options(text: str) -> set[str]:
    m = re.search(r"^%% Options: \[(.*)\]", text, flags=re.M)
    return set(m.group(1).split(",")) if m else set()


def note_positions(snip: Snippet, x0: float, x1: float, *, space: float, header: float) -> np.ndarray:
    """Estimated x of each note: header, then duration spacing shared over the rest."""
    events: list[tuple[float, bool]] = []  # (duration in whole notes, is_note)
    t = 0.0
    for n in snip.notes:
        if float(n.onset) > t + 1e-9:
            events.append((float(n.onset) - t, False))
        events.append((float(n.duration), True))
        t = float(n.onset + n.duration)
    shortest = min(d for d, _ in events)
    widths = np.array([2.0 + 1.2 * math.log2(d / shortest) for d, _ in events])
    start = x0 + header * space
    span = max(1.0, x1 - space - start)
    lefts = start + span * np.concatenate([[0.0], np.cumsum(widths)[:-1]]) / widths.sum()
    return np.array([x for x, (_, is_note) in zip(lefts, events, strict=True) if is_note])


def load_snippets(doc_dir: str = DOC_DIR, *, min_notes: int = 8, limit: int | None = None
                  ) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Usable LilyPond snippets (strip, note anchors, notes) and the count of each skip reason."""
    from PIL import Image

    reasons: collections.Counter[str] = collections.Counter()
    seen: set[tuple[Any, ...]] = set()
    out: list[dict[str, Any]] = []
    for f in sorted(glob.glob(str(Path(doc_dir) / "*" / "lily-*.ly"))):
        try:
            snip = parse_file(f)
        except LilyPondError as exc:
            reasons[f"parse:{exc.reason}"] += 1
            continue
        if len(snip.notes) < min_notes:
            reasons["fewer_notes"] += 1
            continue
        key = tuple((n.pitch, n.onset, n.duration) for n in snip.notes)
        if key in seen:
            reasons["duplicate"] += 1
            continue
        png = Path(f).with_suffix(".png")
        if not png.exists():
            reasons["no_single_png"] += 1
            continue
        ink = 255 - np.asarray(Image.open(png).convert("L"), dtype=np.uint8)
        staves = find_staves(ink)
        if len(staves) != 1:
            reasons["png_staves_not_1" if staves else "png_no_staff"] += 1
            continue
        seen.add(key)
        x0, ytop, x1, ybot = staves[0]
        scale = STAFF_PX / (ybot - ytop)
        strip = _cut(ink, (ytop + ybot) / 2, x0 - 4, x1 + 4, scale)
        space = STAFF_PX / 4
        opts = book_options(Path(f).read_text("utf-8", errors="replace"))
        n_acc = {0: 0, 7: 1, 5: 1, 2: 2, 10: 2, 9: 3, 3: 3, 4: 4, 8: 4, 11: 5, 1: 5, 6: 6}
        acc = n_acc.get(snip.keys[0][0], 0) if snip.keys and snip.keys[0][1] == "major" else (
            n_acc.get((snip.keys[0][0] + 3) % 12, 0) if snip.keys else 0)
        header = 4.5 + 1.0 * acc + (0.0 if "notime" in opts else 3.0)
        xs = note_positions(snip, 4.0, strip.shape[1] - 4.0, space=space, header=header)
        notes = [(n.pitch, s, e, 80) for n, (_, s, e) in zip(snip.notes, snip.seconds(bpm=BPM), strict=True)]
        anchors = np.array([(0, x, 1000.0 * s) for x, (_, s, _, _) in zip(xs, notes, strict=True)], np.float32)
        out.append({"file": f, "ink": strip, "offsets": np.array([0, strip.shape[1]], np.int32),
                    "anchors": anchors, "notes": notes, "duration_s": float(snip.length) * 240.0 / BPM})
        if limit and len(out) >= limit:
            break
    reasons["kept"] = len(out)
    return out, dict(reasons)


def lilypond_pairs(snips: list[dict[str, Any]], soundfont: str, *, seed: int = 0
                   ) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Audio and sheet snippets, one pair per note position; and the snippet of each pair."""
    from engines.sheet.features import logspec

    rng = np.random.default_rng(seed)
    auds, shs, owner = [], [], []
    for k, s in enumerate(snips):
        warp = make_warp(s["duration_s"] * 1000, rng, lo=0.8, hi=1.25, change=1.0)
        warp_arr = np.stack(warp).astype(np.float32)
        spec = logspec(render_audio(s["notes"], warp, rng, soundfont=soundfont, program=0, augment=False))
        anchors = s["anchors"]
        for i in range(len(anchors)):
            t, strip, x = sample_position(anchors, i, 0.5)
            auds.append(crop_audio(spec, warp_time(warp_arr, t)))
            shs.append(crop_sheet(s["ink"], s["offsets"], strip, x))
            owner.append(k)
    return np.stack(auds), np.stack(shs), owner


def verovio_pairs(recs: list[dict[str, np.ndarray]], render: int, style: int) -> tuple[np.ndarray, np.ndarray]:
    auds, shs = [], []
    for rec in recs:
        anchors = rec[f"style{style}_anchors"]
        for i in range(len(rec["style0_anchors"])):
            if i >= len(anchors):
                break
            t, k, x = sample_position(anchors, i, 0.5)
            auds.append(crop_audio(rec[f"render{render}_spec"].astype(np.float32),
                                   warp_time(rec[f"render{render}_warp"], t)))
            shs.append(crop_sheet(rec[f"style{style}_ink"], rec[f"style{style}_offsets"], k, x))
    return np.stack(auds), np.stack(shs)


def evaluate(engine: Any, snips: list[dict[str, Any]], recs: list[dict[str, np.ndarray]], *,
             min_candidates: int = 10_000, seed: int = 0) -> dict[str, Any]:
    m = engine.model
    out: dict[str, Any] = {"snippets": len(snips)}
    lily: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name, sf in (("heldout_style", TRAIN_FAMILY_SOUNDFONT), ("heldout_soundfont_and_style", HELDOUT_SOUNDFONT)):
        a, s, _ = lilypond_pairs(snips, sf, seed=seed)
        ea, es = m.embed_audio(a), m.embed_sheet(s)
        lily[name] = (ea, es)
        out[f"lilypond_{name}"] = {"audio_to_sheet": _metrics(_ranks(ea, es)),
                                   "sheet_to_audio": _metrics(_ranks(es, ea))}
    n = len(lily["heldout_style"][0])
    out["candidates"] = n
    rng = np.random.default_rng(seed)
    # verovio, same number of candidates (a random subset of the held-out pieces' pairs)
    ver: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name, (r, st) in (("verovio_heldout_pieces", (0, 0)), ("verovio_heldout_soundfont_and_style", (1, 1))):
        a, s = verovio_pairs(recs, r, st)
        ea, es = m.embed_audio(a), m.embed_sheet(s)
        ver[name] = (ea, es)
        pick = rng.permutation(len(ea))[:n]
        out[f"{name}_same_count"] = {"audio_to_sheet": _metrics(_ranks(ea[pick], es[pick])),
                                     "sheet_to_audio": _metrics(_ranks(es[pick], ea[pick]))}
    # LilyPond queries among LilyPond + verovio distractors (held-out SoundFont and Petaluma)
    ea_l, es_l = lily["heldout_soundfont_and_style"]
    ea_v, es_v = ver["verovio_heldout_soundfont_and_style"]
    k = max(0, min(len(ea_v), min_candidates - n))
    pick = rng.permutation(len(ea_v))[:k]
    ca, cs = np.concatenate([ea_l, ea_v[pick]]), np.concatenate([es_l, es_v[pick]])
    out["lilypond_with_verovio_distractors"] = {
        "audio_to_sheet": _metrics(_ranks(ea_l, cs)) | {"candidates": int(len(cs))},
        "sheet_to_audio": _metrics(_ranks(es_l, ca)) | {"candidates": int(len(ca))},
        "queries": n}
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", default=DOC_DIR)
    ap.add_argument("--data", default="data/sheet")
    ap.add_argument("--model", default="default")
    ap.add_argument("--limit", type=int, default=None, help="at most this many LilyPond snippets")
    ap.add_argument("--min-notes", type=int, default=8)
    ap.add_argument("--json", default="")
    ns = ap.parse_args(argv)
    import torch

    from engines.sheet.engine import SheetEngine

    torch.set_num_threads(2)
    t0 = time.time()
    snips, reasons = load_snippets(ns.docs, min_notes=ns.min_notes, limit=ns.limit)
    print(json.dumps({"skipped_or_kept": dict(sorted(reasons.items(), key=lambda kv: -kv[1]))}), flush=True)
    engine = SheetEngine.from_pretrained(ns.model)
    recs = load_split(ns.data, "test")
    report: dict[str, Any] = {"model": engine.name, "snippet_counts": reasons,
                              "notes": "note x positions in LilyPond PNGs are estimated (duration spacing)"}
    report |= evaluate(engine, snips, recs)
    report["seconds"] = round(time.time() - t0)
    print(json.dumps(report, indent=1), flush=True)
    if ns.json:
        Path(ns.json).parent.mkdir(parents=True, exist_ok=True)
        Path(ns.json).write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
