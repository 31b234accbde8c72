"""Instrument commands: add sources, list, remove, find the instruments of a song, render,
"more like this".

Loaded through the ``cue_studio.plugins`` entry point ``instruments``. Only
``engines.core`` is imported here; the engine loads when a command runs. The model is the
shipped one unless ``$STUDIO_INSTRUMENTS_MODEL`` names another (``debug`` or a folder).
"""

from __future__ import annotations

import functools
import os
from typing import TYPE_CHECKING, Any

from engines.core.jobs import JobContext
from engines.core.plugin_api import PluginAPI
from engines.core.registry import Param, Result

if TYPE_CHECKING:
    from engines.instruments.engine import Engine
    from engines.instruments.library import InstrumentLibrary

MANIFEST = {
    "name": "instruments",
    "version": "1.0",
    "api": 1,
    "description": "Find your presets and samples that sound like the instruments playing in a song",
}


def enable(api: PluginAPI) -> None:
    api.register_command(
        id="instruments.add", title="Add instrument sources", handler="engines.instruments.commands:add",
        params=[Param("paths", "paths", required=True, positional=True,
                      help="SoundFonts (.sf2/.sf3), folders of samples, or samples")],
        description="Index SoundFont presets and samples (incremental; bad files are reported and skipped)",
    )
    api.register_command(
        id="instruments.list", title="List instrument sources", handler="engines.instruments.commands:list_",
        params=[Param("instruments", "bool", default=False, help="also list every instrument")],
        description="List the instrument sources and how many instruments each holds", runs_in="local",
    )
    api.register_command(
        id="instruments.remove", title="Remove instrument source", handler="engines.instruments.commands:remove",
        params=[Param("id", "int", required=True, positional=True, help="source id (see instruments list)")],
        description="Remove a source and its instruments from the index (files are not touched)",
    )
    api.register_command(
        id="instruments.find", title="Find instruments in a song", handler="engines.instruments.commands:find",
        params=[
            Param("audio", "path", required=True, positional=True, help="song or region to listen to"),
            Param("start", "float", minimum=0, help="region start in seconds"),
            Param("end", "float", minimum=0, help="region end in seconds"),
            Param("top", "int", default=5, minimum=1, maximum=100, help="matches per instrument"),
        ],
        description="Detect the instruments of a mixture and find the closest presets and samples for each",
        shortcut="Ctrl+Shift+I",
    )
    api.register_command(
        id="instruments.render", title="Render instrument to WAV", handler="engines.instruments.commands:render",
        params=[
            Param("id", "int", required=True, positional=True, help="instrument id (from instruments find)"),
            Param("out", "path", help="WAV to write (default: exports/<name>.wav)"),
            Param("note", "int", minimum=0, maximum=127, help="MIDI note the phrase centres on"),
        ],
        description="Render a preset's audition phrase (or write the sample) as a WAV to drag into a DAW",
    )
    api.register_command(
        id="instruments.similar", title="More like this", handler="engines.instruments.commands:similar",
        params=[
            Param("id", "int", required=True, positional=True, help="instrument id"),
            Param("top", "int", default=10, minimum=1, maximum=100, help="how many"),
        ],
        description="Search the library by one instrument alone",
    )


@functools.lru_cache(maxsize=2)
def _engine(name: str) -> Engine:
    from engines.instruments.engine import Engine

    return Engine.from_pretrained(name)


def _library(ctx: JobContext) -> InstrumentLibrary:
    from engines.instruments.library import InstrumentLibrary

    return InstrumentLibrary(ctx.home, _engine(os.environ.get("STUDIO_INSTRUMENTS_MODEL", "default")))


def add(ctx: JobContext, *, paths: list[str]) -> Result:
    with _library(ctx) as lib:
        report = lib.add(paths, ctx)
    d = report.to_dict()
    msg = (f"{report.added} instrument(s) indexed from {report.files_indexed} file(s); "
           f"{report.files_unchanged} unchanged; {len(report.skipped)} skipped")
    for s in report.skipped[:20]:
        msg += f"\n  skipped: {s['error']}"
    return Result(data=d, message=msg)


def list_(ctx: JobContext, *, instruments: bool = False) -> Result:
    with _library(ctx) as lib:
        sources = lib.list_sources(instruments=instruments)
        stale = lib.stale_sources()
    lines = [f"{s['id']:>4}  {s['kind']:<9} {s['instruments']:>5} instruments  {s['errors']} errors  {s['path']}"
             for s in sources]
    if stale:
        lines.append(f"{len(stale)} source(s) were indexed with another model: add them again")
    return Result(data={"sources": sources, "stale": stale}, message="\n".join(lines) or "no instrument sources")


def remove(ctx: JobContext, *, id: int) -> Result:  # noqa: A002 - the CLI's name
    with _library(ctx) as lib:
        d = lib.remove(id)
    return Result(data=d, message=f"removed {d['path']} ({d['instruments_removed']} instruments)")


def find(ctx: JobContext, *, audio: str, start: float | None = None, end: float | None = None,
         top: int = 5) -> Result:
    from engines.instruments.engine import FindRequest

    with _library(ctx) as lib:
        if lib.count() == 0:
            ctx.progress(0.0, "the instrument library is empty: add SoundFonts or samples first")
        result = lib.engine.find(FindRequest(audio, start=start, end=end, top_k=top), library=lib, ctx=ctx)
    data: dict[str, Any] = result.to_dict()
    lines = []
    for s in result.slots:
        best = ", ".join(f"{m.name} [{m.instrument_id}] {m.score:.2f}" for m in s.matches[:3]) or "no match"
        lines.append(f"instrument {s.index + 1} (around note {s.note}, {100 * s.coverage:.0f}% of the time): {best}")
    lines += list(result.warnings)
    return Result(data=data, message="\n".join(lines) or "no instrument found")


def render(ctx: JobContext, *, id: int, out: str | None = None, note: int | None = None) -> Result:  # noqa: A002
    settings = ctx.home.load_settings()
    with _library(ctx) as lib:
        path = lib.render(id, out, note=note, sr=settings.music_sample_rate, bits=settings.wav_bits)
    return Result(data={"path": str(path), "instrument_id": id}, files=[str(path)], message=f"wrote {path}")


def similar(ctx: JobContext, *, id: int, top: int = 10) -> Result:  # noqa: A002
    with _library(ctx) as lib:
        matches = lib.similar(id, k=top)
    from dataclasses import asdict

    rows = [asdict(m) for m in matches]
    return Result(data={"instrument_id": id, "matches": rows},
                  message="\n".join(f"{m.instrument_id:>6}  {m.score:.3f}  {m.name}  ({m.source_path})"
                                    for m in matches) or "no other instruments")
