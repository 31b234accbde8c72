"""Audio–sheet snippet data built offline from the music21 corpus (MSMD-style).

Pieces: the Essen folk songs bundled with music21 (ABC, one staff each), split into tunes and engraved by verovio in-process (trusted corpus). For each
piece this writes ``data/sheet/{split}/{piece}.npz`` holding

* the staff strips of the engraving (:mod:`engines.sheet.pages`),
* note anchors ``(strip, x, onset_ms)`` linking image positions to score time (timemap),
* bar spans per strip and bar onsets,
* the notes (verovio MIDI) and one or more audio renderings: a log-frequency spectrogram
  plus the time warp score-ms → audio-s used to render it (tempo factor and, sometimes,
  a tempo change), with a SoundFont, GM program, dynamics and reverb chosen at random.

Split by piece (a hash of the tune's id). Held out of training entirely: the SoundFont
``sf_GMbank.sf2`` (Debian csound-soundfont) and the engraving style "Petaluma font (handwritten look) at
default spacing". Run: ``python -m engines.sheet.data --out data/sheet``.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import os
import re
import signal
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

SF_DIR = "/usr/share/sounds/sf2"
TRAIN_SOUNDFONTS = ("TimGM6mb", f"{SF_DIR}/FluidR3_GM.sf2", f"{SF_DIR}/A320U.sf2")
HELDOUT_SOUNDFONT = f"{SF_DIR}/sf_GMbank.sf2"
TRAIN_FONTS = ("Leipzig", "Bravura", "Leland", "Gootville")
HELDOUT_STYLE = {"font": "Petaluma"}
TEST_STYLE: dict[str, Any] = {"font": "Leipzig"}
TRAIN_PROGRAMS = (0, 0, 1, 4, 6, 11, 19, 24, 40, 46, 56, 68, 71, 73)


def corpus_tunes() -> list[tuple[str, str]]:
    """``(piece_id, abc_text)`` of every tune in the Essen and O'Neill ABC files, sorted."""
    import music21

    base = Path(music21.__path__[0]) / "corpus"
    out = []
    for d in ("essenFolksong",):
        for f in sorted(glob.glob(str(base / d / "*.abc"))):
            text = Path(f).read_text("latin-1")
            for chunk in re.split(r"\n(?=X:)", text):
                m = re.match(r"X:\s*(\d+)", chunk.strip())
                if m and "K:" in chunk:
                    out.append((f"{d}/{Path(f).stem}/{m.group(1)}", chunk.strip() + "\n"))
    return out


def split_of(piece_id: str) -> str:
    h = int(hashlib.sha1(piece_id.encode()).hexdigest()[:8], 16)
    return "test" if h % 10 == 0 else "train"


def reverb(y: np.ndarray, rng: np.random.Generator, sr: int) -> np.ndarray:
    from scipy.signal import fftconvolve

    rt60 = rng.uniform(0.2, 1.5)
    n = int(rt60 * sr)
    ir = rng.standard_normal(n).astype(np.float32) * np.exp(-6.9 * np.arange(n) / n).astype(np.float32)
    ir /= np.sqrt((ir ** 2).sum()) + 1e-9
    wet = fftconvolve(y, ir)[: y.size].astype(np.float32)
    mix = rng.uniform(0.05, 0.45)
    out = (1 - mix) * y + mix * wet
    return out / (np.abs(out).max() + 1e-9) * 0.9


def make_warp(duration_ms: float, rng: np.random.Generator, *, lo: float = 0.7, hi: float = 1.4,
              change: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Piecewise-linear score-ms → audio-s warp: a duration factor and maybe a tempo change."""
    f1 = rng.uniform(lo, hi)
    if rng.random() < change:
        c = duration_ms * rng.uniform(0.3, 0.7)
        f2 = f1 * rng.choice([rng.uniform(0.7, 0.85), rng.uniform(1.18, 1.45)])
        xs = np.array([0.0, c, duration_ms + 10_000.0])
        ys = np.array([0.0, c * f1, c * f1 + (duration_ms + 10_000.0 - c) * f2]) / 1000.0
    else:
        xs = np.array([0.0, duration_ms + 10_000.0])
        ys = xs * f1 / 1000.0
    return xs, ys


def render_audio(notes: list[tuple[int, float, float, int]], warp: tuple[np.ndarray, np.ndarray],
                 rng: np.random.Generator, *, soundfont: str | None, program: int, augment: bool) -> np.ndarray:
    from engines.sheet.features import SR, synth_notes

    xs, ys = warp
    vel_scale = rng.uniform(0.6, 1.15) if augment else 1.0
    warped = []
    for p, a, b, v in notes:
        va = int(np.clip(v * vel_scale + (rng.normal(0, 8) if augment else 0), 20, 127))
        warped.append((p, float(np.interp(a * 1000, xs, ys)), float(np.interp(b * 1000, xs, ys)), va))
    sf = None if soundfont in (None, "TimGM6mb") else soundfont
    y = synth_notes(warped, soundfont=sf, program=program)
    if augment:
        y = reverb(y, rng, SR) if rng.random() < 0.7 else y
        y = y + rng.normal(0, rng.uniform(0, 0.01), y.size).astype(np.float32)
    return y.astype(np.float32)


def build_piece(piece_id: str, abc: str, split: str, seed: int) -> dict[str, Any] | None:
    from engines.sheet.features import logspec
    from engines.sheet.pages import engraved_strips
    from engines.sheet.symbolic import engrave_symbolic

    rng = np.random.default_rng(seed)
    if split == "train":
        styles = [{"font": str(rng.choice(TRAIN_FONTS)), "pageWidth": int(rng.integers(1500, 2700)),
                   "spacingLinear": float(rng.uniform(0.2, 0.35)),
                   "spacingNonLinear": float(rng.uniform(0.5, 0.7))}]
    else:
        styles = [TEST_STYLE, HELDOUT_STYLE]
    try:
        sym = engrave_symbolic(abc, "abc", styles[0], piece_id)
    except Exception:  # noqa: BLE001
        return None
    dur = sym["duration_s"]
    if not 8.0 <= dur <= 150 or len(sym["notes"]) < 16 or len(sym["measure_ids"]) < 4:
        return None
    out: dict[str, Any] = {"piece": piece_id, "notes": np.array(sym["notes"], np.float32),
                           "bar_onsets_ms": np.array(sym["bar_onsets_ms"], np.float32)}
    for si, style in enumerate(styles):
        if si > 0:
            try:
                sym = engrave_symbolic(abc, "abc", style, piece_id)
            except Exception:  # noqa: BLE001
                return None
        strips, _ = engraved_strips(sym["pages"], sym["measure_ids"], sym["note_onsets"])
        if len(strips) == 0 or any(len(s.notes) == 0 for s in strips):
            return None
        inks = [s.ink for s in strips]
        anchors = np.array([(k, x, t) for k, s in enumerate(strips) for x, t in s.notes], np.float32)
        anchors = anchors[np.argsort(anchors[:, 2], kind="stable")]
        bars = np.array([(k, a, b, bar) for k, s in enumerate(strips) for a, b, bar in s.bars], np.float32)
        out[f"style{si}_ink"] = np.concatenate(inks, axis=1)
        out[f"style{si}_offsets"] = np.cumsum([0] + [i.shape[1] for i in inks]).astype(np.int32)
        out[f"style{si}_anchors"] = anchors
        out[f"style{si}_bars"] = bars
    notes = [tuple(n) for n in sym["notes"]]
    if split == "train":
        renders = []
        for _ in range(2):
            sf = TRAIN_SOUNDFONTS[int(rng.integers(len(TRAIN_SOUNDFONTS)))]
            renders.append((sf, int(rng.choice(TRAIN_PROGRAMS)), True, 0.4))
    else:
        renders = [(f"{SF_DIR}/FluidR3_GM.sf2", 0, False, 1.0), (HELDOUT_SOUNDFONT, 0, False, 1.0)]
    for ri, (sf, program, augment, change) in enumerate(renders):
        warp = make_warp(dur * 1000, rng, lo=0.7 if augment else 0.8, hi=1.4 if augment else 1.25,
                         change=change)
        y = render_audio(notes, warp, rng, soundfont=sf, program=program, augment=augment)
        out[f"render{ri}_spec"] = logspec(y).astype(np.float16)
        out[f"render{ri}_warp"] = np.stack(warp).astype(np.float32)
        if split == "test":
            out[f"render{ri}_audio"] = (y * 32767).astype(np.int16)
    return out


def _jobs(n_train: int, n_test: int, seed: int) -> list[tuple[str, str, str, int]]:
    tunes = corpus_tunes()
    order = np.random.default_rng(seed).permutation(len(tunes))
    jobs: list[tuple[str, str, str, int]] = []
    counts = {"train": 0, "test": 0}
    # oversample: some tunes are rejected (too short or long, unreadable)
    want = {"train": int(n_train * 1.3), "test": int(n_test * 1.3)}
    for i in order:
        pid, abc = tunes[int(i)]
        s = split_of(pid)
        if counts[s] < want[s]:
            counts[s] += 1
            jobs.append((pid, abc, s, int(i) + 1000 * seed))
    # evaluation pieces first: a build cut short still leaves a complete test split
    return sorted(jobs, key=lambda j: j[2] != "test")


def _worker(out_dir: str, n_train: int, n_test: int, seed: int, shard: int, shards: int) -> None:
    """Build one shard. A piece that crashes verovio leaves its ``.bad`` marker and is skipped
    when the driver restarts the worker."""
    for k, (pid, abc, split, pseed) in enumerate(_jobs(n_train, n_test, seed)):
        if k % shards != shard:
            continue
        target = Path(out_dir) / split / (pid.replace("/", "__") + ".npz")
        bad, skip = target.with_suffix(".bad"), target.with_suffix(".skip")
        if target.exists() or bad.exists() or skip.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        bad.touch()
        signal.alarm(60)  # a piece that hangs the engraver kills the worker; the driver restarts it
        try:
            rec = build_piece(pid, abc, split, pseed)
        except Exception as exc:  # noqa: BLE001
            print(f"skip {pid}: {exc}", file=sys.stderr)
            rec = None
        if rec is None:
            skip.touch()
        else:
            tmp = target.with_suffix(".tmp.npz")
            np.savez(tmp, **rec)
            os.replace(tmp, target)
        signal.alarm(0)
        bad.unlink()


def build(out_dir: str, *, n_train: int, n_test: int, workers: int = 2, seed: int = 0) -> dict[str, int]:
    import subprocess

    t0 = time.time()
    procs: dict[int, subprocess.Popen] = {}
    restarts = 0
    args = [sys.executable, "-m", "engines.sheet.data", "--out", out_dir, "--train", str(n_train),
            "--test", str(n_test), "--seed", str(seed)]
    for k in range(workers):
        procs[k] = subprocess.Popen([*args, "--shard", f"{k}/{workers}"])
    while procs:
        time.sleep(2)
        for k, pr in list(procs.items()):
            rc = pr.poll()
            if rc is None:
                continue
            del procs[k]
            if rc != 0 and restarts < 200:  # crashed on a piece: its .bad marker skips it next time
                restarts += 1
                procs[k] = subprocess.Popen([*args, "--shard", f"{k}/{workers}"])
        n = {s: len(list((Path(out_dir) / s).glob("*[!p].npz"))) for s in ("train", "test")}
        if int(time.time() - t0) % 60 < 2:
            print(f"[{time.time() - t0:6.0f}s] {n} restarts={restarts}", flush=True)
    return {s: len(list((Path(out_dir) / s).glob("*[!p].npz"))) for s in ("train", "test")}


def load_split(out_dir: str | Path, split: str, *, limit: int | None = None) -> list[dict[str, np.ndarray]]:
    files = sorted((Path(out_dir) / split).glob("*.npz"))
    files = [f for f in files if not f.name.endswith(".tmp.npz")][:limit]
    out = []
    for f in files:
        with np.load(f, allow_pickle=False) as z:
            out.append({k: z[k] for k in z.files})
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="data/sheet")
    ap.add_argument("--train", type=int, default=1600)
    ap.add_argument("--test", type=int, default=400)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--shard", default="")
    ns = ap.parse_args(argv)
    if ns.shard:
        k, n = (int(v) for v in ns.shard.split("/"))
        _worker(ns.out, ns.train, ns.test, ns.seed, k, n)
        return
    print(build(ns.out, n_train=ns.train, n_test=ns.test, workers=ns.workers, seed=ns.seed))


if __name__ == "__main__":
    main()


# --------------------------------------------------------------------------- snippet pairs

AUDIO_FRAMES = 60  # 3 s at 20 frames/s


def crop_audio(spec: np.ndarray, centre_s: float, *, frames: int = AUDIO_FRAMES) -> np.ndarray:
    """``(frames, bands)`` window of a spectrogram centred at ``centre_s``, zero padded."""
    from engines.sheet.features import FPS

    c = int(round(centre_s * FPS))
    a = c - frames // 2
    out = np.zeros((frames, spec.shape[1]), np.float32)
    lo, hi = max(0, a), min(spec.shape[0], a + frames)
    if hi > lo:
        out[lo - a:hi - a] = spec[lo:hi]
    return out


def crop_sheet(ink: np.ndarray, offsets: np.ndarray, strip: int, x: float, *, width: int = 256,
               scale: float = 1.0, dy: int = 0) -> np.ndarray:
    """``(64, width)`` window of strip ``strip`` centred at ``x`` (optionally x-scaled / y-shifted)."""
    a, b = int(offsets[strip]), int(offsets[strip + 1])
    src_w = width / scale
    xs = np.round(x - src_w / 2 + np.arange(width) / scale).astype(np.int64)
    valid = (xs >= 0) & (xs < b - a)
    out = np.zeros((ink.shape[0], width), np.uint8)
    out[:, valid] = ink[:, a + xs[valid]]
    if dy:
        out = np.roll(out, dy, axis=0)
        if dy > 0:
            out[:dy] = 0
        else:
            out[dy:] = 0
    return out


def sample_position(anchors: np.ndarray, i: int, lam: float) -> tuple[float, int, float]:
    """Score time (ms), strip and x between anchor ``i`` and the next anchor of the same strip."""
    k, x, t = anchors[i]
    if i + 1 < len(anchors) and anchors[i + 1, 0] == k and anchors[i + 1, 2] > t:
        x = x + lam * (anchors[i + 1, 1] - x)
        t = t + lam * (anchors[i + 1, 2] - t)
    return float(t), int(k), float(x)


def warp_time(warp: np.ndarray, t_ms: float) -> float:
    return float(np.interp(t_ms, warp[0], warp[1]))
