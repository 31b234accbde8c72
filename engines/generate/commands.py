"""Commands of the generate engine: ``generate.music``, ``generate.controls``,
``generate.track`` and ``generate.continue``.

Registered through the ``cue_studio.plugins`` entry point
(``generate = "engines.generate.commands"``). Importing this module is cheap: handlers
are named as strings and import torch only when they run.
"""

from __future__ import annotations

from typing import Any

from engines.core.jobs import JobContext
from engines.core.plugin_api import Param, PluginAPI, Result

MANIFEST = {
    "name": "generate",
    "version": "1.0",
    "api": 1,
    "description": "Music from text and MIDI: key, tempo, chords, meter, instruments; arrangement",
}

_H = "engines.generate.commands"

CONTROL_PARAMS = (
    Param("text", "str", default="", help="prompt, e.g. 'melancholic piano in D minor, 70 bpm, 3/4'"),
    Param("key", "str", help="key, e.g. Dm, F# major, Bb"),
    Param("mode", "choice", choices=("major", "minor", "dorian", "mixolydian", "phrygian", "lydian"),
          help="mode (overrides the key's)"),
    Param("tempo", "float", help="beats per minute (20-300)"),
    Param("meter", "str", help="time signature, e.g. 4/4, 3/4, 6/8"),
    Param("chords", "str", help="chord symbols, one per bar, cycled: 'Dm Bb F A'"),
    Param("bars", "int", help="length in bars"),
    Param("instruments", "str", help="comma-separated: 'piano,strings,bass'"),
    Param("style", "str", help="pop, lofi, jazz, rock, classical, chorale, cinematic, ambient, ..."),
    Param("density", "float", help="0 sparse .. 1 busy"),
    Param("drums", "bool", help="add (or, with --no-drums, leave out) a drum track"),
)
OUTPUT_PARAMS = (
    Param("seed", "int", default=0, help="same seed and inputs give the same files"),
    Param("out", "path", help="output folder (default: exports/generate in the data home)"),
    Param("render", "bool", default=True, help="also write the WAV mix and stems"),
    Param("model", "str", default="default", help="'default', 'debug' or a model folder"),
)


def enable(api: PluginAPI) -> None:
    api.register_command(
        id="generate.music", title="Generate music", handler=f"{_H}:music",
        description="Multi-track MIDI, WAV mix and stems from text and/or explicit controls; with --midi, "
                    "arrange the missing tracks of a MIDI file (its tracks are kept note for note).",
        params=(*CONTROL_PARAMS, Param("midi", "path", help="MIDI file to arrange around"), *OUTPUT_PARAMS),
        shortcut="Ctrl+G",
    )
    api.register_command(
        id="generate.controls", title="Resolve generation controls", handler=f"{_H}:controls", runs_in="local",
        description="What a prompt means: key, mode, tempo, meter, chords, bars, instruments, style "
                    "(explicit fields win). Cheap except for the first load of the text model.",
        params=CONTROL_PARAMS,
    )
    api.register_command(
        id="generate.track", title="Regenerate one track", handler=f"{_H}:track",
        description="Regenerate one track of a MIDI file with a new seed, keeping the others.",
        params=(Param("midi", "path", required=True, positional=True, help="MIDI file (e.g. a generated one)"),
                Param("track", "str", required=True, help="name of the track to regenerate"),
                *CONTROL_PARAMS, *OUTPUT_PARAMS),
    )
    api.register_command(
        id="generate.continue", title="Continue the piece", handler=f"{_H}:continue_",
        description="Append bars to every track of a MIDI file; the existing notes are kept.",
        params=(Param("midi", "path", required=True, positional=True, help="MIDI file to continue"),
                Param("add_bars", "int", default=4, help="how many bars to add"),
                *CONTROL_PARAMS, *OUTPUT_PARAMS),
    )


def _engine(name: str, device: str, home: Any = None) -> Any:
    """The engine for ``--model NAME``: ``default`` is the generator version selected in ``home``
    (``studio prefs models``; the shipped model when none is), ``base`` always the shipped one."""
    from engines.feedback.versions import generator

    return generator(name, device, home)


def _request(ctx: JobContext, p: dict[str, Any]) -> Any:
    from engines.generate.engine import GenerateRequest

    s = ctx.home.load_settings()
    out = p.get("out") or str(ctx.home.exports / "generate")
    return GenerateRequest(
        text=p.get("text") or "", key=p.get("key") or None, mode=p.get("mode") or None, tempo=p.get("tempo"),
        meter=p.get("meter") or None, chords=p.get("chords") or None, bars=p.get("bars"),
        instruments=p.get("instruments") or None, style=p.get("style") or None, density=p.get("density"),
        drums=p.get("drums"), seed=int(p.get("seed") or 0), midi=p.get("midi") or None, out_dir=out,
        soundfont=s.soundfont or None, sample_rate=int(s.music_sample_rate), wav_bits=int(s.wav_bits),
        render=bool(p.get("render", True)),
    )


def _result(res: Any, verb: str) -> Result:
    d = res.to_dict()
    c = res.controls
    msg = (f"{verb} {c['bars']} bars in {c['key']} at {c['tempo']:g} bpm, {c['meter']}, "
           f"chords {' '.join(c['chords'])}: {res.midi}")
    return Result(data=d, files=res.files, message=msg)


def _record(ctx: JobContext, res: Any, req: Any, p: dict[str, Any], eng: Any, verb: str) -> None:
    """Log the result for the preference queue (``engines.feedback.recent``); never fails the job."""
    from engines.feedback.recent import record

    record(ctx.home, "generate", {**res.to_dict(), "seed": req.seed, "model": p.get("model") or "default",
                                  "model_version": str(getattr(eng, "version", "") or ""),
                                  "text": req.text, "verb": verb, "source_midi": p.get("midi")})


def music(ctx: JobContext, **p: Any) -> Result:
    req = _request(ctx, p)
    eng = _engine(p.get("model") or "default", ctx.home.load_settings().compute_device, ctx.home)
    res = eng.generate(req, progress=ctx.progress, cancel=ctx.cancel)
    _record(ctx, res, req, p, eng, "music")
    return _result(res, "Arranged" if req.midi else "Generated")


def controls(ctx: JobContext, **p: Any) -> Result:  # noqa: ARG001
    from engines.generate.controls import resolve_controls

    c = resolve_controls(p.get("text") or "", key=p.get("key") or None, mode=p.get("mode") or None,
                         tempo=p.get("tempo"), meter=p.get("meter") or None, chords=p.get("chords") or None,
                         bars=p.get("bars"), instruments=p.get("instruments") or None,
                         style=p.get("style") or None, density=p.get("density"), drums=p.get("drums"))
    d = c.to_dict()
    msg = "\n".join(f"{k}: {v}" for k, v in d.items() if k != "sources")
    return Result(data=d, message=msg)


def track(ctx: JobContext, **p: Any) -> Result:
    req = _request(ctx, {**p, "midi": None})
    eng = _engine(p.get("model") or "default", ctx.home.load_settings().compute_device, ctx.home)
    res = eng.regenerate_track(p["midi"], p["track"], req, progress=ctx.progress, cancel=ctx.cancel)
    _record(ctx, res, req, p, eng, "track")
    return _result(res, f"Regenerated {p['track']!r}:")


def continue_(ctx: JobContext, **p: Any) -> Result:
    req = _request(ctx, {**p, "midi": None})
    eng = _engine(p.get("model") or "default", ctx.home.load_settings().compute_device, ctx.home)
    res = eng.continue_piece(p["midi"], int(p.get("add_bars") or 4), req, progress=ctx.progress,
                             cancel=ctx.cancel)
    _record(ctx, res, req, p, eng, "continue")
    return _result(res, "Continued to")
