"""Media commands: probe a file, render MIDI to WAV, engrave a score.

Loaded through the ``cue_studio.plugins`` entry point ``media``. Only ``engines.core`` is
imported here; the media modules load when a command runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engines.core.errors import ParameterError, UnsupportedFormatError
from engines.core.jobs import JobContext
from engines.core.plugin_api import PluginAPI
from engines.core.registry import Param, Result

MANIFEST = {
    "name": "media",
    "version": "1.0",
    "api": 1,
    "description": "Audio, video, MIDI and score files: probe, render MIDI to audio, engrave scores",
}

_MIDI = {".mid", ".midi", ".kar", ".rmi"}
_SCORE = {".xml", ".musicxml", ".mxl", ".mei", ".abc", ".krn"}


def enable(api: PluginAPI) -> None:
    api.register_command(
        id="media.probe", title="Probe media file", handler="engines.media.commands:probe",
        params=[Param("path", "path", required=True, positional=True,
                      help="audio, video, MIDI or score file")],
        description="Describe an audio, video, MIDI or score file (duration, rate, tracks, pages...)",
        runs_in="host",
    )
    api.register_command(
        id="media.render", title="Render MIDI to WAV", handler="engines.media.commands:render",
        params=[
            Param("midi", "path", required=True, positional=True, help="MIDI file"),
            Param("out", "path", help="WAV to write (default: exports/<name>.wav)"),
            Param("soundfont", "path", help="SoundFont (.sf2/.sf3); default: the one in settings"),
            Param("sample_rate", "int", minimum=8000, maximum=192000,
                  help="Hz; default: the music sample rate in settings"),
        ],
        description="Render a MIDI file with a SoundFont to a WAV file",
    )
    api.register_command(
        id="media.engrave", title="Engrave score", handler="engines.media.commands:engrave",
        params=[
            Param("score", "path", required=True, positional=True,
                  help="MusicXML, MXL, MEI, ABC, Humdrum or MIDI file"),
            Param("out", "path", help="folder for the pages (default: exports/<name>_score)"),
            Param("png", "bool", default=False, help="also write PNG images of the pages"),
        ],
        description="Engrave a score to SVG (and PNG) pages",
    )


def _kind(path: Path) -> str:
    from engines.media.audio import AUDIO_EXTENSIONS, VIDEO_EXTENSIONS

    suffix = path.suffix.lower()
    if suffix in _MIDI:
        return "midi"
    if suffix in _SCORE:
        return "score"
    if suffix in VIDEO_EXTENSIONS:
        return "video"
    if suffix in AUDIO_EXTENSIONS:
        return "audio"
    with open(path, "rb") as fh:
        head = fh.read(16)
    if head[:4] == b"MThd":
        return "midi"
    if head.lstrip()[:1] == b"<" or head[:2] == b"X:":
        return "score"
    return "audio"


def probe(ctx: JobContext, *, path: str) -> Result:
    """Describe a media file; ``data["kind"]`` is audio, video, midi or score."""
    from engines.media._files import _existing_file

    p = _existing_file(path)
    ctx.progress(0.0, f"probing {p.name}")
    ctx.check()
    kind = _kind(p)
    data: dict[str, Any] = {"path": str(p), "kind": kind, "size": p.stat().st_size}
    if kind == "audio":
        from engines.media.audio import audio_info

        info = audio_info(p)
        data.update(duration=info.duration, sample_rate=info.sample_rate, channels=info.channels,
                     format=info.format, codec=info.codec, tags=dict(info.tags))
        message = f"{p.name}: {info.format} audio, {info.duration:.2f} s, {info.sample_rate} Hz"
    elif kind == "video":
        from engines.media.video import video_info

        v = video_info(p)
        data.update(duration=v.duration, fps=v.fps, width=v.width, height=v.height,
                    frame_count=v.frame_count, has_audio=v.has_audio, codec=v.codec)
        if v.has_audio:
            from engines.media.audio import audio_info

            ctx.check()
            a = audio_info(p)
            data["audio"] = {"sample_rate": a.sample_rate, "channels": a.channels, "codec": a.codec}
        message = f"{p.name}: {v.width}x{v.height} video, {v.duration:.2f} s, {v.fps:.3g} fps"
    elif kind == "midi":
        from engines.media.midi import read_midi

        song = read_midi(p)
        data.update(
            duration=song.duration, tempo=song.tempo, key=song.key,
            time_signature=list(song.time_signature), title=song.title,
            tempo_changes=len(song.tempo_changes),
            tracks=[{"name": t.name, "program": t.program, "is_drum": t.is_drum, "notes": len(t.notes)}
                    for t in song.tracks],
        )
        message = (f"{p.name}: MIDI, {len(song.tracks)} tracks, {song.duration:.1f} s, "
                   f"{song.tempo:.0f} bpm, {song.key}")
    else:
        from engines.media.score import engrave as _engrave

        e = _engrave(p)
        data.update(format=e.format, title=e.title, pages=len(e.pages), measures=len(e.measures),
                    duration=(e.timemap[-1]["tstamp"] / 1000.0) if e.timemap else 0.0)
        message = f"{p.name}: {e.format} score, {len(e.pages)} pages, {len(e.measures)} measures"
    ctx.progress(1.0, "done")
    return Result(data=data, message=message)


def render(ctx: JobContext, *, midi: str, out: str | None = None, soundfont: str | None = None,
           sample_rate: int | None = None) -> Result:
    """Render a MIDI file to a WAV file (bits and defaults from the settings)."""
    from engines.media.audio import _existing_file, write_wav
    from engines.media.midi import read_midi
    from engines.media.synth import check_soundfont, render_song

    src = _existing_file(midi)
    settings = ctx.home.load_settings()
    sr = int(sample_rate or settings.music_sample_rate)
    sf_path = soundfont or settings.soundfont or None
    target = Path(out) if out else ctx.home.exports / f"{src.stem}.wav"
    if target.suffix.lower() != ".wav":
        raise ParameterError("the output must be a .wav file", path=target)
    ctx.progress(0.05, f"reading {src.name}")
    song = read_midi(src)
    if not any(t.notes for t in song.tracks):
        raise UnsupportedFormatError("the MIDI file has no notes to render", path=src)
    ctx.check()
    if sf_path:
        ctx.progress(0.15, "checking the SoundFont")
        check_soundfont(sf_path)
        ctx.check()
    ctx.progress(0.25, "rendering")
    y = render_song(song, sr=sr, soundfont=sf_path)
    ctx.check()
    ctx.progress(0.9, f"writing {target.name}")
    write_wav(target, y, sr=sr, bits=int(settings.wav_bits))
    ctx.progress(1.0, "done")
    duration = y.shape[1] / sr
    return Result(
        data={"path": str(target), "duration": duration, "sample_rate": sr, "channels": int(y.shape[0])},
        files=[str(target.resolve())],
        message=f"rendered {src.name} to {target.name} ({duration:.1f} s)",
    )


def engrave(ctx: JobContext, *, score: str, out: str | None = None, png: bool = False) -> Result:
    """Engrave a score to page SVGs (and PNGs) in a folder."""
    from engines.core.atomic import atomic_write_bytes, atomic_write_text
    from engines.media._files import _existing_file
    from engines.media.score import engrave as _engrave
    from engines.media.score import svg_to_png

    src = _existing_file(score)
    folder = Path(out) if out else ctx.home.exports / f"{src.stem}_score"
    ctx.progress(0.05, f"engraving {src.name}")
    e = _engrave(src)
    ctx.check()
    files: list[str] = []
    n = len(e.pages)
    for i, svg in enumerate(e.pages, start=1):
        target = folder / f"{src.stem}_p{i}.svg"
        atomic_write_text(target, svg)
        files.append(str(target.resolve()))
        if png:
            ctx.check()
            png_path = target.with_suffix(".png")
            atomic_write_bytes(png_path, svg_to_png(svg))
            files.append(str(png_path.resolve()))
        ctx.progress(0.3 + 0.7 * i / n, f"page {i} of {n}")
    return Result(
        data={"pages": n, "measures": len(e.measures), "title": e.title, "folder": str(folder)},
        files=files,
        message=f"engraved {src.name}: {n} page(s), {len(e.measures)} measures",
    )
