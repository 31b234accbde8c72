"""Public API of the generate engine: text / MIDI -> multi-track MIDI, WAV mix and stems.

    from engines.generate.engine import Engine, GenerateRequest

    eng = Engine.from_pretrained()            # or "debug" (tiny random model, for tests)
    res = eng.generate(GenerateRequest(text="melancholic piano and strings in D minor, 70 bpm, "
                                            "3/4, chords Dm Bb F A, 16 bars", seed=42, out_dir="out"))
    res.midi, res.wav, res.stems, res.controls

``generate`` with ``midi=`` arranges: the given tracks are kept note for note and the
missing roles (melody / harmony / bass / drums) are generated to their harmony, meter and
tempo. :meth:`Engine.regenerate_track` and :meth:`Engine.continue_piece` work on a MIDI
file the engine (or anyone) wrote.

What the model does and what rules do is listed in every result's ``notes``.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from engines.core.errors import (
    CancelledError,
    InputError,
    ModelError,
    NotFoundError,
    ParameterError,
    ResourceLimitError,
)
from engines.generate import data as D
from engines.generate import style as S
from engines.generate import theory
from engines.generate.controls import MAX_BARS, Controls, resolve_controls

ProgressFn = Callable[[float, str], None]
REPO = Path(__file__).resolve().parents[2]
MODELS_DIR = REPO / "resources" / "models" / "generate"
CHUNK = 128  # steps sampled per model call
HOP = 96  # next chunk starts here (32 steps of overlap held fixed)


@dataclass(frozen=True)
class GenerateRequest:
    """One generation job. ``None`` fields are resolved from ``text`` and the style.

    Attributes
    ----------
    text : str
        Prompt, e.g. ``"lofi piano in A minor, 92 bpm, chords Am7 Dm7 G7 Cmaj7, 8 bars"``.
    key, mode, tempo, meter, chords, bars, instruments, style, density, drums :
        Explicit controls; they win over the text. ``chords`` is a string of symbols
        (one per bar, cycled), ``instruments`` a comma-separated string or a sequence.
    seed : int
        Same seed and inputs give the same files.
    midi : path, optional
        Arrange: keep this file's tracks and generate the missing ones.
    out_dir : path
        Where the files go (created). Files are written to a temporary folder inside it
        and moved into place at the end.
    soundfont : path, optional
        SF2/SF3 to render with (default: the bundled GM SoundFont).
    render : bool
        Write the WAV mix and stems (``False``: MIDI only).
    """

    text: str = ""
    key: str | None = None
    mode: str | None = None
    tempo: float | None = None
    meter: str | None = None
    chords: str | None = None
    bars: int | None = None
    instruments: str | tuple[str, ...] | None = None
    style: str | None = None
    density: float | None = None
    drums: bool | None = None
    seed: int = 0
    midi: str | None = None
    out_dir: str = "."
    soundfont: str | None = None
    sample_rate: int = 44100
    wav_bits: int = 24
    render: bool = True
    stems: bool = True
    guidance: float | None = None
    steps: int | None = None


@dataclass
class GenerateResult:
    """Files written and what they were made from.

    ``controls`` are the resolved controls (the same dict the GUI shows for editing);
    ``notes`` says which tracks came from the model, the style layer or the input, and how
    many model notes the constraint layer moved.
    """

    midi: str
    wav: str | None
    stems: list[str]
    controls: dict[str, Any]
    notes: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"midi": self.midi, "wav": self.wav, "stems": list(self.stems), "controls": self.controls,
                "notes": self.notes}

    @property
    def files(self) -> list[str]:
        return [self.midi] + ([self.wav] if self.wav else []) + list(self.stems)


# internal piece representation: notes on the 16th grid -----------------------------------

@dataclass
class _GridTrack:
    name: str
    program: int
    is_drum: bool
    roles: tuple[str, ...]
    notes: list[list[int]] = field(default_factory=list)  # [pitch, start, end, velocity]
    source: str = "model"
    given: Any = None  # the original media Track when kept note for note


class _Cancel:
    def __init__(self, cancel: Any) -> None:
        self.cancel = cancel

    def __call__(self) -> None:
        c = self.cancel
        if c is None:
            return
        if callable(getattr(c, "raise_if_cancelled", None)):
            c.raise_if_cancelled()
        elif callable(c) and c():
            raise CancelledError()
        elif getattr(c, "cancelled", False):
            raise CancelledError()


@contextlib.contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


class Engine:
    """The generator: a :class:`~engines.generate.model.RollDiffusion` plus the style layer."""

    def __init__(self, model: Any, *, name: str = "custom") -> None:
        self.model = model
        self.name = name

    # construction --------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, name: str | os.PathLike[str] = "default", *, device: str | None = None) -> Engine:
        """``"default"`` (shipped weights), ``"debug"`` (tiny, random, seeded) or a folder
        holding ``model.safetensors`` + ``config.json``."""
        from engines.generate.model import ModelConfig, RollDiffusion

        dev = _pick_device(device)
        if str(name) == "debug":
            cfg = ModelConfig(block_out_channels=(8, 16), norm_num_groups=4, sampling_steps=4)
            return cls(RollDiffusion.random(cfg, seed=0, name="debug"), name="debug")
        folder = MODELS_DIR if str(name) == "default" else Path(name)
        if not (folder / "model.safetensors").is_file() or not (folder / "config.json").is_file():
            raise ModelError("no generate model here (needs model.safetensors and config.json); "
                             "train one with `python -m engines.generate.train`", path=folder)
        try:
            model = RollDiffusion.load(folder, device=dev)
        except Exception as exc:
            raise ModelError(f"the generate model could not be loaded: {exc}", path=folder) from exc
        return cls(model, name=str(name))

    # controls ------------------------------------------------------------------------
    def resolve(self, request: GenerateRequest, *, use_embedder: bool = True) -> Controls:
        return resolve_controls(
            request.text, key=request.key, mode=request.mode, tempo=request.tempo, meter=request.meter,
            chords=request.chords, bars=request.bars, instruments=request.instruments, style=request.style,
            density=request.density, drums=request.drums, use_embedder=use_embedder)

    # public operations -----------------------------------------------------------------
    def generate(self, request: GenerateRequest, *, progress: ProgressFn | None = None,
                 cancel: Any = None) -> GenerateResult:
        """Text/fields -> a new piece; with ``request.midi``, :meth:`arrange`."""
        if request.midi:
            return self.arrange(request, progress=progress, cancel=cancel)
        prog = progress or _no_progress
        check = _Cancel(cancel)
        _check_request(request)
        ctl = _with_cadence(self.resolve(request))
        prog(0.05, "controls resolved")
        plans = S.plan_tracks(ctl.instruments, ctl.drums)
        tracks = [_GridTrack(p.name, p.program, p.is_drum, p.roles) for p in plans]
        T = ctl.bars * ctl.meter.steps_per_bar
        chords = _chords_per_step(ctl, T)
        report = self._fill(tracks, ctl, chords, T, seed=request.seed, given_roles={}, request=request,
                            check=check, prog=lambda f, m: prog(0.05 + 0.55 * f, m))
        stem = _file_stem("gen", ctl, request.seed)
        return self._write(tracks, ctl, request, stem, report, prog, check, tempo=ctl.tempo)

    def arrange(self, request: GenerateRequest, *, progress: ProgressFn | None = None,
                cancel: Any = None) -> GenerateResult:
        """Keep the tracks of ``request.midi`` and generate the missing ones."""
        prog = progress or _no_progress
        check = _Cancel(cancel)
        _check_request(request)
        song, given, ctl, T, chords = self._read_for_arrangement(request)
        prog(0.05, "input analysed")
        roles_given = {role for g in given for role in g.roles}
        plans = S.plan_tracks(ctl.instruments, ctl.drums and not any(g.is_drum for g in given))
        tracks = list(given)
        for p in plans:
            missing = tuple(r for r in p.roles if r not in roles_given)
            if missing:
                tracks.append(_GridTrack(p.name, p.program, p.is_drum, missing))
        given_roles = _role_notes(given)
        report = self._fill(tracks, ctl, chords, T, seed=request.seed, given_roles=given_roles, request=request,
                            check=check, prog=lambda f, m: prog(0.05 + 0.55 * f, m))
        stem = _file_stem("arr", ctl, request.seed)
        return self._write(tracks, ctl, request, stem, report, prog, check, tempo=song.tempo, song=song)

    def regenerate_track(self, midi: str | os.PathLike[str], track: str, request: GenerateRequest, *,
                         progress: ProgressFn | None = None, cancel: Any = None) -> GenerateResult:
        """Regenerate one track (by name) of ``midi`` with ``request.seed``, keeping the others."""
        prog = progress or _no_progress
        check = _Cancel(cancel)
        req = replace(request, midi=str(midi))
        _check_request(req)
        song, given, ctl, T, chords = self._read_for_arrangement(req, allow_drums_only=True)
        idx = next((i for i, g in enumerate(given) if g.name == track), None)
        if idx is None:
            names = ", ".join(g.name for g in given)
            raise NotFoundError(f"no track named {track!r} (tracks: {names})", path=midi)
        target = given[idx]
        new = _GridTrack(target.name, target.program, target.is_drum, target.roles)
        tracks = [g if i != idx else new for i, g in enumerate(given)]
        others = [g for i, g in enumerate(given) if i != idx]
        report = self._fill(tracks, ctl, chords, T, seed=req.seed, given_roles=_role_notes(others), request=req,
                            check=check, prog=lambda f, m: prog(0.05 + 0.55 * f, m))
        stem = _file_stem(f"regen_{_safe(track)}", ctl, req.seed)
        return self._write(tracks, ctl, req, stem, report, prog, check, tempo=song.tempo, song=song)

    def continue_piece(self, midi: str | os.PathLike[str], bars: int, request: GenerateRequest, *,
                       progress: ProgressFn | None = None, cancel: Any = None) -> GenerateResult:
        """Append ``bars`` bars to every track of ``midi`` (the existing notes are kept)."""
        prog = progress or _no_progress
        check = _Cancel(cancel)
        if int(bars) < 1:
            raise ParameterError(f"bars must be at least 1; got {bars}")
        req = replace(request, midi=str(midi), bars=None)
        _check_request(req)
        song, given, ctl, T0, _ = self._read_for_arrangement(req, allow_drums_only=True)
        n0 = T0 // ctl.meter.steps_per_bar
        total = n0 + int(bars)
        if total > MAX_BARS:
            raise ResourceLimitError(f"{total} bars is too long: at most {MAX_BARS} bars in one piece", path=midi)
        ctl = replace(ctl, bars=total)
        T = total * ctl.meter.steps_per_bar
        chords = _chords_per_step(ctl, T)
        prefix = {role: [n for g in given if role in g.roles for n in g.notes] for role in D.ROLES}
        tracks = [_GridTrack(g.name, g.program, g.is_drum, g.roles, [], "model") for g in given]
        report = self._fill(tracks, ctl, chords, T, seed=req.seed, given_roles={}, request=req, check=check,
                            prog=lambda f, m: prog(0.05 + 0.55 * f, m), prefix=(T0, prefix))
        for t, g in zip(tracks, given, strict=True):
            t.notes = [n for n in t.notes if n[1] >= T0]
            t.given, t.source = g.given, "given+" + t.source
        stem = _file_stem("cont", ctl, req.seed)
        return self._write(tracks, ctl, req, stem, report, prog, check, tempo=song.tempo, song=song)

    # core ----------------------------------------------------------------------------
    def _read_for_arrangement(self, request: GenerateRequest, *, allow_drums_only: bool = False
                              ) -> tuple[Any, list[_GridTrack], Controls, int, list[theory.Chord]]:
        from engines.media.midi import read_midi

        path = str(request.midi)
        if not Path(path).exists():
            raise NotFoundError("MIDI file not found", path=path)
        song = read_midi(path)
        tempo = float(song.tempo or 120.0)
        if not 20.0 <= tempo <= 300.0:
            raise InputError(f"the file's tempo ({tempo:g} bpm) is outside 20-300 bpm", path=path)
        num, den = song.time_signature
        try:
            meter = theory.parse_meter(f"{num}/{den}") if not request.meter else theory.parse_meter(request.meter)
        except ParameterError as exc:
            raise InputError(str(exc.problem), path=path) from None
        step_s = 60.0 / tempo / 4
        with_notes = [t for t in song.tracks if t.notes]
        if not with_notes:
            raise InputError("the MIDI file has no notes", path=path)
        pitched = [t for t in with_notes if not t.is_drum]
        if not pitched and not allow_drums_only:
            raise InputError("the MIDI file has only drums: give at least one pitched track (a melody, "
                             "chords or a bass) to arrange around", path=path)
        end_step = max(int(math.ceil(n.end / step_s)) for t in with_notes for n in t.notes)
        n_bars = max(1, int(math.ceil(end_step / meter.steps_per_bar - 1e-6)))
        if request.bars is not None:
            if int(request.bars) < 1:
                raise ParameterError(f"bars must be at least 1; got {request.bars}")
            n_bars = max(n_bars, int(request.bars))
        if n_bars > MAX_BARS:
            raise ResourceLimitError(f"the piece would be {n_bars} bars long: at most {MAX_BARS}", path=path)
        T = n_bars * meter.steps_per_bar
        given: list[_GridTrack] = []
        roles = _assign_roles(pitched)
        for t in with_notes:
            notes = [[int(n.pitch), int(round(n.start / step_s)), max(int(round(n.start / step_s)) + 1,
                      int(round(n.end / step_s))), int(n.velocity)] for n in t.notes]
            r = ("drums",) if t.is_drum else (roles[id(t)],)
            given.append(_GridTrack(t.name or ("drums" if t.is_drum else "track"), int(t.program), bool(t.is_drum),
                                    r, notes, "given", t))
        # key and chords from the given notes unless stated
        arr = np.array([[0, n[0], n[1], n[2]] for g in given if not g.is_drum for n in g.notes] or
                       [[0, 60, 0, 1]], np.int64)
        hist = np.zeros(12)
        np.add.at(hist, arr[:, 1] % 12, arr[:, 3] - arr[:, 2])
        melody_only = all(g.roles == ("melody",) for g in given if not g.is_drum)
        if melody_only:  # a lone melody: the key it harmonises best in among the likely ones
            est_key = theory.estimate_melody_key([n for g in given if not g.is_drum for n in g.notes], meter, n_bars)
        else:
            est_key, _ = theory.estimate_key(hist)
        song_key = None
        if getattr(song, "key", None) and (song.key != "C" or est_key.name == "C"):
            with contextlib.suppress(Exception):
                song_key = theory.parse_key(song.key)
        key_txt = request.key or (song_key or est_key).name
        chords_txt = request.chords
        if not chords_txt and not _text_has_chords(request.text) and melody_only:
            # a lone melody: harmonise it (diatonic chords of the key, Viterbi over the bars)
            mel = [n for g in given if not g.is_drum for n in g.notes]
            inferred = theory.infer_chords(mel, theory.parse_key(key_txt, request.mode if request.key else None),
                                           meter, n_bars)
            chords_txt = " ".join(c.symbol for c in inferred)
        elif not chords_txt and not _text_has_chords(request.text):
            per_bar = []
            spb = meter.steps_per_bar
            chroma, bass = D.analyse_harmony(arr, T, meter, per=spb)
            prev = None
            for b in range(n_bars):
                c = chroma[b * spb]
                if c.sum() == 0:
                    per_bar.append(prev or theory.default_progression(theory.parse_key(key_txt))[0].symbol)
                    continue
                lab, _ = theory.match_chord(c, bass=int(bass[b * spb]) if bass[b * spb] >= 0 else None)
                sym = theory.label_to_symbol(lab)
                per_bar.append(sym)
                prev = sym
            chords_txt = " ".join(per_bar)
        inst = request.instruments
        ctl = resolve_controls(request.text, key=key_txt, mode=request.mode if request.key else None,
                               tempo=tempo, meter=str(meter), chords=chords_txt, bars=n_bars, instruments=inst,
                               style=request.style, density=request.density, drums=request.drums)
        ctl = replace(ctl, sources={**ctl.sources, "tempo": "midi", "meter": "midi" if not request.meter else "field",
                                    "key": "field" if request.key else ("midi" if song_key else "estimated"),
                                    "chords": "field" if request.chords else ctl.sources.get("chords", "estimated")})
        if not request.chords and not _text_has_chords(request.text):
            ctl = replace(ctl, sources={**ctl.sources, "chords": "estimated"})
        chords = _chords_per_step(ctl, T)
        return song, given, ctl, T, chords

    def _fill(self, tracks: list[_GridTrack], ctl: Controls, chords: list[theory.Chord], T: int, *, seed: int,
              given_roles: dict[str, list[list[int]]], request: GenerateRequest, check: _Cancel,
              prog: ProgressFn, prefix: tuple[int, dict[str, list[list[int]]]] | None = None) -> dict[str, Any]:
        """Fill every track without notes: model roles by diffusion, the rest by the style layer."""
        st = S.STYLES[ctl.style]
        need = {r for t in tracks if not t.notes and t.given is None for r in t.roles if r in D.ROLES}
        model_roles = sorted(need, key=D.ROLES.index)
        report: dict[str, Any] = {"model": self.name, "constraint_moved": 0, "model_notes": 0}
        role_notes: dict[str, list[list[int]]] = {}
        if model_roles:
            planes = self._sample(ctl, chords, T, seed=seed, given=given_roles, request=request, check=check,
                                  prog=prog, prefix=prefix, texture=st.texture)
            from engines.generate.model import pick_notes

            by_role: dict[str, list[tuple[int, int, int, float]]] = {}
            for role in model_roles:
                ri = D.ROLES.index(role)
                by_role[role] = pick_notes(planes[2 * ri], planes[2 * ri + 1], role=role, density=ctl.density,
                                           steps_per_beat=ctl.meter.steps_per_beat,
                                           steps_per_bar=ctl.meter.steps_per_bar)
                if prefix is not None:  # continuation: only the new bars are the model's
                    by_role[role] = [n for n in by_role[role] if n[1] >= prefix[0]]
            for role in model_roles:
                cleaned = _clean_role(by_role[role], role, T)
                rng = np.random.default_rng([seed, D.ROLES.index(role)])
                picked = [[p, s, e, _velocity(role, s, ctl.meter, rng)] for p, s, e in cleaned]
                snapped, moved = S.snap_notes(picked, key=ctl.key, chords_at=chords, meter=ctl.meter, role=role)
                report["constraint_moved"] += moved
                report["model_notes"] += len(snapped)
                role_notes[role] = snapped
        sources: dict[str, str] = {}
        rng = np.random.default_rng([seed, 99])
        for role in model_roles:
            if role == "harmony" and st.comp is not None:
                role_notes[role] = _comp(ctl, chords, T, st, rng)
                sources[role] = f"style:{st.comp} comping"
            elif role == "bass" and st.bass is not None:
                role_notes[role] = _bass(ctl, chords, T, st)
                sources[role] = f"style:{st.bass} bass"
            else:
                sources[role] = "model"
        self._on_model_notes({r: role_notes[r] for r in model_roles if sources[r] == "model"}, T)
        for t in tracks:
            if t.notes or t.given is not None:
                continue
            if t.is_drum:
                t.notes = _drums(ctl, T, st, rng)
                t.source = f"style:{st.groove if st.groove != 'none' else 'pop'} groove"
                continue
            merged: list[list[int]] = []
            for r in t.roles:
                merged += [list(n) for n in role_notes.get(r, [])]
            t.notes = sorted(merged, key=lambda n: (n[1], n[0]))
            t.source = "+".join(sources.get(r, "model") for r in t.roles)
        report["style"] = st.name
        return report

    def _on_model_notes(self, notes: dict[str, list[list[int]]], T: int) -> None:
        """Called with the notes the diffusion model wrote, by role (``[pitch, start, end,
        velocity]`` in steps, after the constraint layer), for a piece of ``T`` steps.

        Does nothing here; the preference fine-tuning (:mod:`engines.feedback.finetune`)
        overrides it to learn from exactly what the model contributed to a piece.
        """

    @staticmethod
    def model_planes(notes: dict[str, list[list[int]]], T: int) -> np.ndarray:
        """The model's track planes ``(6, N_PITCH, T)`` in {-1, 1} holding ``notes`` (see
        :meth:`_on_model_notes`): the training target form of :mod:`engines.generate.data`."""
        rows = [[D.ROLES.index(r), _fold_pitch(int(n[0])), int(n[1]), int(n[2])]
                for r, ns in notes.items() for n in ns]
        arr = np.array(rows, np.int64).reshape(-1, 4)
        return D.roll_planes(arr, 0, T) * 2.0 - 1.0

    def _sample(self, ctl: Controls, chords: list[theory.Chord], T: int, *, seed: int,
                given: dict[str, list[list[int]]], request: GenerateRequest, check: _Cancel, prog: ProgressFn,
                prefix: tuple[int, dict[str, list[list[int]]]] | None, texture: int) -> np.ndarray:
        chroma = np.stack([c.chroma() for c in chords]) if chords else np.zeros((T, 12), np.float32)
        bass = np.array([c.bass for c in chords], np.int32)
        vals = np.zeros((D.N_TRACK_CH, D.N_PITCH, T), np.float32)
        known = np.zeros((D.N_TRACKS, T), np.float32)
        for role, notes in given.items():
            ri = D.ROLES.index(role)
            arr = np.array([[ri, _fold_pitch(n[0]), n[1], n[2]] for n in notes], np.int64).reshape(-1, 4)
            vals[2 * ri:2 * ri + 2] = np.maximum(vals[2 * ri:2 * ri + 2], D.roll_planes(arr, 0, T)[2 * ri:2 * ri + 2])
            known[ri] = 1.0
        if prefix is not None:
            t0, pre = prefix
            for role, notes in pre.items():
                ri = D.ROLES.index(role)
                arr = np.array([[ri, _fold_pitch(n[0]), n[1], n[2]] for n in notes], np.int64).reshape(-1, 4)
                vals[2 * ri:2 * ri + 2] = np.maximum(vals[2 * ri:2 * ri + 2],
                                                     D.roll_planes(arr, 0, T)[2 * ri:2 * ri + 2])
            known[:, :t0] = 1.0
        # the sampler's graded output (what the notes are picked from); later chunks are
        # conditioned on the thresholded planes of the overlap (``vals``), as in training
        belief = vals * 2 - 1
        starts = list(range(0, max(T - (CHUNK - HOP), 1), HOP)) if T > CHUNK else [0]
        if prefix is not None and T > CHUNK:
            # start where the new material begins (keeping the overlap)
            starts = [s for s in starts if s + CHUNK > prefix[0]] or [max(0, T - CHUNK)]
        model = self.model
        with _torch_threads(1):
            for i, a in enumerate(starts):
                check()
                w = min(CHUNK, T - a)
                if known[:, a:a + w].min() >= 1.0:
                    continue
                cond = D.cond_planes(chroma, bass, ctl.key, ctl.meter, a, w, T)
                kn = D.known_planes(vals[:, :, a:a + w], known[:, a:a + w])
                c = np.concatenate([cond, kn], 0)
                out = model.sample(c, texture, seed=int(seed) * 1000 + i, steps=request.steps,
                                   guidance=request.guidance, check=check)
                new = (out > 0).astype(np.float32)
                unk = np.repeat(known[:, a:a + w], 2, axis=0)[:, None, :] < 1.0
                vals[:, :, a:a + w] = np.where(unk, new, vals[:, :, a:a + w])
                belief[:, :, a:a + w] = np.where(unk, out, belief[:, :, a:a + w])
                known[:, a:a + w] = 1.0
                prog((i + 1) / len(starts), f"sampled {min(a + w, T)}/{T} steps")
        return belief

    # writing -------------------------------------------------------------------------
    def _write(self, tracks: list[_GridTrack], ctl: Controls, request: GenerateRequest, stem: str,
               report: dict[str, Any], prog: ProgressFn, check: _Cancel, *, tempo: float, song: Any = None
               ) -> GenerateResult:
        from engines.media.midi import Note, Song, Track, write_midi

        st = S.STYLES[ctl.style]
        step_s = 60.0 / float(tempo) / 4
        swing = st.swing

        def secs(step: int) -> float:
            return step * step_s + (swing * step_s if step % 4 == 2 else 0.0)

        media_tracks = []
        info = []
        for t in tracks:
            if t.given is not None and t.source == "given":
                mt = t.given  # kept note for note
            else:
                notes = [Note(int(p), secs(s), max(secs(s) + 0.01, secs(e) - 0.005), int(v))
                         for p, s, e, v in t.notes]
                if t.given is not None:
                    notes = list(t.given.notes) + notes
                mt = Track(name=t.name, program=int(t.program), is_drum=t.is_drum, notes=notes)
            media_tracks.append(mt)
            info.append({"name": t.name, "program": int(t.program), "drums": t.is_drum, "roles": list(t.roles),
                         "source": t.source, "notes": len(mt.notes)})
        title = request.text[:60] if request.text else f"{ctl.style} in {ctl.key.long_name}"
        key_meta = _midi_key(ctl.key)
        out_song = Song(tracks=media_tracks, tempo=float(tempo), time_signature=(ctl.meter.num, ctl.meter.den),
                        key=key_meta, title=title)
        if song is not None and getattr(song, "tempo_changes", None):
            out_song.tempo_changes = list(song.tempo_changes)
        out_dir = Path(request.out_dir).expanduser()
        out_dir.mkdir(parents=True, exist_ok=True)
        tmp = out_dir / f".{stem}.{uuid.uuid4().hex[:8]}.part"
        tmp.mkdir()
        try:
            midi_tmp = tmp / f"{stem}.mid"
            write_midi(out_song, midi_tmp)
            prog(0.65, "MIDI written")
            check()
            wav_name, stem_names = None, []
            if request.render:
                from engines.media.audio import write_wav
                from engines.media.synth import render_song, render_stems

                sf = request.soundfont or None
                if request.stems:
                    stems = render_stems(out_song, sr=request.sample_rate, soundfont=sf)
                    check()
                    mix = np.sum(np.stack(list(stems.values())), axis=0) if stems else None
                    (tmp / f"{stem}_stems").mkdir()
                    for i, (name, y) in enumerate(stems.items()):
                        fn = f"{stem}_stems/{i + 1:02d}_{_safe(name)}.wav"
                        write_wav(tmp / fn, y, sr=request.sample_rate, bits=request.wav_bits)
                        stem_names.append(fn)
                        check()
                        prog(0.7 + 0.25 * (i + 1) / max(1, len(stems)), f"stem {name}")
                else:
                    mix = render_song(out_song, sr=request.sample_rate, soundfont=sf)
                if mix is not None:
                    write_wav(tmp / f"{stem}.wav", mix, sr=request.sample_rate, bits=request.wav_bits)
                    wav_name = f"{stem}.wav"
            check()
            # move into place
            final_midi = out_dir / f"{stem}.mid"
            os.replace(midi_tmp, final_midi)
            final_wav = None
            if wav_name:
                final_wav = out_dir / wav_name
                os.replace(tmp / wav_name, final_wav)
            final_stems = []
            if stem_names:
                sdir = out_dir / f"{stem}_stems"
                if sdir.exists():
                    shutil.rmtree(sdir)
                os.replace(tmp / f"{stem}_stems", sdir)
                final_stems = [str((out_dir / n).resolve()) for n in stem_names]
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        prog(1.0, "done")
        report = {**report, "tracks": info, "rules": _rules_text(ctl, info),
                  "constraint_layer": "model notes starting on a beat were moved to the nearest chord tone, "
                                      "others to the nearest scale or chord tone "
                                      f"({report.get('constraint_moved', 0)} of {report.get('model_notes', 0)} "
                                      "moved)"}
        return GenerateResult(midi=str(final_midi.resolve()), wav=str(final_wav.resolve()) if final_wav else None,
                              stems=final_stems, controls=ctl.to_dict(), notes=report)


# helpers ---------------------------------------------------------------------------------

def _no_progress(fraction: float, message: str) -> None:  # noqa: ARG001
    return None


def _pick_device(device: str | None) -> str:
    if device in ("cpu", "cuda"):
        return device
    try:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    except Exception:
        return "cpu"


def _check_request(r: GenerateRequest) -> None:
    if r.sample_rate not in (22050, 32000, 44100, 48000):
        raise ParameterError(f"sample rate must be 22050, 32000, 44100 or 48000; got {r.sample_rate}")
    if r.wav_bits not in (16, 24):
        raise ParameterError(f"WAV bits must be 16 or 24; got {r.wav_bits}")
    if r.soundfont and not Path(r.soundfont).is_file():
        raise NotFoundError("SoundFont file not found", path=r.soundfont)
    if r.midi and not Path(r.midi).is_file():
        raise NotFoundError("MIDI file not found", path=r.midi)


def _text_has_chords(text: str) -> bool:
    from engines.generate.controls import parse_text

    return bool(parse_text(text or "").get("chords"))


def _chords_per_step(ctl: Controls, T: int) -> list[theory.Chord]:
    objs = ctl.chord_objs or theory.default_progression(ctl.key)
    spb = ctl.meter.steps_per_bar
    return [objs[(t // spb) % len(objs)] for t in range(T)]


def _with_cadence(ctl: Controls) -> Controls:
    """End a piece whose chords the user did not give on an authentic cadence (V - I).

    The style's progression is written out bar by bar and its last two bars become the
    dominant and the tonic of the requested key: the ending is what makes a key audible (a
    cycled i-VI-III-VII would otherwise stop on VII and share its notes with the relative
    major). Chords from the text or the chords field are never changed.
    """
    if ctl.sources.get("chords") in ("field", "text") or ctl.bars < 2:
        return ctl
    objs = ctl.chord_objs or theory.default_progression(ctl.key)
    per_bar = [objs[b % len(objs)].symbol for b in range(ctl.bars)]
    tonic, dominant = theory.cadence_chords(ctl.key)
    if per_bar[-1] == tonic.symbol and per_bar[-2] == dominant.symbol:
        return ctl
    per_bar[-2:] = [dominant.symbol, tonic.symbol]
    src = ctl.sources.get("chords", "style")
    return replace(ctl, chords=tuple(per_bar), sources={**ctl.sources, "chords": f"{src}+cadence"})


def _fold_pitch(p: int) -> int:
    while p < D.PITCH_LO:
        p += 12
    while p >= D.PITCH_LO + D.N_PITCH:
        p -= 12
    return p


def _assign_roles(tracks: Sequence[Any]) -> dict[int, str]:
    """Roles of given pitched tracks: highest = melody, lowest (if low) = bass, others harmony."""
    means = {id(t): float(np.mean([n.pitch for n in t.notes])) for t in tracks}
    order = sorted(tracks, key=lambda t: -means[id(t)])
    out: dict[int, str] = {}
    if len(order) == 1:
        out[id(order[0])] = "melody" if means[id(order[0])] >= 55 else "bass"
        return out
    out[id(order[0])] = "melody"
    low = order[-1]
    out[id(low)] = "bass" if means[id(low)] < 57 else "harmony"
    for t in order[1:-1]:
        out[id(t)] = "harmony"
    return out


def _role_notes(tracks: Sequence[_GridTrack]) -> dict[str, list[list[int]]]:
    out: dict[str, list[list[int]]] = {}
    for t in tracks:
        if t.is_drum:
            continue
        for r in t.roles:
            if r in D.ROLES:
                out.setdefault(r, []).extend(t.notes)
    return out


def _clean_role(notes: list[tuple[int, int, int, float]], role: str, T: int) -> list[tuple[int, int, int]]:
    """Melody and bass monophonic, harmony at most three voices; clip to the piece."""
    notes = [(p, s, min(e, T), c) for p, s, e, c in notes if s < T]
    if role in ("melody", "bass"):
        by_onset: dict[int, tuple[int, int, int, float]] = {}
        for n in notes:
            cur = by_onset.get(n[1])
            better = cur is None or n[3] > cur[3] + 1e-6 or (
                abs(n[3] - cur[3]) <= 1e-6 and ((n[0] > cur[0]) if role == "melody" else (n[0] < cur[0])))
            if better:
                by_onset[n[1]] = n
        seq = sorted(by_onset.values(), key=lambda n: n[1])
        out = []
        for i, (p, s, e, _) in enumerate(seq):
            if i + 1 < len(seq):
                e = min(e, seq[i + 1][1])
            if e > s:
                out.append((p, s, e))
        return out
    by_step: dict[int, list[tuple[int, int, int, float]]] = {}
    for n in notes:
        by_step.setdefault(n[1], []).append(n)
    out = []
    for _s, ns in sorted(by_step.items()):
        ns.sort(key=lambda n: -n[3])
        out += [(p, s, e) for p, s, e, _ in ns[:3]]
    return out


def _velocity(role: str, step: int, meter: theory.Meter, rng: np.random.Generator) -> int:
    base = {"melody": 92, "harmony": 70, "bass": 84}.get(role, 80)
    if step % meter.steps_per_bar == 0:
        base += 8
    elif step % meter.steps_per_beat == 0:
        base += 3
    return int(np.clip(base + rng.integers(-4, 5), 1, 127))


def _comp(ctl: Controls, chords: list[theory.Chord], T: int, st: S.Style, rng: np.random.Generator
          ) -> list[list[int]]:
    spb = ctl.meter.steps_per_bar
    out: list[list[int]] = []
    prev: list[int] | None = None
    arp = st.comp == "arpeggio"
    if arp:
        rhythm = S.arpeggio_rhythm(ctl.meter, ctl.density)
    else:
        rhythm = [(int(s), int(d)) for s, d in S.thin_rhythm(S.comp_rhythm(st.comp or "pop", ctl.meter),
                                                             ctl.density, ctl.meter)]
    for bar in range(T // spb):
        a = bar * spb
        ch = chords[a]
        has_tonic = ctl.key.tonic in ch.pcs
        voicing = S.voice_chord(ch, prev, top=ctl.key.tonic if has_tonic else None)
        prev = voicing
        if has_tonic:  # the tonic doubled an octave away: the key is heard
            t = next(p for p in reversed(voicing) if p % 12 == ctl.key.tonic)
            voicing = sorted([*voicing, t - 12 if voicing[-1] == t or t + 12 > 79 else t + 12])
        for j, (s, d) in enumerate(rhythm):
            if a + s >= T:
                continue
            e = min(T, a + s + d)
            vel = int(np.clip((78 if s == 0 else 68) + rng.integers(-4, 5), 1, 127))
            if arp:
                seq = voicing + voicing[-2:0:-1]
                out.append([seq[j % len(seq)], a + s, min(T, a + spb), vel - 6])
            else:
                for p in voicing:
                    out.append([p, a + s, e, vel])
    return out


def _bass(ctl: Controls, chords: list[theory.Chord], T: int, st: S.Style) -> list[list[int]]:
    spb = ctl.meter.steps_per_bar
    out: list[list[int]] = []
    prev: int | None = None
    pattern = [(int(s), int(d), str(g)) for s, d, g in S.thin_rhythm(S.bass_rhythm(st.bass or "pop", ctl.meter),
                                                                    min(1.0, ctl.density + 0.25), ctl.meter)]
    nbars = T // spb
    for bar in range(nbars):
        a = bar * spb
        ch = chords[a]
        nxt = chords[min(T - 1, a + spb)]
        for s, d, deg in pattern:
            if a + s >= T:
                continue
            p = S.bass_pitch(deg, ch, nxt, prev)
            prev = p
            out.append([p, a + s, min(T, a + s + d), 96 if s == 0 else 82])
    return out


def _drums(ctl: Controls, T: int, st: S.Style, rng: np.random.Generator) -> list[list[int]]:
    spb, sbeat = ctl.meter.steps_per_bar, ctl.meter.steps_per_beat
    groove = st.groove if st.groove != "none" else "pop"
    pattern = S.drum_pattern(groove, ctl.meter, ctl.density)
    nbars = T // spb
    out: list[list[int]] = []
    fill_notes = (50, 47, 45, 41)
    for bar in range(nbars):
        a = bar * spb
        fill = nbars > 2 and (bar % 4 == 3 or bar == nbars - 1) and sbeat * 2 <= spb
        fill_from = spb - sbeat if fill else spb
        for note, hits in pattern.items():
            for s, v in hits:
                if s >= fill_from and note not in (36,):
                    continue
                out.append([note, a + s, min(T, a + s + 1), int(np.clip(v + rng.integers(-6, 7), 1, 127))])
        if fill:
            k = int(rng.integers(0, 2))
            for j, s in enumerate(range(fill_from, spb, 1 + k)):
                out.append([fill_notes[(j // 2) % 4], a + s, a + s + 1, int(90 + rng.integers(-8, 9))])
        if bar % 8 == 0:
            out.append([49, a, a + 1, 100])
    return sorted(out, key=lambda n: (n[1], n[0]))


def _midi_key(key: theory.Key) -> str:
    if key.mode in ("major", "minor"):
        return key.name
    return theory.Key(key.tonic, "minor" if key.is_minor else "major").name


def _safe(name: str) -> str:
    keep = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name.strip())
    return keep[:40] or "track"


def _file_stem(prefix: str, ctl: Controls, seed: int) -> str:
    return f"{prefix}_{ctl.key.name}_{int(round(ctl.tempo))}bpm_{_safe(ctl.style)}_s{int(seed)}"


def _rules_text(ctl: Controls, info: list[dict[str, Any]]) -> list[str]:
    out = []
    for t in info:
        out.append(f"{t['name']}: {t['source']}")
    out.append(f"chords {' '.join(ctl.chords)} one per bar (cycled) in {ctl.meter}, key {ctl.key.long_name}")
    return out
