"""How good are the *audio* estimators of the generation eval on audio whose truth is known?

    nice -n 10 python bench/generate_estimators.py                 # 60 reference pieces
    nice -n 10 python bench/generate_estimators.py --n 20 --seed 3

The control metrics of ``bench/generate_eval.py`` are computed from rendered audio with
audio-only estimators (:func:`engines.generate.eval.estimate_from_audio`). A low score there
can be the generator's fault or the estimator's. This bench separates the two: it writes
simple *reference* MIDI pieces whose key, tempo, meter and chord per bar are known exactly
(:func:`engines.generate.chord_train.reference_piece`: block chords, a root/fifth bass, a
chord-tone melody with passing notes and, for half of them, a drum kit; triads and seventh
chords; major and minor; cadential progressions that state their key), renders them with the bundled GM SoundFont and scores the estimators against
that truth with the same metrics. An estimator that fails here is the problem.

Splits: the estimator settings were tuned on seed 7 rendered with FluidR3_GM
(``--seed 7 --soundfont /usr/share/sounds/sf2/FluidR3_GM.sf2``) and on dev prompts (seeds 1
and 5 of ``bench/generate_eval.make_prompts``); the chord model trains on seeds 1000+ and the
pitch salience model on seeds 3000+, both with FluidR3_GM. The default run (seed 2024, bundled TimGM6mb SoundFont) and ``--soundfont
/usr/share/sounds/sf2/A320U.sf2`` are validation; the 100 evaluation prompts were never used
for tuning.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engines.generate import eval as E  # noqa: E402
from engines.generate.chord_train import reference_piece  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=60)
    ap.add_argument("--seed", type=int, default=2024)
    ap.add_argument("--soundfont", default=None, help="render with this .sf2 (default: the bundled GM one)")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                    help="override an entry of engines.generate.eval.AUDIO_SETTINGS")
    ap.add_argument("--verbose", action="store_true")
    a = ap.parse_args(argv)
    from engines.media.midi import read_midi, write_midi
    from engines.media.synth import render_song

    settings: dict[str, float | str] = {}
    for kv in a.set:
        k, _, v = kv.partition("=")
        if k not in E.AUDIO_SETTINGS:
            ap.error(f"unknown setting {k!r}")
        settings[k] = v if isinstance(E.AUDIO_SETTINGS[k], str) else float(v)
    rng = np.random.default_rng(a.seed)
    t0 = time.monotonic()
    audio_rows, midi_rows = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(a.n):
            song, truth = reference_piece(rng)
            path = write_midi(song, Path(tmp) / f"ref{i}.mid")
            y = render_song(read_midi(path), sr=22050, stereo=False, soundfont=a.soundfont)
            est = E.estimate_from_audio(y[0], 22050, settings=settings)
            ctl = {k: truth[k] for k in ("tempo", "key", "chords", "meter")}
            row = E.control_scores(est, **ctl)
            audio_rows.append(row)
            midi_rows.append(E.control_scores(E.estimate_from_song(read_midi(path)), **ctl))
            if a.verbose:
                print(f"{i:3d} {truth['tempo']:5.0f}->{est.tempo:6.1f} {truth['key'].name:4s}->{est.key.name:4s} "
                      f"{truth['meter']} bc{est.beats_per_bar} drums={truth['drums']:d} | "
                      f"{' '.join(E.target_labels(truth['chords']))} | {' '.join(est.chords)}", flush=True)
    keys = list(audio_rows[0])
    audio = {k: float(np.nanmean([r[k] for r in audio_rows])) for k in keys}
    midi = {k: float(np.nanmean([r[k] for r in midi_rows])) for k in keys}
    sf = Path(a.soundfont).name if a.soundfont else "bundled GM SoundFont"
    print(f"{a.n} reference pieces (seed {a.seed}, {sf}), {time.monotonic() - t0:.0f} s")
    print("| metric | audio estimators | MIDI estimators |\n| --- | --- | --- |")
    for k in keys:
        print(f"| {k} | {audio[k]:.3f} | {midi[k]:.3f} |")
    print(json.dumps({"audio": audio, "midi": midi}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
