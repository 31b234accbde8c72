"""Train the audio chord model of the generation eval (``resources/models/chords``).

    nice -n 10 python -m engines.generate.chord_train --workers 2     # ~4.5 min on 2 cores

Used by default (``AUDIO_SETTINGS["chord_model"] = "learned"``; the templates are the fallback
when no weights are found). The audio estimators of :mod:`engines.generate.eval` decode chords
from beat-synchronous treble and bass chroma, by default those of the pitch salience front end
(``resources/models/pitch``: train it first, ``python -m engines.generate.pitch_train``; the
model records the front end it was trained on, ``--front-end chroma`` for the hand-made one).
This script learns their emission model: a
root-invariant network (the same small MLP scores every quality on the chroma rotated to each of
the 12 roots, so one chord seen in C teaches all keys) trained on rendered pieces with a known
chord per bar, all rendered with FluidR3_GM only:

* 100 *reference pieces* (:func:`reference_piece`: cadential progressions, block / repeated
  voicings, root-fifth bass, a melody with passing notes, drums for half);
* 220 *varied pieces* (:func:`varied_piece`: random mostly diatonic progressions over the whole
  vocabulary; block chords per beat / bar / eighth, arpeggios, Alberti, off-beat comping, pads;
  inversions and open voicings; bass held, root-fifth, walking or absent; melody on top or
  none; 50-180 bpm; 4/4, 3/4, 6/8, 2/4; many GM programs);
* 3 augmented copies of every beat (random gain per pitch class, noise, bass scaled, dropped
  or mixed with the treble).

Never the generator's output, never the evaluation prompts. Settings of the decoder were chosen
on reference seed 7 (FluidR3_GM) and dev prompts (seed 1); validation: reference seed 2024
rendered with TimGM6mb and A320U (``bench/generate_estimators.py``). It writes safetensors
weights, a config and metrics.json to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from engines.generate import theory
from engines.media.midi import Song

MODEL_DIR = Path(__file__).resolve().parents[2] / "resources" / "models" / "chords"
TRAIN_SOUNDFONT = "/usr/share/sounds/sf2/FluidR3_GM.sf2"
QUALITIES = list(theory.CHORD_VOCAB)

# cadential progressions (scale degree of the root, quality) that state their key
_MAJOR = [[(0, ""), (5, ""), (7, ""), (0, "")], [(0, ""), (9, "m"), (5, ""), (7, "7"), (0, "")],
          [(0, "maj7"), (2, "m7"), (7, "7"), (0, "")], [(0, ""), (7, ""), (9, "m"), (5, ""), (7, ""), (0, "")],
          [(0, ""), (4, "m"), (5, ""), (7, ""), (0, "")], [(0, ""), (2, "m"), (7, "7"), (0, "")]]
_MINOR = [[(0, "m"), (5, "m"), (7, ""), (0, "m")], [(0, "m"), (8, ""), (3, ""), (7, ""), (0, "m")],
          [(0, "m"), (10, ""), (8, ""), (7, ""), (0, "m")], [(0, "m7"), (5, "m7"), (7, "7"), (0, "m")],
          [(0, "m"), (2, "dim"), (7, ""), (0, "m")]]
_PROGRAMS = {"keys": (0, 4, 19, 24, 48), "bass": (32, 33, 38, 42), "melody": (73, 40, 65, 56, 80, 0)}


def reference_piece(rng: np.random.Generator) -> tuple[Song, dict]:
    """A Song with known controls, and the truth ``{key, tempo, meter, chords}``."""
    from engines.media.midi import Note, Track

    minor = bool(rng.random() < 0.5)
    tonic = int(rng.integers(12))
    key = theory.Key(tonic, "minor" if minor else "major")
    prog = (_MINOR if minor else _MAJOR)[int(rng.integers(len(_MINOR if minor else _MAJOR)))]
    chords = [theory.pc_name(tonic + d) + q for d, q in prog]
    meter = theory.parse_meter(["4/4", "4/4", "3/4", "6/8"][int(rng.integers(4))])
    tempo = float(rng.integers(60, 161))
    step = 60.0 / tempo / 4
    spb, sbeat = meter.steps_per_bar, meter.steps_per_beat
    keys, bass, mel, drums = [], [], [], []
    prev_top = 72
    played = chords * 2  # the progression twice; the truth is one cycle
    for b, sym in enumerate(played):
        ch = theory.parse_chord(sym)
        a = b * spb
        pcs = [(ch.root + i) % 12 for i in ch.intervals]
        voicing = sorted(55 + ((pc - 55) % 12) for pc in pcs)
        attacks = range(0, spb, sbeat) if rng.random() < 0.6 else [0]
        for s in attacks:
            dur = sbeat if len(attacks) > 1 else spb
            keys += [Note(p, (a + s) * step, (a + s + dur) * step - 0.01, 70) for p in voicing]
        root = 36 + (ch.bass - 36) % 12
        for s in range(0, spb, sbeat * (2 if spb // sbeat == 4 else 1)):
            bass.append(Note(root if s == 0 or rng.random() < 0.6 else root + 7, (a + s) * step,
                             (a + s + sbeat) * step - 0.02, 90))
        last_bar = b == len(played) - 1
        s = 0
        scale = key.scale
        while s < spb:
            d = spb if last_bar else int(rng.choice([2, 2, 4, 4, sbeat]))
            d = min(d, spb - s)
            on_beat = s % sbeat == 0
            cands = [p for p in range(64, 84) if p % 12 in (pcs if on_beat else scale)]
            if last_bar:
                cands = [p for p in cands if p % 12 == tonic] or cands
            p = min(cands, key=lambda q: abs(q - prev_top) + rng.random() * 4)
            prev_top = p
            mel.append(Note(int(p), (a + s) * step, (a + s + d) * step - 0.01, 92))
            s += d
        for s in range(0, spb, 2):
            drums.append(Note(42, (a + s) * step, (a + s + 1) * step, 80 if s % sbeat == 0 else 60))
        for s in range(0, spb, sbeat):
            beat = s // sbeat
            drums.append(Note(36 if beat % 2 == 0 else 38, (a + s) * step, (a + s + 1) * step, 100))
    tracks = [Track("keys", int(rng.choice(_PROGRAMS["keys"])), notes=keys),
              Track("bass", int(rng.choice(_PROGRAMS["bass"])), notes=bass),
              Track("melody", int(rng.choice(_PROGRAMS["melody"])), notes=mel)]
    with_drums = bool(rng.random() < 0.5)
    if with_drums:
        tracks.append(Track("drums", 0, is_drum=True, notes=drums))
    song = Song(tracks=tracks, tempo=tempo, time_signature=(meter.num, meter.den), key=key.name)
    return song, {"key": key, "tempo": tempo, "meter": meter, "chords": chords, "drums": with_drums}


_QUALITY_WEIGHTS = {"": 0.3, "m": 0.25, "7": 0.1, "maj7": 0.07, "m7": 0.08, "dim": 0.05, "aug": 0.04, "sus4": 0.05,
                    "m7b5": 0.06}
_WIDE_PROGRAMS = {"keys": (0, 1, 2, 4, 5, 6, 11, 16, 19, 24, 25, 26, 46, 48, 49, 52, 88, 89),
                  "bass": (32, 33, 34, 35, 38, 42, 43, 0),
                  "melody": (0, 40, 41, 56, 60, 65, 68, 71, 73, 80, 81, 11, 24)}
_PATTERNS = ("block_beats", "block_bar", "arpeggio", "alberti", "offbeat", "pad", "block_eighths", "test_block")


def varied_piece(rng: np.random.Generator) -> tuple[Song, dict]:
    """A training piece with a known chord per bar, more varied than :func:`reference_piece`:
    random (mostly diatonic) progressions over the whole vocabulary, one accompaniment pattern
    per piece (block chords per beat / per bar / in eighths, arpeggios, Alberti bass, off-beat
    comping, sustained pads), inversions and open voicings, a bass that holds the root, alternates
    root and fifth, walks or is absent, an optional melody on top, tempo 50-180, 4/4 3/4 6/8 2/4."""
    from engines.media.midi import Note, Track

    minor = bool(rng.random() < 0.45)
    tonic = int(rng.integers(12))
    key = theory.Key(tonic, "minor" if minor else "major")
    quals = list(_QUALITY_WEIGHTS)
    qp = np.array(list(_QUALITY_WEIGHTS.values()))
    qp = qp / qp.sum()
    n_chords = int(rng.integers(3, 7))
    chords: list[str] = []
    if rng.random() < 0.4:  # a cadential progression of the reference kind
        prog = (_MINOR if minor else _MAJOR)[int(rng.integers(len(_MINOR if minor else _MAJOR)))]
        chords = [theory.pc_name(tonic + d) + q for d, q in prog]
    else:
        scale = list(key.scale)
        for _ in range(n_chords):
            root = int(rng.choice(scale)) if rng.random() < 0.8 else int(rng.integers(12))
            q = str(rng.choice(quals, p=qp))
            sym = theory.pc_name(root) + q
            if chords and sym == chords[-1]:
                continue
            chords.append(sym)
    meter = theory.parse_meter(str(rng.choice(["4/4", "4/4", "4/4", "3/4", "6/8", "2/4"])))
    tempo = float(rng.integers(50, 181))
    step = 60.0 / tempo / 4
    spb, sbeat = meter.steps_per_bar, meter.steps_per_beat
    pattern = str(rng.choice(_PATTERNS))
    bass_style = str(rng.choice(["root", "root_fifth", "walk", "none", "root_beats"], p=[0.3, 0.3, 0.15, 0.1, 0.15]))
    centre = int(rng.integers(50, 66))
    inversion_p = float(rng.choice([0.0, 0.3, 0.7]))
    open_voicing = bool(rng.random() < 0.25)
    vel = int(rng.integers(55, 95))
    with_melody = bool(rng.random() < 0.6)
    keys, bass, mel, drums = [], [], [], []
    prev_top = int(rng.integers(68, 80))
    played = chords * 2
    for b, sym in enumerate(played):
        ch = theory.parse_chord(sym)
        a = b * spb
        pcs = [(ch.root + i) % 12 for i in ch.intervals]
        lo = centre - 6 + int(rng.integers(0, 6)) if rng.random() < inversion_p else centre
        if pattern == "test_block":
            lo = 55
        voicing = sorted(lo + ((pc - lo) % 12) for pc in pcs)
        if open_voicing and len(voicing) >= 3:
            voicing[1] += 12
            voicing = sorted(voicing)
        dur_all = spb
        if pattern in ("block_beats", "test_block"):
            for s in range(0, spb, sbeat):
                keys += [Note(p, (a + s) * step, (a + s + sbeat) * step - 0.01, vel) for p in voicing]
        elif pattern == "block_bar" or pattern == "pad":
            keys += [Note(p, a * step, (a + dur_all) * step - 0.01, vel) for p in voicing]
        elif pattern == "block_eighths":
            for s in range(0, spb, 2):
                keys += [Note(p, (a + s) * step, (a + s + 2) * step - 0.01, vel - (8 if s % sbeat else 0))
                         for p in voicing]
        elif pattern == "arpeggio":
            d = int(rng.choice([1, 2]))
            seq = voicing + [voicing[0] + 12] + voicing[1:][::-1] if rng.random() < 0.5 else voicing + [voicing[0] + 12]
            for i, s in enumerate(range(0, spb, d)):
                p = seq[i % len(seq)]
                keys.append(Note(p, (a + s) * step, (a + s + d * 2) * step - 0.01, vel))
        elif pattern == "alberti":
            seq = [voicing[0], voicing[-1], voicing[1], voicing[-1]]
            for i, s in enumerate(range(0, spb, 2)):
                keys.append(Note(seq[i % 4], (a + s) * step, (a + s + 2) * step - 0.01, vel))
        elif pattern == "offbeat":
            for s in range(0, spb, sbeat):
                o = s + sbeat // 2 if sbeat >= 2 else s
                keys += [Note(p, (a + o) * step, (a + o + max(sbeat // 2, 1)) * step - 0.01, vel) for p in voicing]
        root = 36 + (ch.bass - 36) % 12
        if bass_style == "root":
            bass.append(Note(root, a * step, (a + spb) * step - 0.02, 90))
        elif bass_style == "root_beats":
            for s in range(0, spb, sbeat):
                bass.append(Note(root, (a + s) * step, (a + s + sbeat) * step - 0.02, 88))
        elif bass_style == "root_fifth":
            half = spb // 2 if spb >= 8 else sbeat
            for i, s in enumerate(range(0, spb, half)):
                p = root if i % 2 == 0 else root + (7 if 7 in ch.intervals else pcs[-1] - ch.root) % 12
                bass.append(Note(p, (a + s) * step, (a + s + half) * step - 0.02, 90))
        elif bass_style == "walk":
            tones = [root] + [36 + (pc - 36) % 12 for pc in pcs[1:]]
            for i, s in enumerate(range(0, spb, sbeat)):
                p = tones[0] if i == 0 else int(rng.choice(tones))
                bass.append(Note(p, (a + s) * step, (a + s + sbeat) * step - 0.02, 88))
        if with_melody:
            s = 0
            in_key = list(key.scale)
            while s < spb:
                d = min(int(rng.choice([1, 2, 2, 4, 4, sbeat, 8])), spb - s)
                on_beat = s % sbeat == 0
                cands = [p for p in range(max(voicing[-1] + 1, 62), 90) if p % 12 in (pcs if on_beat else in_key)]
                cands = cands or [p for p in range(62, 90) if p % 12 in pcs]
                p = min(cands, key=lambda q: abs(q - prev_top) + rng.random() * 5)
                prev_top = p
                mel.append(Note(int(p), (a + s) * step, (a + s + d) * step - 0.01, int(rng.integers(80, 105))))
                s += d
        for s in range(0, spb, 2):
            drums.append(Note(42, (a + s) * step, (a + s + 1) * step, 80 if s % sbeat == 0 else 60))
        for s in range(0, spb, sbeat):
            drums.append(Note(36 if (s // sbeat) % 2 == 0 else 38, (a + s) * step, (a + s + 1) * step, 100))
    kprog = 0 if pattern == "test_block" else int(rng.choice(_WIDE_PROGRAMS["keys"]))
    if pattern == "pad":
        kprog = int(rng.choice([48, 49, 50, 52, 89, 19]))
    tracks = [Track("keys", kprog, notes=keys)]
    if bass:
        tracks.append(Track("bass", 33 if pattern == "test_block" else int(rng.choice(_WIDE_PROGRAMS["bass"])),
                            notes=bass))
    if mel:
        tracks.append(Track("melody", int(rng.choice(_WIDE_PROGRAMS["melody"])), notes=mel))
    with_drums = bool(rng.random() < 0.5)
    if with_drums:
        tracks.append(Track("drums", 0, is_drum=True, notes=drums))
    song = Song(tracks=tracks, tempo=tempo, time_signature=(meter.num, meter.den), key=key.name)
    return song, {"key": key, "tempo": tempo, "meter": meter, "chords": chords, "drums": with_drums}


def beat_examples(y: np.ndarray, sr: int, truth: dict, front_end: str = "chroma") -> tuple[np.ndarray, np.ndarray]:
    """Features ``(n, 24)`` and labels ``(n,)`` (index into TEMPLATE_LABELS) per tracked beat."""
    from engines.generate import eval as E

    f = E.audio_features(y, sr, settings={"front_end": front_end})
    beats = np.asarray(f["beats"])
    tb, bb = np.asarray(f["treble_beats"]), np.asarray(f["bass_beats"])
    frame_s = 512 / 22050
    starts = np.r_[0, beats] * frame_s
    ends = np.r_[beats, beats[-1] + 10 ** 6 if len(beats) else 10 ** 6] * frame_s
    meter, tempo = truth["meter"], truth["tempo"]
    bar_s = meter.steps_per_bar * 60.0 / tempo / 4
    played = truth["chords"] * 2
    X, Y = [], []
    for j in range(tb.shape[1]):
        a, e = starts[j], min(ends[j], starts[j] + 2.0)
        ba, be = int(a // bar_s), int((e - 1e-6) // bar_s)
        if ba != be or ba >= len(played):  # a segment across a chord change, or after the end
            continue
        X.append(features(tb[:, j], bb[:, j]))
        Y.append(theory.TEMPLATE_LABELS.index(theory.parse_chord(played[ba]).simplified()))
    return np.array(X, np.float32).reshape(-1, 24), np.array(Y, np.int64)


def features(treble: np.ndarray, bass: np.ndarray) -> np.ndarray:
    """24 values: treble chroma over its norm, bass chroma over its maximum."""
    t = np.asarray(treble, np.float64)
    b = np.asarray(bass, np.float64)
    return np.r_[t / (np.linalg.norm(t) + 1e-9), b / (b.max() + 1e-9)].astype(np.float32)


def rotations(X: np.ndarray) -> np.ndarray:
    """``(n, 24)`` -> ``(n, 12, 24)``: the features with root r rotated to index 0."""
    t, b = X[:, :12], X[:, 12:]
    return np.stack([np.concatenate([np.roll(t, -r, axis=1), np.roll(b, -r, axis=1)], axis=1) for r in range(12)],
                    axis=1)


def _render_examples(args: tuple[int, int, int, str | None, str, str]) -> tuple[np.ndarray, np.ndarray]:
    """Worker: pieces ``start..start+n`` of one seed's stream (kind "reference" or "varied")."""
    from engines.media.midi import read_midi, write_midi
    from engines.media.synth import render_song

    seed, start, n, soundfont, kind, front_end = args
    rng = np.random.default_rng([seed, start])
    maker = varied_piece if kind == "varied" else reference_piece
    Xs, Ys = [np.zeros((0, 24), np.float32)], [np.zeros(0, np.int64)]
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(n):
            song, truth = maker(rng)
            path = write_midi(song, Path(tmp) / f"p{i}.mid")
            y = render_song(read_midi(path), sr=22050, stereo=False, soundfont=soundfont)[0]
            X, Y = beat_examples(y, 22050, truth, front_end)
            Xs.append(X)
            Ys.append(Y)
    return np.concatenate(Xs), np.concatenate(Ys)


def build(n: int, seed: int, soundfont: str | None, *, kind: str = "reference", workers: int = 1,
          front_end: str = "chroma") -> tuple[np.ndarray, np.ndarray]:
    """Beat features and labels of ``n`` rendered pieces, in chunks of 10 over ``workers`` processes."""
    chunks = [(seed, s, min(10, n - s), soundfont, kind, front_end) for s in range(0, n, 10)]
    parts = run_chunks(_render_examples, chunks, workers)
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def run_chunks(fn: Callable[[Any], Any], chunks: list[Any], workers: int) -> list[Any]:
    """``[fn(c) for c in chunks]``, over ``workers`` spawned processes when there are several
    (``fn`` must be a module-level function)."""
    if workers <= 1:
        return [fn(c) for c in chunks]
    import multiprocessing as mp

    with mp.get_context("spawn").Pool(workers) as pool:
        return pool.map(fn, chunks)


def save_model_folder(out: Path, net: Any, cfg: dict, metrics: dict) -> None:
    """``model.safetensors`` (the torch module's state, ``.`` in names as ``_``), ``config.json``
    and ``metrics.json`` in ``out``."""
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    sd = {k.replace(".", "_"): v.detach().contiguous() for k, v in net.state_dict().items()}
    save_file(sd, str(out / "model.safetensors"))
    (out / "config.json").write_text(json.dumps(cfg, indent=2) + "\n", "utf-8")
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", "utf-8")


def augment(X: np.ndarray, Y: np.ndarray, rng: np.random.Generator, copies: int) -> tuple[np.ndarray, np.ndarray]:
    """``copies`` perturbed copies of the beat features: a random gain per pitch class (timbre,
    voicing), additive noise, the bass scaled, dropped (no bass line) or mixed with the treble."""
    out = [X]
    for _ in range(copies):
        t, b = X[:, :12].copy(), X[:, 12:].copy()
        t = t * np.exp(rng.normal(0, 0.25, t.shape)) + np.abs(rng.normal(0, 0.03, t.shape))
        b = b * np.exp(rng.normal(0, 0.3, b.shape)) + np.abs(rng.normal(0, 0.05, b.shape))
        u = rng.random(len(X))[:, None]
        b = np.where(u < 0.1, np.abs(rng.normal(0, 0.05, b.shape)), b)  # no bass
        b = np.where((u >= 0.1) & (u < 0.25), 0.5 * b + 0.5 * t / (t.max(1, keepdims=True) + 1e-9), b)
        out.append(np.concatenate([t / (np.linalg.norm(t, axis=1, keepdims=True) + 1e-9),
                                   b / (b.max(1, keepdims=True) + 1e-9)], axis=1).astype(np.float32))
    return np.concatenate(out), np.tile(Y, copies + 1)


def main(argv: list[str] | None = None) -> int:
    import torch

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pieces", type=int, default=100, help="reference pieces (FluidR3_GM)")
    ap.add_argument("--varied", type=int, default=220, help="varied pieces (FluidR3_GM, varied_piece)")
    ap.add_argument("--augment", type=int, default=3, help="perturbed copies of each training beat")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--cache", type=Path, default=None, help="reuse / store the rendered features (.npz)")
    ap.add_argument("--val-pieces", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1000)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=800)
    ap.add_argument("--out", type=Path, default=MODEL_DIR)
    ap.add_argument("--front-end", choices=("chroma", "salience"), default="salience",
                    help="the audio front end whose chroma the model reads (engines.generate.eval)")
    a = ap.parse_args(argv)
    t0 = time.monotonic()
    torch.manual_seed(0)
    if a.cache is not None and a.cache.is_file():
        z = np.load(a.cache)
        X0, Y0, Xv, Yv = z["X"], z["Y"], z["Xv"], z["Yv"]
    else:
        X0, Y0 = build(a.pieces, a.seed, TRAIN_SOUNDFONT, workers=a.workers, front_end=a.front_end)
        if a.varied:
            Xw, Yw = build(a.varied, a.seed + 1, TRAIN_SOUNDFONT, kind="varied", workers=a.workers,
                           front_end=a.front_end)
            X0, Y0 = np.concatenate([X0, Xw]), np.concatenate([Y0, Yw])
        # other pieces, bundled TimGM6mb
        Xv, Yv = build(a.val_pieces, a.seed + 500, None, workers=a.workers, front_end=a.front_end)
        if a.cache is not None:
            np.savez_compressed(a.cache, X=X0, Y=Y0, Xv=Xv, Yv=Yv)
    X, Y = augment(X0, Y0, np.random.default_rng(a.seed), a.augment) if a.augment else (X0, Y0)
    print(f"{len(Y)} training beats, {len(Yv)} validation beats ({time.monotonic() - t0:.0f} s)")
    R, Rv = torch.from_numpy(rotations(X)), torch.from_numpy(rotations(Xv))
    yt, yv = torch.from_numpy(Y), torch.from_numpy(Yv)
    # label index = quality * 12 + root (TEMPLATE_LABELS order)
    net = torch.nn.Sequential(torch.nn.Linear(24, a.hidden), torch.nn.ReLU(), torch.nn.Linear(a.hidden, len(QUALITIES)))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2, weight_decay=1e-4)

    def logits(Rx: torch.Tensor) -> torch.Tensor:
        out = net(Rx)  # (n, 12 roots, Q)
        return out.permute(0, 2, 1).reshape(len(Rx), -1)  # (n, Q * 12)

    for ep in range(a.epochs):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(logits(R), yt)
        loss.backward()
        opt.step()
        if (ep + 1) % 100 == 0:
            with torch.no_grad():
                acc = float((logits(Rv).argmax(1) == yv).float().mean())
            print(f"  epoch {ep + 1} loss {float(loss.detach()):.3f} val beat accuracy {acc:.3f}", flush=True)
    with torch.no_grad():
        tr_acc = float((logits(R).argmax(1) == yt).float().mean())
        va_acc = float((logits(Rv).argmax(1) == yv).float().mean())
    reads = {"chroma": "36-bin CQT centre bins, harmonics suppressed",
             "salience": "pitch salience model: all semitones folded (treble), lowest sounding note (bass)"}
    cfg = {"hidden": a.hidden, "qualities": QUALITIES, "front_end": a.front_end,
           "features": f"treble chroma / L2 norm, bass chroma / max; {reads[a.front_end]} "
           "(engines.generate.eval.audio_features)"}
    metrics = {"train_pieces": a.pieces, "train_varied_pieces": a.varied, "augment_copies": a.augment, "train_beats": int(len(Y)), "train_soundfont": Path(TRAIN_SOUNDFONT).name,
               "val_pieces": a.val_pieces, "val_beats": int(len(Yv)), "val_soundfont": "TimGM6mb.sf2",
               "train_beat_accuracy": round(tr_acc, 4), "val_beat_accuracy": round(va_acc, 4),
               "seed": a.seed, "epochs": a.epochs, "minutes": round((time.monotonic() - t0) / 60, 1)}
    save_model_folder(a.out, net, cfg, metrics)
    print(json.dumps(metrics))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
