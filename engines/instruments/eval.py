"""The evaluation protocol of "Show Me the Instruments" (ICASSP 2023), on our data.

* **Unseen instruments** (the paper's protocol): ``n`` melodic presets of the SoundFont kept
  out of training (sf_GMbank); mixtures of 2-6 of them with random gains; the library is
  those ``n`` instruments, each embedded by the Single-Instrument Encoder from the probe
  phrases the app indexes presets with. Every "present" slot of the Multi-Instrument Encoder
  (at least one per mixture) retrieves its nearest instrument; F1 (macro and weighted by
  support) over the multi-label predictions and mAP from the score of each library
  instrument (its best cosine over present slots).
* **Grown library**: the same mixtures, the library grown to every preset of every
  SoundFont we have (train, val and test); metrics over the test instruments, plus micro
  precision counting every retrieved instrument.
* **By family**: per GM family, the mean F1 of its instruments and how often a part's family
  is among the retrieved instruments' families.
* **Single-encoder EER**: verification of fresh phrases of the unseen instruments.
* **Real recordings** (:func:`evaluate_real`): mixtures of real recorded samples (Debian's
  sonic-pi-samples), library = those samples indexed through :class:`InstrumentLibrary`.

``python -m engines.instruments.eval [--model default] [--real] [--json FILE]``
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from engines.instruments import data as D

#: the paper's best model on Nlakh's 53 unseen instruments (Table 2), and the single encoder's EER
PAPER = {"f1_macro": 0.694, "f1_weighted": 0.712, "map_macro": 0.752, "map_weighted": 0.760, "eer": 0.026}

REAL_SAMPLE_FOLDERS = ("/usr/share/sonic-pi/samples",)


# --------------------------------------------------------------------------- metrics

def _ap(scores: np.ndarray, truth: np.ndarray) -> float:
    order = np.argsort(-scores, kind="stable")
    t = truth[order].astype(bool)
    if not t.any():
        return float("nan")
    hits = np.cumsum(t)
    return float(np.mean(hits[t] / (np.flatnonzero(t) + 1)))


def multilabel_metrics(pred: np.ndarray, score: np.ndarray, truth: np.ndarray,
                       classes: np.ndarray | None = None) -> dict[str, Any]:
    """F1 and mAP, macro and weighted by support, over ``classes`` (columns) with support."""
    cols = np.arange(truth.shape[1]) if classes is None else np.asarray(classes)
    support = truth[:, cols].sum(axis=0)
    keep = support > 0
    cols, support = cols[keep], support[keep]
    tp = (pred[:, cols] & truth[:, cols]).sum(axis=0)
    fp = (pred[:, cols] & ~truth[:, cols]).sum(axis=0)
    fn = (~pred[:, cols] & truth[:, cols]).sum(axis=0)
    f1 = np.where(2 * tp + fp + fn > 0, 2 * tp / np.maximum(1, 2 * tp + fp + fn), 0.0)
    ap = np.array([_ap(score[:, c], truth[:, c]) for c in cols])
    w = support / support.sum()
    all_tp = int((pred & truth).sum())
    return {
        "f1_macro": float(f1.mean()), "f1_weighted": float((f1 * w).sum()),
        "map_macro": float(np.nanmean(ap)), "map_weighted": float(np.nansum(ap * w)),
        "precision_micro": all_tp / max(1, int(pred.sum())), "recall_micro": all_tp / max(1, int(truth.sum())),
        "mean_predicted": float(pred.sum(axis=1).mean()), "mean_true": float(truth.sum(axis=1).mean()),
        "per_class_f1": dict(zip(cols.tolist(), f1.tolist(), strict=True)),
    }


def predict(engine: Any, waves: np.ndarray, library: np.ndarray, *, threshold: float = 0.5
            ) -> tuple[np.ndarray, np.ndarray]:
    """(predicted (M, L) bool, score (M, L)) for mixtures ``waves`` against library rows."""
    emb, prob, _ = engine.encode_mixtures(waves)
    pred = np.zeros((len(waves), len(library)), bool)
    score = np.zeros((len(waves), len(library)), np.float32)
    for m in range(len(waves)):
        on = np.flatnonzero(prob[m] >= threshold)
        if on.size == 0:
            on = np.array([int(np.argmax(prob[m]))])
        sims = emb[m, on] @ library.T
        score[m] = sims.max(axis=0)
        pred[m, sims.argmax(axis=1)] = True
    return pred, score


def eer(scores: np.ndarray, same: np.ndarray) -> float:
    from engines.instruments.train import eer as _eer

    return _eer(scores, same)


# --------------------------------------------------------------------------- data

def test_instruments(n: int = 53, seed: int = 0) -> list[D.Preset]:
    """``n`` melodic presets (distinct names) of the held-out SoundFont."""
    presets = [p for p in D.list_presets("sf_gmbank") if not p.is_drum]
    if not presets:
        raise FileNotFoundError("sf_GMbank.sf2 is missing: apt-get install csound-soundfont")
    seen, unique = set(), []
    for p in presets:
        key = p.name.lower().replace(" ", "")
        if key not in seen:
            seen.add(key)
            unique.append(p)
    rng = np.random.default_rng(seed)
    idx = sorted(rng.choice(len(unique), size=min(n, len(unique)), replace=False).tolist())
    return [unique[i] for i in idx]


def library_of(engine: Any, presets: list[D.Preset]) -> np.ndarray:
    """Unit embeddings of presets from the same probe phrases the app indexes presets with."""
    by_sf: dict[str, list[int]] = defaultdict(list)
    for i, p in enumerate(presets):
        by_sf[p.soundfont].append(i)
    emb = np.zeros((len(presets), engine.cfg.emb_dim), np.float32)
    for sf, idx in by_sf.items():
        path = str(D.soundfont_path(sf))
        clips = D.render_probes(path, [(presets[i].bank, presets[i].program, presets[i].name) for i in idx])
        for i, c in zip(idx, clips, strict=True):
            c = np.asarray(c, np.float32)
            loud = np.max(np.abs(c), axis=1) > 1e-4
            emb[i] = engine.embed_instrument(c[loud] if loud.any() else c)
    return emb


def mixtures(stems: dict[str, np.ndarray], n_classes: int, n: int, seed: int,
             kmin: int = 2, kmax: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """``n`` mixtures of ``kmin..kmax`` distinct instruments from rendered ``stems``."""
    rng = np.random.default_rng(seed)
    by = defaultdict(list)
    for i, lab in enumerate(stems["labels"]):
        by[int(lab)].append(i)
    labs_ok = np.array(sorted(by))
    waves = np.zeros((n, D.SEG), np.float32)
    truth = np.zeros((n, n_classes), bool)
    for m in range(n):
        k = int(rng.integers(kmin, min(kmax, len(labs_ok)) + 1))
        labs = rng.choice(labs_ok, size=k, replace=False)
        clips = [int(rng.choice(by[int(lab)])) for lab in labs]
        waves[m] = D.mix(stems["waves"][clips], rng)
        truth[m, labs] = True
    return waves, truth


# --------------------------------------------------------------------------- protocols

def evaluate(engine: Any, *, seed: int = 0, n_instruments: int = 53, n_mixtures: int = 300,
             grown: bool = True) -> dict[str, Any]:
    """Every SoundFont-based number of the model card (see the module docstring)."""
    t0 = time.time()
    test = test_instruments(n_instruments, seed)
    lib = library_of(engine, test)
    stems = D.render_set(test, 4, seed + 100)
    waves, truth = mixtures(stems, len(test), n_mixtures, seed + 200)
    pred, score = predict(engine, waves, lib)
    unseen = multilabel_metrics(pred, score, truth)
    # single-encoder EER on fresh phrases of the unseen instruments
    e = engine.embed_clips(stems["waves"].astype(np.float32))
    sims = e @ e.T
    iu = np.triu_indices(len(e), k=1)
    labels = stems["labels"]
    single_eer = eer(sims[iu], (labels[:, None] == labels[None, :])[iu])
    # by family
    fams = [D.family(p.bank, p.program, p.name) for p in test]
    fam_f1: dict[str, list[float]] = defaultdict(list)
    for c, f1 in unseen["per_class_f1"].items():
        fam_f1[fams[c]].append(f1)
    fam_hit: dict[str, list[float]] = defaultdict(list)
    for m in range(len(waves)):
        got = {fams[c] for c in np.flatnonzero(pred[m])}
        for c in np.flatnonzero(truth[m]):
            fam_hit[fams[c]].append(float(fams[c] in got))
    by_family = {f: {"instruments": len(v), "f1": round(float(np.mean(v)), 3),
                     "family_hit_rate": round(float(np.mean(fam_hit[f])), 3) if fam_hit[f] else None}
                 for f, v in sorted(fam_f1.items())}
    out: dict[str, Any] = {
        "protocol": {"instruments": len(test), "mixtures": n_mixtures, "instruments_per_mixture": "2-6",
                     "seconds": D.SEG_SECONDS, "test_soundfont": "sf_GMbank.sf2 (csound-soundfont)", "seed": seed},
        "unseen": _round({k: v for k, v in unseen.items() if k != "per_class_f1"}
                         | {"chance_map": float(truth.mean())}),
        "single_encoder_eer": round(single_eer, 4),
        "by_family": by_family,
        "paper": PAPER,
    }
    if grown:
        everything: list[D.Preset] = []
        for name in D.SOUNDFONTS:
            everything += D.list_presets(name)
        test_keys = {p.key: i for i, p in enumerate(test)}
        others = [p for p in everything if p.key not in test_keys]
        lib_all = np.concatenate([lib, library_of(engine, others)])
        pred_g, score_g = predict(engine, waves, lib_all)
        truth_g = np.zeros((len(waves), len(lib_all)), bool)
        truth_g[:, :len(test)] = truth
        g = multilabel_metrics(pred_g, score_g, truth_g, classes=np.arange(len(test)))
        out["grown"] = _round({k: v for k, v in g.items() if k != "per_class_f1"}) | {"library": len(lib_all)}
    out["seconds"] = round(time.time() - t0, 1)
    return out


def evaluate_real(engine: Any, *, folders: tuple[str, ...] = REAL_SAMPLE_FOLDERS, seed: int = 0,
                  n_mixtures: int = 200, kmin: int = 2, kmax: int = 4) -> dict[str, Any]:
    """Mixtures of real recorded samples; the library is those samples (indexed by the app)."""
    from engines.core.home import DataHome
    from engines.instruments.library import InstrumentLibrary
    from engines.media.audio import load_audio

    folders = tuple(f for f in folders if Path(f).is_dir())
    if not folders:
        raise FileNotFoundError("no real samples: apt-get install sonic-pi-samples")
    with tempfile.TemporaryDirectory() as tmp:
        lib = InstrumentLibrary(DataHome(tmp), engine)
        report = lib.add(list(folders))
        rows = lib.con.execute("SELECT id, sample_path, embedding FROM instruments WHERE kind='sample' ORDER BY id"
                               ).fetchall()
        paths = [r["sample_path"] for r in rows]
        emb = np.stack([np.frombuffer(r["embedding"], np.float32) for r in rows])
        lib.close()
    rng = np.random.default_rng(seed)
    clips = np.zeros((len(paths), D.SEG), np.float32)
    for i, p in enumerate(paths):
        y = load_audio(p, sr=engine.sr, mono=True, max_duration=D.SEG_SECONDS)
        clips[i, :len(y)] = y[:D.SEG] / max(1e-6, float(np.max(np.abs(y))))
    waves = np.zeros((n_mixtures, D.SEG), np.float32)
    truth = np.zeros((n_mixtures, len(paths)), bool)
    for m in range(n_mixtures):
        k = int(rng.integers(kmin, kmax + 1))
        pick = rng.choice(len(paths), size=k, replace=False)
        waves[m] = D.mix(clips[pick], rng)
        truth[m, pick] = True
    pred, score = predict(engine, waves, emb)
    res = multilabel_metrics(pred, score, truth)
    # chance: a random pick of as many instruments as predicted
    return {"folders": list(folders), "samples": len(paths), "skipped": len(report.skipped), "mixtures": n_mixtures,
            "instruments_per_mixture": f"{kmin}-{kmax}",
            **_round({k: v for k, v in res.items() if k != "per_class_f1"}),
            "chance_map": round(float(truth.mean()), 4)}


def _round(d: dict[str, Any]) -> dict[str, Any]:
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in d.items()}


# --------------------------------------------------------------------------- model card

def write_model_card(folder: str | Path, *, seed: int = 0, real: bool = True) -> dict[str, Any]:
    """Evaluate the model in ``folder`` and write ``metrics.json`` and ``MODEL_CARD.md`` there."""
    from engines.instruments.engine import Engine

    folder = Path(folder)
    engine = Engine.from_pretrained(folder)
    metrics = evaluate(engine, seed=seed)
    if real:
        try:
            metrics["real"] = evaluate_real(engine, seed=seed)
        except FileNotFoundError as exc:
            metrics["real"] = {"skipped": str(exc)}
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
    (folder / "MODEL_CARD.md").write_text(model_card(engine, metrics))
    return metrics


def _training_text(ex: dict[str, Any]) -> str:
    """How the shipped weights were trained, from what ``config.json`` recorded."""
    if "mel cache" in str(ex.get("data", "")):
        ft = (f" Then the Multi-Instrument Encoder was fine-tuned on real audio mixtures for "
              f"{ex['finetune_audio_steps']} steps (batch {ex.get('finetune_audio_batch')}, "
              f"{ex.get('finetune_audio_minutes')} min on CPU): `python -m engines.instruments.train "
              f"--finetune-audio {ex['finetune_audio_steps']} --out FOLDER` (audio set: `python -m "
              f"engines.instruments.data --out data/instruments`).") if ex.get("finetune_audio_steps") else ""
        return (f"Trained on a GPU ({ex.get('gpu') or ex.get('device')}) from a cache of quantised mel power "
                f"({ex.get('per_instrument')} phrases per instrument; 1 dB steps, ~8 KB a clip): "
                f"`python -m engines.instruments.data --mels --out data/instruments_mels --per-instrument "
                f"{ex.get('per_instrument')}`, then `bash bench/gpu_train_instruments.sh` "
                f"(`python -m engines.instruments.train --mels --data data/instruments_mels --batch "
                f"{ex.get('batch')} --single-steps {ex.get('single_steps')} --multi-steps {ex.get('multi_steps')}`; "
                f"{ex.get('train_minutes')} min; the same command runs on a CPU, many times slower). "
                "Mixtures were summed in the mel power domain, which ignores the phase cross-terms of a "
                "real mix; a spectral tilt of ±4 dB and one masked frequency band augment the single "
                "encoder; each encoder keeps its checkpoint with the best score on the validation "
                "instruments (EER; matched cosine on validation mixtures)." + ft)
    return (f"Reproduce: `nice -n 10 python -m engines.instruments.train --seed {ex.get('seed', 0)}` (steps: "
            f"single {ex.get('single_steps')}, multi {ex.get('multi_steps')}, batch {ex.get('batch')}; took "
            f"{ex.get('train_minutes')} min on a shared 2-core CPU, device {ex.get('device')}).")


def model_card(engine: Any, m: dict[str, Any]) -> str:
    cfg = engine.cfg
    ex = cfg.extra
    u, g = m["unseen"], m.get("grown", {})
    r = m.get("real", {})
    fam = "\n".join(f"| {f} | {v['instruments']} | {v['f1']:.3f} | {v['family_hit_rate']} |"
                    for f, v in m["by_family"].items())
    size = sum(p.numel() for p in engine.model.parameters())
    real_rows = (f"| real samples (sonic-pi, {r.get('samples')} samples, {r.get('instruments_per_mixture')} per mix)"
                 f" | {r.get('f1_macro')} | {r.get('f1_weighted')} | {r.get('map_macro')} | {r.get('map_weighted')} "
                 f"| — |\n") if "f1_macro" in r else ""
    return f"""# Instrument retrieval encoders (`{cfg.name}`)

Two small CNNs after "Show Me the Instruments: Musical Instrument Retrieval from Mixture
Audio" (ICASSP 2023), trained from scratch on data we render offline. Used by Cue Studio's
instruments engine (`engines/instruments`) to find the user's SoundFont presets and samples
that sound like the instruments playing in a song.

* **Single-Instrument Encoder**: log-mel (16 kHz, {cfg.n_mels} mels, hop {cfg.hop}) → 4 conv
  blocks {list(cfg.single_channels)} → mean/max pooling → 256 → **{cfg.emb_dim}-d embedding**
  (L2-normalised penultimate layer) → cosine (AM-softmax, s=16, m=0.2) classifier over
  {cfg.n_classes} training instruments.
* **Multi-Instrument Encoder**: the same front end, conv blocks {list(cfg.multi_channels)},
  → {cfg.slots} slots × ({cfg.emb_dim}-d embedding + "present" logit + register). Trained
  with a permutation-invariant loss: Hungarian matching (cosine distance) of slots to the
  single-encoder embeddings of the stems, BCE on "present", L1 on each part's median pitch.
* {size / 1e6:.2f} M parameters in all; float32 safetensors; 3 s windows.

## Training data (built by `engines/instruments/data.py`, never committed)

Single-instrument phrases (scales, arpeggios, held notes and chords, repeated notes; drum
grooves for kits) in each preset's usable range with random tempo, velocity and note
length, rendered with tinysoundfont at 16 kHz from FluidR3_GM, TimGM6mb and A320U.
{ex.get('train_instruments')} instruments (presets) for training ({ex.get('train_clips')} phrases of 3 s),
{ex.get('val_instruments')} other presets of those SoundFonts for validation, and the whole of
**sf_GMbank** (csound-soundfont, 329 presets) kept out for testing. Mixtures of 2–6
instruments are summed on the fly with random gains (−12…0 dB).

{_training_text(ex)}

## Evaluation (`python -m engines.instruments.eval`, seed {m['protocol']['seed']})

{m['protocol']['instruments']} melodic presets of sf_GMbank never heard in training, {m['protocol']['mixtures']}
mixtures of 2–6 of them (3 s); retrieval as in the paper.

| setting | F1 macro | F1 weighted | mAP macro | mAP weighted | EER (single) |
| --- | --- | --- | --- | --- | --- |
| paper, Nlakh, 53 unseen instruments | {PAPER['f1_macro']} | {PAPER['f1_weighted']} | {PAPER['map_macro']} | {PAPER['map_weighted']} | {PAPER['eer']} |
| ours, library = the {m['protocol']['instruments']} unseen instruments | {u['f1_macro']} | {u['f1_weighted']} | {u['map_macro']} | {u['map_weighted']} | {m['single_encoder_eer']} |
| ours, library grown to {g.get('library')} presets | {g.get('f1_macro')} | {g.get('f1_weighted')} | {g.get('map_macro')} | {g.get('map_weighted')} | — |
{real_rows}
Chance level: mAP {u.get('chance_map', u['mean_true'] / m['protocol']['instruments']):.3f} with the
{m['protocol']['instruments']}-instrument library (a random ranking), {r.get('chance_map', '—')} on the real samples. Per-instrument
AP does not depend on the other library entries, so mAP is the same with the grown library;
F1 (the nearest instrument per slot) is what growth hurts. **These numbers are below the
paper's** (a {size / 1e6:.1f} M-parameter model, ~{ex.get('train_instruments')} training instruments rendered
from three GM SoundFonts; see how the data differs below).

Counting: {u['mean_predicted']} instruments predicted per mixture on average for {u['mean_true']} present;
micro precision {u['precision_micro']}, recall {u['recall_micro']} (grown library: precision
{g.get('precision_micro')}, recall {g.get('recall_micro')}).

By GM family (unseen setting; "family hit" = a part's family is among the retrieved
instruments' families):

| family | instruments | mean F1 | family hit rate |
| --- | --- | --- | --- |
{fam}

## How our data differs from Nlakh

Nlakh renders NSynth's one-note samples (953 instruments, 4 s notes, MIDI from Slakh) into
phrases; ours renders whole GM SoundFont presets with tinysoundfont, ~{ex.get('train_instruments')}
training instruments instead of ~900, 3 s instead of 4+ s, synthetic phrases (no Slakh MIDI),
16 kHz, no effects or mastering; GM SoundFonts share programs, so unseen test presets often
have a close cousin (same GM program, other samples) in training — and in the grown library.
Drum kits are trained on but not evaluated (NSynth has none). Numbers are therefore not
directly comparable with the paper's.

## Intended use and limits

Ranking a user's presets and samples by timbre similarity to parts of a mixture (and to one
instrument: "more like this"). Not an instrument classifier; the "present" count is
approximate, dense mixes and effects-heavy productions are harder than these renders, and a
small model trained on GM renders is still well below the paper's numbers. Licences of the training
SoundFonts: FluidR3_GM (MIT), TimGM6mb (GPL-2), A320U (denemo-data, GPL); sf_GMbank (public
domain) for testing only.
"""


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Evaluate the instrument encoders")
    ap.add_argument("--model", default="default", help='"default", "debug" or a folder')
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--mixtures", type=int, default=300)
    ap.add_argument("--no-grown", action="store_true")
    ap.add_argument("--real", action="store_true", help="also mixtures of real recorded samples")
    ap.add_argument("--write-card", action="store_true", help="write metrics.json and MODEL_CARD.md")
    ap.add_argument("--json", help="write the metrics here")
    args = ap.parse_args(argv)
    from engines.instruments import MODEL_DIR
    from engines.instruments.engine import Engine

    if args.write_card:
        metrics = write_model_card(MODEL_DIR if args.model == "default" else args.model, seed=args.seed)
    else:
        engine = Engine.from_pretrained(args.model)
        metrics = evaluate(engine, seed=args.seed, n_mixtures=args.mixtures, grown=not args.no_grown)
        if args.real:
            metrics["real"] = evaluate_real(engine, seed=args.seed)
    text = json.dumps(metrics, indent=1)
    if args.json:
        Path(args.json).write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
