"""Train the pitch salience front end of the generation eval (``resources/models/pitch``).

    nice -n 10 python -m engines.generate.pitch_train --workers 2     # ~3 min on 2 cores

The audio estimators of :mod:`engines.generate.eval` read pitch from a 36-bin CQT. Hand-made
chroma (centre bins, harmonic partials subtracted) gets the notes of plain block chords right
but not those of a full mix: a bass line's fifth partial lands on the major third of its root,
drums smear over the low octaves, loud and soft instruments count by loudness rather than by
how long a note sounds. This script learns, from rendered pieces with known notes, the
probability that each semitone C1..B7 sounds in each beat segment: a convolution along the
pitch axis (the same weights at every semitone; each output reads 12 semitones below and 36
above: its own partials and the notes whose partials it could be; a register channel lets it
weight octaves differently) then two 1x1 layers; about 3,000 parameters.

Training pieces are the chord model's (:func:`engines.generate.chord_train.reference_piece` and
:func:`~engines.generate.chord_train.varied_piece`) with every pitched track given a random GM
program of its role (any of 0-103 for chords and melody), drums in about 30 % (the piece
makers add a kit to half, kept in 60 % of those), rendered with
FluidR3_GM only. Targets: the share of each beat segment (the segments the beat tracker finds,
as at inference) during which each semitone sounds in the MIDI. Validation: other pieces
rendered with the bundled TimGM6mb. Never the generator's output, never the evaluation prompts.
Augmentation: a random spectral tilt per copy (brighter / darker SoundFonts).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from engines.generate import eval as E
from engines.generate.chord_train import (
    TRAIN_SOUNDFONT,
    reference_piece,
    run_chunks,
    save_model_folder,
    varied_piece,
)
from engines.media.midi import Song

MODEL_DIR = E.SALIENCE_MODEL_DIR
_BASS_PROGRAMS = (32, 33, 34, 35, 36, 37, 38, 39, 42, 43, 58, 70, 0, 1, 4, 19)


def _diversify(song: Song, rng: np.random.Generator, drums_p: float) -> Song:
    """The same notes with a random GM program per pitched track (bass-role programs for the
    bass); a drum track, where the piece maker added one (half the pieces), is kept with
    probability ``drums_p``."""
    tracks = []
    for t in song.tracks:
        if t.is_drum:
            if rng.random() < drums_p:
                tracks.append(t)
            continue
        prog = int(rng.choice(_BASS_PROGRAMS)) if t.name == "bass" else int(rng.integers(0, 104))
        tracks.append(type(t)(t.name, prog, notes=t.notes, is_drum=False))
    return Song(tracks=tracks, tempo=song.tempo, time_signature=song.time_signature, key=song.key)


def segment_targets(song: Song, beats: np.ndarray, n_seg: int, n_frames: int) -> np.ndarray:
    """``(n_seg, 84)``: the share of each beat segment (segment 0 runs up to the first beat, the
    last from the last beat to the end) during which each semitone C1..B7 sounds."""
    frame_s = 512 / 22050
    b = np.asarray(beats, np.float64) * frame_s
    starts = np.r_[0.0, b]
    ends = np.r_[b, max(n_frames * frame_s, b[-1] + 1e-3 if len(b) else 1e-3)]
    T = np.zeros((n_seg, 84))
    for t in song.tracks:
        if t.is_drum:
            continue
        for n in t.notes:
            if not 24 <= n.pitch < 108:
                continue
            ov = np.minimum(ends[:n_seg], n.end) - np.maximum(starts[:n_seg], n.start)
            T[:, n.pitch - 24] += np.maximum(ov, 0.0) / np.maximum(ends[:n_seg] - starts[:n_seg], 1e-3)
    return np.clip(T, 0.0, 1.0)


def _render(args: tuple[int, int, int, str | None, str, float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Worker: beat CQTs ``(n, 252)``, targets ``(n, 84)`` and piece numbers ``(n,)`` of pieces
    ``start..start+n``."""
    from engines.media.midi import read_midi, write_midi
    from engines.media.synth import render_song

    seed, start, n, soundfont, kind, drums_p = args
    rng = np.random.default_rng([seed, start])
    maker = varied_piece if kind == "varied" else reference_piece
    Xs, Ys, Ps = [np.zeros((0, 252), np.float32)], [np.zeros((0, 84), np.float32)], [np.zeros(0, np.int64)]
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(n):
            song, _ = maker(rng)
            song = _diversify(song, rng, drums_p)
            path = write_midi(song, Path(tmp) / f"p{i}.mid")
            song = read_midi(path)
            y = render_song(song, sr=22050, stereo=False, soundfont=soundfont)[0]
            f = E.audio_features(y, 22050, settings={"front_end": "chroma"})
            cqt = np.asarray(f["cqt_beats"])
            Xs.append(cqt.T.astype(np.float32))
            Ys.append(segment_targets(song, np.asarray(f["beats"]), cqt.shape[1], len(np.asarray(f["onset"])))
                      .astype(np.float32))
            Ps.append(np.full(cqt.shape[1], start + i, np.int64))
    return np.concatenate(Xs), np.concatenate(Ys), np.concatenate(Ps)


def build(n: int, seed: int, soundfont: str | None, kind: str, workers: int, drums_p: float = 0.6
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Beat CQTs, targets and piece numbers of ``n`` rendered pieces, in chunks of 10."""
    chunks = [(seed, s, min(10, n - s), soundfont, kind, drums_p) for s in range(0, n, 10)]
    parts = run_chunks(_render, chunks, workers)
    return tuple(np.concatenate([p[j] for p in parts]) for j in range(3))  # type: ignore[return-value]


def _inputs(X: np.ndarray, P: np.ndarray) -> np.ndarray:
    """Model inputs for beat CQT rows ``X`` of pieces ``P``, normalised per piece as at inference."""
    out = np.zeros((len(X), 4, 84), np.float32)
    for p in np.unique(P):
        m = P == p
        out[m] = E.salience_input(X[m].T)
    return out


def main(argv: list[str] | None = None) -> int:
    import torch

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pieces", type=int, default=150, help="reference pieces (FluidR3_GM)")
    ap.add_argument("--varied", type=int, default=250, help="varied pieces (FluidR3_GM)")
    ap.add_argument("--val-pieces", type=int, default=30)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--cache", type=Path, default=None, help="reuse / store the rendered features (.npz)")
    ap.add_argument("--tilt-copies", type=int, default=2)
    ap.add_argument("--hidden", type=int, default=16)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--seed", type=int, default=3000)
    ap.add_argument("--out", type=Path, default=MODEL_DIR)
    a = ap.parse_args(argv)
    t0 = time.monotonic()
    torch.manual_seed(0)
    rng = np.random.default_rng(a.seed)
    if a.cache is not None and a.cache.is_file():
        z = np.load(a.cache)
        X0, Y0, P0, Xv, Yv, Pv = (z[k] for k in ("X", "Y", "P", "Xv", "Yv", "Pv"))
    else:
        X0, Y0, P0 = build(a.pieces, a.seed, TRAIN_SOUNDFONT, "reference", a.workers)
        Xw, Yw, Pw = build(a.varied, a.seed + 1, TRAIN_SOUNDFONT, "varied", a.workers)
        X0, Y0, P0 = np.concatenate([X0, Xw]), np.concatenate([Y0, Yw]), np.concatenate([P0, Pw + a.pieces])
        Xv, Yv, Pv = build(a.val_pieces, a.seed + 500, None, "varied", a.workers)  # bundled TimGM6mb
        if a.cache is not None:
            np.savez_compressed(a.cache, X=X0, Y=Y0, P=P0, Xv=Xv, Yv=Yv, Pv=Pv)
    print(f"{len(X0)} training beats, {len(Xv)} validation beats ({time.monotonic() - t0:.0f} s)", flush=True)
    reg = np.repeat(np.linspace(-1.0, 1.0, 84), 3)
    parts = [_inputs(X0, P0)]
    for _ in range(a.tilt_copies):  # one random tilt per piece and copy
        tilt = rng.normal(0, 0.7, int(P0.max()) + 1)[P0]
        parts.append(_inputs(X0 * np.exp(tilt[:, None] * reg[None, :]), P0))
    X = torch.from_numpy(np.concatenate(parts))
    Y = torch.from_numpy(np.tile(Y0, (a.tilt_copies + 1, 1)))
    Xvt, Yvt = torch.from_numpy(_inputs(Xv, Pv)), torch.from_numpy(Yv)
    lo, hi = E.SALIENCE_CONTEXT

    class Net(torch.nn.Module):
        def __init__(self, h: int) -> None:
            super().__init__()
            self.conv = torch.nn.Conv1d(4, h, lo + hi + 1)
            self.mix = torch.nn.Conv1d(h, h, 1)
            self.out = torch.nn.Conv1d(h, 1, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = torch.nn.functional.pad(x, (lo, hi))
            return self.out(torch.relu(self.mix(torch.relu(self.conv(x)))))[:, 0]

    net = Net(a.hidden)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    bs = 512
    for ep in range(a.epochs):
        perm = torch.randperm(len(X))
        tot = 0.0
        for i in range(0, len(X), bs):
            idx = perm[i:i + bs]
            opt.zero_grad()
            loss = torch.nn.functional.binary_cross_entropy_with_logits(net(X[idx]), Y[idx])
            loss.backward()
            opt.step()
            tot += float(loss.detach()) * len(idx)
        if (ep + 1) % 5 == 0 or ep == a.epochs - 1:
            with torch.no_grad():
                vl = float(torch.nn.functional.binary_cross_entropy_with_logits(net(Xvt), Yvt))
            print(f"  epoch {ep + 1} train loss {tot / len(X):.4f} val loss {vl:.4f}", flush=True)
    with torch.no_grad():
        pv = torch.sigmoid(net(Xvt)).numpy()
    on = Yv > 0.5
    pred = pv > 0.5
    tp = float((pred & on).sum())
    prec, rec = tp / max(float(pred.sum()), 1.0), tp / max(float(on.sum()), 1.0)
    cfg = {"hidden": a.hidden, "context_semitones": [lo, hi], "input": "beat-synchronous 36-bin CQT from C1, "
           "log1p(100 x / 99th percentile) / log1p(100), 3 bins per semitone + register channel "
           "(engines.generate.eval.salience_input)"}
    metrics = {"train_pieces": a.pieces, "train_varied_pieces": a.varied, "train_beats": int(len(X0)),
               "tilt_copies": a.tilt_copies, "train_soundfont": Path(TRAIN_SOUNDFONT).name,
               "val_pieces": a.val_pieces, "val_beats": int(len(Xv)), "val_soundfont": "TimGM6mb.sf2",
               "val_semitone_precision": round(prec, 4), "val_semitone_recall": round(rec, 4),
               "val_semitone_f1": round(2 * prec * rec / max(prec + rec, 1e-9), 4),
               "params": int(sum(p.numel() for p in net.parameters())),
               "seed": a.seed, "epochs": a.epochs, "minutes": round((time.monotonic() - t0) / 60, 1)}
    save_model_folder(a.out, net, cfg, metrics)
    print(json.dumps(metrics))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
