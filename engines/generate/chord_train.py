"""Train the audio chord model of the generation eval (``resources/models/chords``).

    nice -n 10 python -m engines.generate.chord_train --pieces 160 --out DIR   # ~4 min on 2 cores

Experimental: the model is used only with ``AUDIO_SETTINGS["chord_model"] = "learned"`` and
``chord_model_dir = DIR``. It beat the chord templates on validation reference pieces (PCM
0.63 vs 0.47) and on dev prompts (0.50 vs 0.45), but misread plain block chords (Dm as D, Cmaj7
as C) in the tests, so no weights ship and the templates stay the default.

The audio estimators of :mod:`engines.generate.eval` decode chords from beat-synchronous
treble and bass chroma. This script learns their emission model: a root-invariant network
(the same small MLP scores every quality on the chroma rotated to each of the 12 roots, so
one chord seen in C teaches all keys) trained on *reference pieces* (:func:`reference_piece`:
known chords per bar, triads and seventh chords, block / repeated voicings, a root-fifth bass,
a melody with passing notes, drums for half, programs drawn from several GM families)
rendered with FluidR3_GM. Never the generator's output, never the evaluation prompts;
validation: other seeds rendered with TimGM6mb and A320U (``bench/generate_estimators.py``).
It writes safetensors weights, a config and metrics.json to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

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


def beat_examples(y: np.ndarray, sr: int, truth: dict) -> tuple[np.ndarray, np.ndarray]:
    """Features ``(n, 24)`` and labels ``(n,)`` (index into TEMPLATE_LABELS) per tracked beat."""
    from engines.generate import eval as E

    f = E.audio_features(y, sr)
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


def build(n: int, seed: int, soundfont: str | None) -> tuple[np.ndarray, np.ndarray]:
    from engines.media.midi import read_midi, write_midi
    from engines.media.synth import render_song

    rng = np.random.default_rng(seed)
    Xs, Ys = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(n):
            song, truth = reference_piece(rng)
            path = write_midi(song, Path(tmp) / f"p{i}.mid")
            y = render_song(read_midi(path), sr=22050, stereo=False, soundfont=soundfont)[0]
            X, Y = beat_examples(y, 22050, truth)
            Xs.append(X)
            Ys.append(Y)
            if (i + 1) % 20 == 0:
                print(f"  {i + 1}/{n} pieces", flush=True)
    return np.concatenate(Xs), np.concatenate(Ys)


def main(argv: list[str] | None = None) -> int:
    import torch
    from safetensors.torch import save_file

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pieces", type=int, default=160)
    ap.add_argument("--val-pieces", type=int, default=30)
    ap.add_argument("--seed", type=int, default=1000)
    ap.add_argument("--hidden", type=int, default=32)
    ap.add_argument("--epochs", type=int, default=600)
    ap.add_argument("--out", type=Path, default=MODEL_DIR)
    a = ap.parse_args(argv)
    t0 = time.monotonic()
    torch.manual_seed(0)
    X, Y = build(a.pieces, a.seed, TRAIN_SOUNDFONT)
    Xv, Yv = build(a.val_pieces, a.seed + 500, None)  # other pieces, bundled TimGM6mb
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
    a.out.mkdir(parents=True, exist_ok=True)
    sd = {k.replace(".", "_"): v.detach().contiguous() for k, v in net.state_dict().items()}
    save_file(sd, str(a.out / "model.safetensors"))
    cfg = {"hidden": a.hidden, "qualities": QUALITIES, "features": "treble chroma / L2 norm, bass chroma / max; "
           "36-bin CQT centre bins, harmonics suppressed (engines.generate.eval.audio_features)"}
    (a.out / "config.json").write_text(json.dumps(cfg, indent=2) + "\n", "utf-8")
    metrics = {"train_pieces": a.pieces, "train_beats": int(len(Y)), "train_soundfont": Path(TRAIN_SOUNDFONT).name,
               "val_pieces": a.val_pieces, "val_beats": int(len(Yv)), "val_soundfont": "TimGM6mb.sf2",
               "train_beat_accuracy": round(tr_acc, 4), "val_beat_accuracy": round(va_acc, 4),
               "seed": a.seed, "epochs": a.epochs, "minutes": round((time.monotonic() - t0) / 60, 1)}
    (a.out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", "utf-8")
    print(json.dumps(metrics))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
