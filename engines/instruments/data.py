"""Nlakh-like data built offline from General MIDI SoundFonts.

Single-instrument phrases (scales, arpeggios, held notes and chords, repeated notes; drum
grooves for kits) in each preset's usable range, with varied velocity and duration, are
rendered with tinysoundfont at 16 kHz. Mixtures of 2-6 instruments are summed from them
with random gains while training (:func:`mix`).

Splits are by instrument (a preset of a SoundFont): ``train`` and ``val`` share no preset,
and the whole ``sf_GMbank`` SoundFont (csound-soundfont) is kept out for ``test``.

Build the training set with::

    nice -n 10 python -m engines.instruments.data --out data/instruments --seed 0
"""

from __future__ import annotations

import argparse
import json
import os
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from engines.media.midi import Note

SR = 16000
SEG_SECONDS = 3.0
SEG = int(SR * SEG_SECONDS)

#: SoundFonts the data is built from: name -> (path candidates, role)
SOUNDFONTS: dict[str, tuple[tuple[str, ...], str]] = {
    "fluidr3": (("/usr/share/sounds/sf2/FluidR3_GM.sf2",), "train"),
    "timgm6mb": (("<pretty_midi>",), "train"),
    "a320u": (("/usr/share/sounds/sf2/A320U.sf2",), "train"),
    "sf_gmbank": (("/usr/share/sounds/sf2/sf_GMbank.sf2",), "test"),
}
#: share of the training SoundFonts' presets kept apart (never trained on) for validation
VAL_SHARE = 0.1

GM_FAMILIES = (
    "piano", "chromatic percussion", "organ", "guitar", "bass", "strings", "ensemble", "brass",
    "reed", "pipe", "synth lead", "synth pad", "synth effects", "ethnic", "percussive",
    "sound effects",
)

# usable MIDI ranges by GM family (program // 8)
_FAMILY_RANGE = {
    0: (33, 96), 1: (60, 96), 2: (36, 84), 3: (40, 79), 4: (28, 55), 5: (43, 88),
    6: (43, 84), 7: (45, 79), 8: (50, 84), 9: (60, 96), 10: (48, 84), 11: (43, 79),
    12: (43, 79), 13: (48, 84), 14: (48, 79), 15: (48, 72),
}
_KEYWORD_RANGE = (
    (r"tuba|contrabass|c\.bass|bass|cello|bassoon|timpani", (28, 57)),
    (r"piccolo|flute|celesta|glock|bell|music ?box|whistle|ocarina|recorder", (62, 96)),
    (r"violin|fiddle|oboe|clarinet|trumpet|sax", (52, 86)),
    (r"piano|harp|marimba|vibe|xylo", (36, 90)),
    (r"guitar|gtr|banjo|sitar|koto|shamisen", (40, 79)),
)


@dataclass(frozen=True)
class Preset:
    """One instrument of a SoundFont."""

    soundfont: str  # name in SOUNDFONTS, or a path
    bank: int
    program: int
    name: str

    @property
    def is_drum(self) -> bool:
        return self.bank == 128

    @property
    def key(self) -> str:
        return f"{self.soundfont}:{self.bank}:{self.program}"


def soundfont_path(name: str) -> Path | None:
    """The file of a known SoundFont, or ``None`` when it is not installed."""
    if name not in SOUNDFONTS:
        p = Path(name)
        return p if p.is_file() else None
    for cand in SOUNDFONTS[name][0]:
        if cand == "<pretty_midi>":
            from engines.media.synth import default_soundfont

            return default_soundfont()
        if Path(cand).is_file():
            return Path(cand)
    return None


def family(bank: int, program: int, name: str = "") -> str:
    """GM family of a preset ("drums" for kits; MT-32 bank 127 guessed from the name)."""
    if bank == 128:
        return "drums"
    if bank == 127:
        low = name.lower()
        for fam, words in (("piano", "piano|harpsi|clav"), ("organ", "organ"), ("guitar", "guit|gtr"),
                           ("bass", "bass"), ("strings", "str|violin|cello|viola|harp"),
                           ("brass", "brass|trump|tromb|horn|tuba"), ("reed", "sax|oboe|clar|bassoon"),
                           ("pipe", "flute|pipe|picc|recorder|whistle"),
                           ("chromatic percussion", "vibe|marimba|xylo|bell|glock|celes"),
                           ("synth pad", "pad|choir|voice|chor"), ("synth lead", "synth|lead|saw|square")):
            if re.search(words, low):
                return fam
        return "other"
    return GM_FAMILIES[program // 8]


def preset_range(bank: int, program: int, name: str = "") -> tuple[int, int]:
    """Usable MIDI note range (low, high) of a preset, from its name or GM program."""
    if bank == 128:
        return (35, 81)
    low = name.lower()
    for pattern, rng in _KEYWORD_RANGE:
        if re.search(pattern, low):
            return rng
    if bank == 127:
        return (48, 79)
    return _FAMILY_RANGE[program // 8]


# --------------------------------------------------------------------------- phrases

_SCALES = ((0, 2, 4, 5, 7, 9, 11), (0, 2, 3, 5, 7, 8, 10), (0, 2, 4, 7, 9), (0, 3, 5, 7, 10))
_CHORDS = ((0, 4, 7), (0, 3, 7), (0, 4, 7, 11), (0, 3, 7, 10), (0, 5, 7))


def _in_key(root: int, scale: tuple[int, ...], lo: int, hi: int) -> list[int]:
    return [p for p in range(lo, hi + 1) if (p - root) % 12 in scale]


def make_phrase(rng: np.random.Generator, lo: int, hi: int, *, seconds: float = SEG_SECONDS,
                drum: bool = False, center: int | None = None) -> list[Note]:
    """A random but musical phrase lasting about ``seconds``.

    Parameters
    ----------
    rng : numpy Generator
    lo, hi : int
        Usable MIDI range of the instrument.
    drum : bool
        A drum groove (GM percussion keys) instead of pitched material.
    center : int, optional
        Keep the phrase around this MIDI note (the register of a detected part).

    Returns
    -------
    list of Note
        Times in seconds, all notes start before ``seconds``.
    """
    beat = 60.0 / float(rng.uniform(80, 150))
    vel0 = int(rng.integers(55, 120))

    def vel() -> int:
        return int(np.clip(vel0 + rng.integers(-12, 13), 20, 127))

    notes: list[Note] = []
    if drum:
        step = beat / 2
        kit = (36, 38, 42, 46, 45, 48, 49, 51, 39, 37)
        n = int(seconds / step)
        for i in range(n):
            t = i * step
            if i % 4 == 0 or rng.random() < 0.15:
                notes.append(Note(36, t, t + step, vel()))
            if i % 4 == 2 or rng.random() < 0.1:
                notes.append(Note(38 if rng.random() < 0.8 else 39, t, t + step, vel()))
            if rng.random() < 0.8:
                notes.append(Note(int(rng.choice((42, 42, 46, 51))), t, t + step, vel()))
            if rng.random() < 0.08:
                notes.append(Note(int(rng.choice(kit)), t, t + step, vel()))
        return notes

    if center is not None:
        lo, hi = max(lo, center - 9), min(hi, center + 9)
        if hi - lo < 7:
            lo, hi = max(0, center - 6), min(127, center + 6)
    span_lo, span_hi = lo, hi
    width = int(rng.integers(8, 20))
    if span_hi - span_lo > width:
        a = int(rng.integers(span_lo, span_hi - width + 1))
        span_lo, span_hi = a, a + width
    root = int(rng.integers(0, 12))
    scale = _SCALES[int(rng.integers(len(_SCALES)))]
    pitches = _in_key(root, scale, span_lo, span_hi) or list(range(span_lo, span_hi + 1))
    legato = float(rng.uniform(0.45, 1.0))
    kind = str(rng.choice(["scale", "arpeggio", "held", "repeated"], p=[0.3, 0.3, 0.2, 0.2]))
    t = 0.0
    if kind == "scale":
        step = beat * float(rng.choice([0.25, 0.5, 0.5, 1.0]))
        i = int(rng.integers(len(pitches)))
        direction = 1 if rng.random() < 0.5 else -1
        while t < seconds - 0.05:
            notes.append(Note(pitches[i], t, t + step * legato, vel()))
            if not 0 <= i + direction < len(pitches):
                direction = -direction
            i = min(len(pitches) - 1, max(0, i + direction))
            t += step
    elif kind == "arpeggio":
        chord = _CHORDS[int(rng.integers(len(_CHORDS)))]
        base = int(rng.integers(span_lo, max(span_lo + 1, span_hi - 12)))
        tones = [base + c + 12 * o for o in range(3) for c in chord if base + c + 12 * o <= span_hi]
        tones = tones or [base]
        step = beat * float(rng.choice([0.25, 0.5, 1.0]))
        order = tones + tones[-2:0:-1] if len(tones) > 2 else tones
        i = 0
        while t < seconds - 0.05:
            notes.append(Note(order[i % len(order)], t, t + step * legato, vel()))
            i += 1
            t += step
    elif kind == "held":
        count = int(rng.integers(1, 4))
        dur = seconds / count
        for _ in range(count):
            base = int(rng.choice(pitches))
            intervals: list[int] = [0] if rng.random() < 0.5 else list(_CHORDS[int(rng.integers(len(_CHORDS)))])
            v = vel()
            for c in intervals:
                if base + c <= hi:
                    notes.append(Note(base + c, t, t + dur * float(rng.uniform(0.7, 1.0)), v))
            t += dur
    else:
        step = beat * float(rng.choice([0.25, 0.5, 1.0]))
        p = int(rng.choice(pitches))
        while t < seconds - 0.05:
            if rng.random() < 0.15:
                p = int(rng.choice(pitches))
            notes.append(Note(p, t, t + step * legato, vel()))
            t += step
    return notes


def median_pitch(notes: list[Note]) -> float:
    """Duration-weighted median MIDI pitch of a phrase (60 when it has no notes)."""
    if not notes:
        return 60.0
    pitches = np.repeat([n.pitch for n in notes], [max(1, int(100 * (n.end - n.start))) for n in notes])
    return float(np.median(pitches))


# --------------------------------------------------------------------------- rendering

class PresetRenderer:
    """Renders notes with any preset of a few SoundFonts (tinysoundfont, in this process).

    Only for trusted SoundFonts: untrusted ones are rendered in a child process
    (:func:`render_probes_isolated`).
    """

    def __init__(self, sr: int = SR) -> None:
        import tinysoundfont

        self.sr = sr
        self.synth = tinysoundfont.Synth(samplerate=sr)
        self._sfids: dict[str, int] = {}

    def _sfid(self, path: str) -> int:
        if path not in self._sfids:
            self._sfids[path] = self.synth.sfload(path)
        return self._sfids[path]

    def render(self, sf_path: str | os.PathLike[str], bank: int, program: int, notes: list[Note],
               *, seconds: float) -> np.ndarray:
        """Mono float32 of ``round(seconds * sr)`` samples (not normalised)."""
        synth = self.synth
        sfid = self._sfid(str(sf_path))
        synth.sounds_off()
        drum = bank == 128
        synth.program_select(0, sfid, 0 if drum else bank, program, is_drums=drum)
        total = int(round(seconds * self.sr))
        out = np.zeros((total, 2), dtype=np.float32)
        flat = out.reshape(-1)
        events = sorted([(int(n.start * self.sr), 1, n.pitch, n.velocity) for n in notes]
                        + [(max(int(n.start * self.sr) + 1, int(n.end * self.sr)), 0, n.pitch, 0)
                           for n in notes])
        pos = 0
        for sample, on, pitch, v in events:
            sample = min(sample, total)
            if sample > pos:
                synth.generate_simple(sample - pos, buffer=flat[2 * pos:2 * sample].data.cast("B"))
                pos = sample
            if on:
                synth.noteon(0, pitch, v)
            else:
                synth.noteoff(0, pitch)
        if pos < total:
            synth.generate_simple(total - pos, buffer=flat[2 * pos:].data.cast("B"))
        synth.sounds_off()
        return out.mean(axis=1)


def probe_notes(bank: int, program: int, name: str, *, seed: int, count: int = 2,
                center: int | None = None) -> list[list[Note]]:
    """The deterministic probe phrases a preset is indexed (or auditioned) with."""
    lo, hi = preset_range(bank, program, name)
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        c: int | None
        if center is None and bank != 128 and count > 1:
            # spread the probes over the usable range: low-middle and middle-high
            third = (hi - lo) / 3
            c = int(round(lo + third * (1 + i) if count == 2 else lo + (hi - lo) * (i + 0.5) / count))
        else:
            c = center
        out.append(make_phrase(rng, lo, hi, drum=bank == 128, center=c))
    return out


def render_probes(sf_path: str, presets: list[tuple[int, int, str]], *, sr: int = SR,
                  count: int = 2, seed: int = 1234) -> list[np.ndarray]:
    """Render ``count`` probe phrases of each preset; float16 arrays of shape (count, SEG).

    Module-level so that :func:`engines.media.safe.run_isolated` can run it in a child.
    A preset the SoundFont cannot select yields an all-zero array (reported as silent).
    """
    renderer = PresetRenderer(sr)
    out = []
    for bank, program, name in presets:
        clips = np.zeros((count, int(sr * SEG_SECONDS)), np.float16)
        try:
            for i, notes in enumerate(probe_notes(bank, program, name, seed=seed + program, count=count)):
                y = renderer.render(sf_path, bank, program, notes, seconds=SEG_SECONDS)
                peak = float(np.max(np.abs(y))) if y.size else 0.0
                if np.isfinite(peak) and peak > 1e-5:
                    clips[i] = (y * (0.9 / peak)).astype(np.float16)
        except Exception:
            pass
        out.append(clips)
    return out


def render_phrase(sf_path: str, bank: int, program: int, name: str, *, note: int | None,
                  sr: int, seconds: float = 4.0, seed: int = 7) -> np.ndarray:
    """A short audition phrase of a preset around ``note``; stereo float32 (2, n), -1 dBFS peak."""
    lo, hi = preset_range(bank, program, name)
    rng = np.random.default_rng(seed)
    drum = bank == 128
    center = None if drum or note is None else int(np.clip(note, 0, 127))
    notes = make_phrase(rng, lo, hi, seconds=seconds - 1.0, drum=drum, center=center)
    y = PresetRenderer(sr).render(sf_path, bank, program, notes, seconds=seconds)
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    if peak > 0:
        y = y * (10 ** (-1 / 20) / peak)
    return np.stack([y, y]).astype(np.float32)


# --------------------------------------------------------------------------- mixtures

def mix(stems: np.ndarray, rng: np.random.Generator, *, gain_db: tuple[float, float] = (-12.0, 0.0)) -> np.ndarray:
    """Sum stems (k, n) with random gains; peak normalised to a random level in -12..-1 dBFS."""
    gains = 10 ** (rng.uniform(*gain_db, size=(stems.shape[0], 1)) / 20)
    y = (stems.astype(np.float32) * gains).sum(axis=0)
    peak = float(np.max(np.abs(y)))
    if peak > 0:
        y *= 10 ** (rng.uniform(-12, -1) / 20) / peak
    return y


# --------------------------------------------------------------------------- builder

def list_presets(name: str) -> list[Preset]:
    """Presets of a known SoundFont (trusted, parsed in this process)."""
    from engines.media.synth import _list_presets

    path = soundfont_path(name)
    if path is None:
        return []
    return [Preset(name, b, p, n.strip()) for b, p, n in _list_presets(str(path))]


def split_presets(seed: int = 0) -> dict[str, list[Preset]]:
    """``train``/``val``/``test`` presets: split by instrument, one whole SoundFont for test."""
    rng = np.random.default_rng(seed)
    out: dict[str, list[Preset]] = {"train": [], "val": [], "test": []}
    for name, (_, role) in SOUNDFONTS.items():
        presets = list_presets(name)
        if role == "test":
            out["test"] += presets
            continue
        mask = rng.random(len(presets)) < VAL_SHARE
        for p, v in zip(presets, mask, strict=True):
            out["val" if v else "train"].append(p)
    return out


def render_set(presets: list[Preset], per_instrument: int, seed: int,
               renderer: PresetRenderer | None = None) -> dict[str, np.ndarray]:
    """Render ``per_instrument`` phrases of each preset.

    Returns
    -------
    dict with ``waves`` float16 (n, SEG) peak 0.9, ``labels`` int (index into ``presets``),
    ``pitch`` float (median MIDI pitch, NaN for drums), ``silent`` bool.
    """
    renderer = renderer or PresetRenderer(SR)
    rng = np.random.default_rng(seed)
    waves = np.zeros((len(presets) * per_instrument, SEG), np.float16)
    labels = np.zeros(len(waves), np.int64)
    pitch = np.full(len(waves), np.nan, np.float32)
    silent = np.zeros(len(waves), bool)
    paths = {p.soundfont: str(soundfont_path(p.soundfont)) for p in presets}
    k = 0
    for i, p in enumerate(presets):
        lo, hi = preset_range(p.bank, p.program, p.name)
        for _ in range(per_instrument):
            notes = make_phrase(rng, lo, hi, drum=p.is_drum)
            y = renderer.render(paths[p.soundfont], p.bank, p.program, notes, seconds=SEG_SECONDS)
            peak = float(np.max(np.abs(y)))
            if peak > 1e-4:
                waves[k] = (y * (0.9 / peak)).astype(np.float16)
            else:
                silent[k] = True
            labels[k] = i
            if not p.is_drum:
                pitch[k] = median_pitch(notes)
            k += 1
    return {"waves": waves, "labels": labels, "pitch": pitch, "silent": silent}


def build(out: str | os.PathLike[str], *, seed: int = 0, per_instrument: int = 6,
          val_per_instrument: int = 4) -> Path:
    """Render the train and val sets into ``out`` (``train.npz``, ``val.npz``, ``presets.json``)."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    split = split_presets(seed)
    missing = [n for n in SOUNDFONTS if soundfont_path(n) is None]
    renderer = PresetRenderer(SR)
    for part, per in (("train", per_instrument), ("val", val_per_instrument)):
        t0 = time.time()
        d = render_set(split[part], per, seed + (1 if part == "val" else 0), renderer)
        # drop presets that render silence (empty presets)
        keep = ~d["silent"]
        np.savez(folder / f"{part}.npz", **{k: v[keep] for k, v in d.items()})
        print(f"{part}: {len(split[part])} presets, {int(keep.sum())} clips in {time.time() - t0:.1f} s")
    meta = {
        "seed": seed, "sr": SR, "seconds": SEG_SECONDS, "missing_soundfonts": missing,
        "soundfonts": {n: str(soundfont_path(n)) for n in SOUNDFONTS if soundfont_path(n)},
        **{part: [asdict(p) for p in split[part]] for part in ("train", "val", "test")},
    }
    (folder / "presets.json").write_text(json.dumps(meta, indent=1))
    return folder


#: mel-cache quantisation: whole dB below each clip's loudest mel bin, kept down to this floor
MEL_FLOOR_DB = 100


def mel_db(waves: np.ndarray, *, batch: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Mel power of each clip with the model's own front end (:class:`~engines.instruments.model.LogMel`).

    Returns
    -------
    q : uint8 (n, n_mels, frames)
        dB below the clip's loudest mel bin, rounded, clipped at :data:`MEL_FLOOR_DB`.
    peak_db : float32 (n,)
        that loudest bin in dB, so clips can be mixed in the power domain.
    """
    import torch

    from engines.instruments.model import LogMel, ModelConfig

    fe = LogMel(ModelConfig())
    qs, peaks = [], []
    with torch.no_grad():
        for i in range(0, len(waves), batch):
            y = torch.from_numpy(waves[i:i + batch].astype(np.float32))
            spec = torch.stft(y, fe.n_fft, fe.hop, window=fe.window, center=True, return_complex=True)
            db = 10 * torch.log10(torch.matmul(fe.fb, spec.real ** 2 + spec.imag ** 2).clamp_min(1e-10))
            peak = db.amax(dim=(1, 2))
            rel = (peak[:, None, None] - db).round().clamp(0, MEL_FLOOR_DB)
            qs.append(rel.to(torch.uint8).numpy())
            peaks.append(peak.numpy().astype(np.float32))
    return np.concatenate(qs), np.concatenate(peaks)


def build_mel_cache(out: str | os.PathLike[str], *, seed: int = 0, per_instrument: int = 16,
                    val_per_instrument: int = 4) -> Path:
    """Render phrases and keep only their quantised mel power (``train_mels.npz``, ``val_mels.npz``).

    About 8 KB a clip instead of 96 KB of audio, so a large training set travels to a GPU
    machine; mixtures are then summed in the mel power domain (:func:`engines.instruments.train.mel_mix`),
    which ignores the phase cross-terms of a real mix (a short fine-tune on real audio mixtures
    closes that gap).
    """
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    split = split_presets(seed)
    renderer = PresetRenderer(SR)
    for part, per in (("train", per_instrument), ("val", val_per_instrument)):
        t0 = time.time()
        d = render_set(split[part], per, seed + (101 if part == "val" else 100), renderer)
        keep = ~d["silent"]
        q, peak = mel_db(d["waves"][keep])
        np.savez_compressed(folder / f"{part}_mels.npz", q=q, peak_db=peak, labels=d["labels"][keep],
                            pitch=d["pitch"][keep])
        print(f"{part}: {len(split[part])} presets, {int(keep.sum())} clips in {time.time() - t0:.1f} s", flush=True)
    meta = {
        "seed": seed, "sr": SR, "seconds": SEG_SECONDS, "per_instrument": per_instrument,
        "soundfonts": {n: str(soundfont_path(n)) for n in SOUNDFONTS if soundfont_path(n)},
        **{part: [asdict(p) for p in split[part]] for part in ("train", "val", "test")},
    }
    (folder / "presets.json").write_text(json.dumps(meta, indent=1))
    return folder


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="data/instruments")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--per-instrument", type=int, default=6)
    ap.add_argument("--mels", action="store_true",
                    help="keep quantised mel power instead of audio (train_mels.npz / val_mels.npz)")
    args = ap.parse_args(argv)
    if args.mels:
        build_mel_cache(args.out, seed=args.seed, per_instrument=args.per_instrument)
    else:
        build(args.out, seed=args.seed, per_instrument=args.per_instrument)


if __name__ == "__main__":
    main()
