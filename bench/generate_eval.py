"""Control adherence, musical statistics and arrangement quality of the generate engine.

    nice -n 10 python bench/generate_eval.py                  # 100 prompts, shipped model
    nice -n 10 python bench/generate_eval.py --n 10 --model debug   # quick check
    nice -n 10 python bench/generate_eval.py --update-card    # also write metrics.json + MODEL_CARD.md
    nice -n 10 python bench/generate_eval.py --soundfont /usr/share/sounds/sf2/A320U.sf2   # other timbres

Prompts are templated from a vocabulary and state key, tempo, meter and chords; their style
words (``HELD_OUT_STYLE_WORDS``) were never used when tuning the style vocabulary, so the
MiniLM matching is exercised on unseen words. Metric definitions: engines/generate/eval.py.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engines.generate import data as D  # noqa: E402
from engines.generate import eval as E  # noqa: E402
from engines.generate import theory  # noqa: E402
from engines.generate.engine import MODELS_DIR, Engine, GenerateRequest  # noqa: E402

HELD_OUT_STYLE_WORDS = ["downtempo", "synthpop", "neo soul", "americana", "city pop", "new age", "post rock",
                        "trip hop", "lounge", "chamber pop", "yacht rock", "shoegaze", "motown", "celtic reel",
                        "baroque pop", "video game", "lullaby", "march", "tango", "gospel choir"]
MOOD_WORDS = ["wistful", "sunny", "brooding", "tender", "triumphant", "nostalgic", "playful", "hopeful"]
DEGREES_MAJOR = [["I", "V", "vi", "IV"], ["I", "IV", "V", "I"], ["vi", "IV", "I", "V"], ["I", "vi", "ii", "V"],
                 ["ii", "V", "I", "I"], ["I", "iii", "IV", "V"]]
DEGREES_MINOR = [["i", "VI", "III", "VII"], ["i", "iv", "V", "i"], ["i", "VII", "VI", "V"], ["i", "iv", "VII", "III"]]
_ROMAN = {"I": (0, ""), "ii": (2, "m"), "iii": (4, "m"), "IV": (5, ""), "V": (7, ""), "vi": (9, "m"),
          "i": (0, "m"), "III": (3, ""), "iv": (5, "m"), "VI": (8, ""), "VII": (10, "")}
METERS = ["4/4"] * 6 + ["3/4"] * 3 + ["6/8"]


def make_prompts(n: int, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        minor = bool(rng.random() < 0.5)
        tonic = int(rng.integers(12))
        key = theory.Key(tonic, "minor" if minor else "major")
        degs = (DEGREES_MINOR if minor else DEGREES_MAJOR)[int(rng.integers(4 if minor else 6))]
        flats = tonic in (1, 3, 5, 8, 10) or (minor and tonic in (0, 2, 5, 7))
        chords = [theory.pc_name(tonic + _ROMAN[d][0], flats=flats) + _ROMAN[d][1] for d in degs]
        tempo = int(rng.integers(60, 161))
        meter = METERS[int(rng.integers(len(METERS)))]
        style = HELD_OUT_STYLE_WORDS[i % len(HELD_OUT_STYLE_WORDS)]
        mood = MOOD_WORDS[int(rng.integers(len(MOOD_WORDS)))]
        mode_word = "minor" if minor else "major"
        text = (f"{mood} {style} in {key.name.rstrip('m')} {mode_word}, {tempo} bpm, {meter}, "
                f"chords {' '.join(chords)}")
        out.append({"text": text, "key": key, "tempo": tempo, "meter": theory.parse_meter(meter),
                    "chords": chords, "style_word": style})
    return out


def mean_dict(rows: list[dict]) -> dict:
    keys = rows[0].keys() if rows else []
    return {k: float(np.nanmean([r[k] for r in rows])) for k in keys}


def run_controls(eng: Engine, prompts: list[dict], bars: int, out: Path, soundfont: str | None = None
                 ) -> tuple[dict, dict, list]:
    from engines.media.audio import load_audio
    from engines.media.midi import read_midi

    audio_rows, midi_rows, gen_notes = [], [], []
    for i, p in enumerate(prompts):
        r = eng.generate(GenerateRequest(text=p["text"], bars=bars, seed=i, out_dir=str(out / "prompts"),
                                         stems=False, soundfont=soundfont))
        y = load_audio(r.wav, sr=22050, mono=True)
        a = E.estimate_from_audio(y, 22050)
        audio_rows.append(E.control_scores(a, tempo=p["tempo"], key=p["key"], chords=p["chords"], meter=p["meter"]))
        song = read_midi(r.midi)
        m = E.estimate_from_song(song)
        midi_rows.append(E.control_scores(m, tempo=p["tempo"], key=p["key"], chords=p["chords"], meter=p["meter"]))
        bar_s = p["meter"].steps_per_bar * 60 / p["tempo"] / 4
        gen_notes.append(([(n.pitch, n.start, n.end) for t in song.tracks if not t.is_drum for n in t.notes],
                          p["key"], bar_s))
        if (i + 1) % 10 == 0:
            print(f"  {i + 1}/{len(prompts)} audio {json.dumps({k: round(v, 2) for k, v in mean_dict(audio_rows).items()})}",
                  flush=True)
    return mean_dict(audio_rows), mean_dict(midi_rows), gen_notes


def corpus_stats(held: list[D.Piece], max_bars: int = 16) -> list:
    out = []
    for pc in held:
        spb = pc.meter.steps_per_bar
        step_s = 0.125  # 120 bpm 16ths; only ratios matter
        notes = [(int(p), s * step_s, e * step_s) for _, p, s, e in pc.notes if s < max_bars * spb]
        out.append((notes, pc.key, spb * step_s))
    return out


def summarise_stats(items: list) -> dict:
    st = [E.music_stats(n, k, b) for n, k, b in items if n]
    return {"pc": np.mean([s["pc"] for s in st], axis=0), "iv": np.mean([s["iv"] for s in st], axis=0),
            "in_scale": float(np.nanmean([s["in_scale"] for s in st])),
            "polyphony": float(np.mean([s["polyphony"] for s in st])),
            "density": float(np.mean([s["density"] for s in st]))}


def run_arrangement(eng: Engine, held: list[D.Piece], out: Path, n: int) -> dict:
    from engines.media.midi import Note, Song, Track, read_midi, write_midi

    in_key, agree = [], []
    for i, pc in enumerate(held[:n]):
        spb = pc.meter.steps_per_bar
        T = min(pc.n_steps, 8 * spb)
        tempo = 100.0
        step_s = 60 / tempo / 4
        mel = [Note(int(p), s * step_s, e * step_s, 90) for r, p, s, e in pc.notes if r == 0 and s < T]
        if len(mel) < 4:
            continue
        src = write_midi(Song(tracks=[Track(name="melody", program=73, notes=mel)], tempo=tempo,
                              time_signature=(pc.meter.num, pc.meter.den)), out / "arr_in" / f"m{i}.mid")
        r = eng.generate(GenerateRequest(midi=str(src), style="classical", seed=i, out_dir=str(out / "arr"),
                                         render=False))
        song = read_midi(r.midi)
        gen = [n for t in song.tracks if t.name != "melody" and not t.is_drum for n in t.notes]
        mk = theory.estimate_key(np.bincount([n.pitch % 12 for n in mel], minlength=12).astype(float))[0]
        if gen:
            in_key.append(float(np.mean([n.pitch % 12 in mk.scale for n in gen])))
        bar_s = spb * step_s
        hits = []
        for b in range(T // spb):
            h = np.zeros(12)
            for n in gen:
                ov = min(n.end, (b + 1) * bar_s) - max(n.start, b * bar_s)
                if ov > 0:
                    h[n.pitch % 12] += ov
            if h.sum() == 0:
                continue
            est = theory.majmin(theory.match_chord(h)[0])
            truth_pcs = pc.chroma[b * spb]
            if truth_pcs.sum() == 0:
                continue
            truth = theory.majmin(theory.match_chord(truth_pcs)[0])
            hits.append(est == truth)
        if hits:
            agree.append(float(np.mean(hits)))
    return {"arr_in_key": float(np.mean(in_key)) if in_key else float("nan"),
            "arr_chord_agreement": float(np.mean(agree)) if agree else float("nan"), "arr_pieces": len(agree)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--bars", type=int, default=8)
    ap.add_argument("--arrangements", type=int, default=20)
    ap.add_argument("--out", type=Path, default=Path("bench/out/generate"))
    ap.add_argument("--update-card", action="store_true")
    ap.add_argument("--soundfont", default=None,
                    help="render with this .sf2 instead of the bundled one (the audio estimators' models never "
                         "saw A320U.sf2)")
    a = ap.parse_args(argv)
    if a.soundfont and a.update_card:
        ap.error("--update-card records the default rendering only")
    t0 = time.monotonic()
    eng = Engine.from_pretrained(a.model)
    prompts = make_prompts(a.n)
    print(f"{len(prompts)} prompts, e.g. {prompts[0]['text']!r}")
    audio, midi, gen_notes = run_controls(eng, prompts, a.bars, a.out, a.soundfont)
    pieces = D.load_pieces()
    held = [p for p in pieces if D.is_held_out(p.name)]
    ref = summarise_stats(corpus_stats(held))
    gen = summarise_stats(gen_notes)
    stats = {"pc_hist_overlap": E.histogram_overlap(ref["pc"], gen["pc"]),
             "interval_hist_overlap": E.histogram_overlap(ref["iv"], gen["iv"]),
             "in_scale_gen": gen["in_scale"], "in_scale_corpus": ref["in_scale"],
             "polyphony_gen": gen["polyphony"], "polyphony_corpus": ref["polyphony"],
             "notes_per_bar_gen": gen["density"], "notes_per_bar_corpus": ref["density"]}
    arr = run_arrangement(eng, held, a.out, a.arrangements)
    result = {**{f"audio_{k}": v for k, v in audio.items()}, **{f"midi_{k}": v for k, v in midi.items()},
              **stats, **arr, "prompts": len(prompts), "bars": a.bars,
              "minutes": round((time.monotonic() - t0) / 60, 1)}
    print("\n| metric | from audio | from MIDI | text2midi (MidiCaps) |\n| --- | --- | --- | --- |")
    for k in ("TB", "TBT", "CK", "CKD", "PCM", "ECM", "CMAO", "CMAOMM", "BC", "BCT"):
        ref_v = E.TEXT2MIDI_MIDICAPS.get(k)
        print(f"| {k} | {audio[k]:.3f} | {midi[k]:.3f} | {'' if ref_v is None else f'{ref_v:.3f}'} |")
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in result.items()}, indent=1))
    if a.update_card and a.model == "default":
        from engines.generate.train import write_model_card

        (MODELS_DIR / "metrics.json").write_text(json.dumps(result, indent=2) + "\n", "utf-8")
        train_stats = json.loads((MODELS_DIR / "training.json").read_text("utf-8"))
        write_model_card(MODELS_DIR, train_stats, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
