"""The demo library: music we render ourselves, so a first run shows real content at once.

Pieces come from the corpus bundled with music21 (Bach chorales, Essen folk songs,
O'Neill's Irish tunes, Haydn and Mozart quartet movements). Each is rendered with the
bundled General MIDI SoundFont under a *style recipe* (GM instruments, tempo,
transposition, an optional drum groove) chosen so the set spans slow/fast, major/minor,
bright/dark and sparse/dense. Excerpts are 30–40 s (short pieces loop). Files are FLAC
(32 kHz stereo, tagged) under ``<home>/demo/`` and are indexed as demo tracks.
"""

from __future__ import annotations

import concurrent.futures as cf
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engines.core.jobs import JobContext

DEMO_SR = 32000
MIN_SECONDS = 30.0
MAX_SECONDS = 40.0


@dataclass(frozen=True)
class Style:
    name: str
    programs: tuple[int, ...]   # GM programs, cycled over the score's parts
    genre: str
    instruments: str
    drums: str = ""             # "", "rock", "dance", "folk"
    octave: int = 0             # shift of the top part (brightness)
    velocity: int = 90


STYLES = {
    "organ": Style("church organ chorale", (19,), "classical chorale", "church organ", velocity=80),
    "choir": Style("choir", (52, 52, 52, 52), "classical choral", "choir aahs voices", velocity=70),
    "strings": Style("string quartet", (40, 40, 41, 42), "classical string quartet", "violin viola cello"),
    "brass": Style("brass ensemble", (56, 56, 60, 57), "orchestral brass", "trumpet horn trombone",
                   velocity=105),
    "piano": Style("solo piano", (0,), "classical piano", "piano", velocity=80),
    "harp": Style("flute and harp", (73, 46), "calm ambient", "flute harp", velocity=60),
    "musicbox": Style("music box", (10, 8), "lullaby", "music box celesta", octave=1, velocity=70),
    "fiddle": Style("folk band", (110, 21, 24), "folk celtic", "fiddle accordion guitar", drums="folk",
                    velocity=100),
    "reel": Style("irish session", (110, 73, 105), "irish folk", "fiddle flute banjo", velocity=100),
    "electro": Style("electronic", (81, 80, 38), "electronic dance", "synth lead synth bass drums",
                     drums="dance", octave=1, velocity=110),
    "rock": Style("rock band", (30, 29, 33), "rock", "distortion guitar bass drums", drums="rock",
                  velocity=120),
    "pad": Style("ambient pad", (89, 91, 95), "ambient electronic", "synth pads", octave=-1, velocity=55),
    "marimba": Style("mallets", (12, 11), "world percussion", "marimba vibraphone", velocity=95),
    "bassoon": Style("dark woodwinds", (70, 71, 68, 70), "orchestral woodwinds", "bassoon clarinet oboe",
                     octave=-1, velocity=75),
    "orchestra": Style("full orchestra", (48, 48, 49, 43), "orchestral", "string ensemble contrabass",
                       drums="", velocity=100),
}

#: (corpus name, opus number or None, style, bpm, transpose in semitones)
PIECES: tuple[tuple[str, int | None, str, float, int], ...] = (
    ("bach/bwv66.6", None, "organ", 60, 0),
    ("bach/bwv153.1", None, "choir", 56, -2),
    ("bach/bwv311", None, "strings", 72, 0),
    ("bach/bwv4.8", None, "bassoon", 64, -3),
    ("bach/bwv10.7", None, "orchestra", 84, 0),
    ("bach/bwv244.62", None, "pad", 58, 0),
    ("bach/bwv269", None, "brass", 96, 0),
    ("bach/bwv347", None, "piano", 76, 0),
    ("bach/bwv86.6", None, "musicbox", 88, 5),
    ("bach/bwv267", None, "electro", 124, 0),
    ("essenFolksong/altdeu10", 1, "fiddle", 150, 2),
    ("essenFolksong/altdeu10", 5, "reel", 132, 0),
    ("essenFolksong/altdeu10", 9, "harp", 70, 0),
    ("essenFolksong/han1", 3, "marimba", 120, 3),
    ("essenFolksong/han1", 7, "rock", 160, -5),
    ("essenFolksong/han1", 12, "musicbox", 100, 7),
    ("oneills1850", 2, "reel", 168, 0),
    ("oneills1850", 10, "fiddle", 144, 0),
    ("oneills1850", 25, "electro", 128, 0),
    ("oneills1850", 40, "piano", 110, 0),
    ("oneills1850", 5, "rock", 138, 0),
    ("oneills1850", 6, "harp", 80, -2),
    ("haydn/opus74no1/movement3", None, "strings", 140, 0),
    ("mozart/k80/movement4", None, "strings", 126, 0),
    ("mozart/k155/movement2", None, "strings", 66, 0),
    ("haydn/opus1no1/movement4", None, "brass", 132, 0),
    ("beethoven/opus18no1/movement3", None, "orchestra", 150, 0),
    ("bach/bwv311", None, "rock", 144, 0),
    ("bach/bwv153.1", None, "pad", 50, 0),
    ("oneills1850", 11, "marimba", 116, -3),
)


def _drum_notes(kind: str, bpm: float, seconds: float) -> list[tuple[int, float, int]]:
    """``(gm drum note, time, velocity)`` for a simple groove."""
    beat = 60.0 / bpm
    out: list[tuple[int, float, int]] = []
    n = int(seconds / beat)
    for i in range(n):
        t = i * beat
        if kind == "rock":
            out += [(36 if i % 2 == 0 else 38, t, 110), (42, t, 80), (42, t + beat / 2, 70)]
        elif kind == "dance":
            out += [(36, t, 115), (42, t + beat / 2, 85)] + ([(39, t, 90)] if i % 2 else [])
        elif kind == "folk":
            out += [(36 if i % 2 == 0 else 37, t, 80)]
    return out


def build_piece(index: int, out_dir: str, sr: int = DEMO_SR) -> dict[str, Any]:
    """Render piece ``index`` of :data:`PIECES` to ``out_dir``; returns its path and tags."""
    import numpy as np
    import soundfile as sf
    from music21 import corpus

    from engines.core.atomic import atomic_path
    from engines.media.midi import Note, Song, Track
    from engines.media.synth import render_song

    name, number, style_key, bpm, transpose = PIECES[index]
    style = STYLES[style_key]
    score = corpus.parse(name, number=number) if number is not None else corpus.parse(name)
    md = score.metadata
    title = str((md.title or md.movementName) if md is not None else "") or name.split("/")[-1]
    if title.startswith("movement") or title.startswith("bwv"):
        composer = name.split("/")[0].capitalize()
        title = f"{composer} {name.split('/', 1)[1].replace('/', ' ')}"
    qlen = float(score.highestTime) or 1.0
    spb = 60.0 / bpm
    piece_s = qlen * spb
    loops = max(1, int(np.ceil(MIN_SECONDS / piece_s)))
    tracks: list[Track] = []
    for pi, part in enumerate(score.parts):
        prog = style.programs[pi % len(style.programs)]
        shift = transpose + (12 * style.octave if pi == 0 else 0)
        notes: list[Note] = []
        for el in part.flatten().notes:
            start = float(el.offset) * spb
            dur = max(float(el.quarterLength), 0.25) * spb
            for p in getattr(el, "pitches", ()):
                for k in range(loops):
                    t0 = start + k * piece_s
                    if t0 >= MAX_SECONDS:
                        break
                    midi = min(127, max(0, int(p.midi) + shift))
                    notes.append(Note(midi, t0, min(t0 + dur * 0.95, MAX_SECONDS), style.velocity))
        tracks.append(Track(name=f"part {pi + 1}", program=prog, notes=notes))
    seconds = min(MAX_SECONDS, loops * piece_s)
    if style.drums:
        tracks.append(Track(name="drums", program=0, is_drum=True, notes=[
            Note(p, t, min(t + 0.1, seconds), v) for p, t, v in _drum_notes(style.drums, bpm, seconds)]))
    song = Song(tracks=tracks, tempo=bpm, title=title)
    audio = render_song(song, sr=sr)
    audio = audio[:, : int((seconds + 1.0) * sr)]
    fname = f"demo_{index + 1:02d}_{style_key}_{int(bpm)}bpm_{Path(name).name.replace('.', '_')}.flac"
    path = Path(out_dir) / fname
    tags = {"title": f"{title} ({style.name})", "artist": "Cue Studio demo",
            "album": "Cue Studio demo library", "genre": style.genre,
            "style": style.name, "instruments": style.instruments}
    with atomic_path(path) as tmp:
        with sf.SoundFile(str(tmp), "w", samplerate=sr, channels=audio.shape[0], format="FLAC",
                          subtype="PCM_16") as fh:
            fh.title, fh.artist, fh.album, fh.genre = tags["title"], tags["artist"], tags["album"], tags["genre"]
            fh.write(np.ascontiguousarray(audio.T))
    return {"path": str(path), "tags": tags}


def build_demo(ctx: JobContext, *, count: int = 30, workers: int | None = None) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """Render ``count`` demo pieces into ``ctx.home.root / "demo"`` (existing files are kept).

    Returns ``(pieces, failures)``.
    """
    from engines.library.scanner import mp_context

    out_dir = ctx.home.root / "demo"
    out_dir.mkdir(parents=True, exist_ok=True)
    count = max(1, min(count, len(PIECES)))
    pieces: list[dict[str, Any]] = []
    failures: list[dict[str, str]] = []
    n = min(workers or (os.cpu_count() or 1), count)
    with cf.ProcessPoolExecutor(max_workers=n, mp_context=mp_context()) as pool:
        futs = {pool.submit(build_piece, i, str(out_dir)): i for i in range(count)}
        for done, fut in enumerate(cf.as_completed(futs), 1):
            ctx.check()
            i = futs[fut]
            try:
                pieces.append(fut.result())
            except Exception as exc:  # one piece failing does not stop the demo
                failures.append({"path": f"{PIECES[i][0]}#{PIECES[i][1] or ''}", "message": str(exc)})
            ctx.progress(done / count, f"Rendered {done}/{count} demo pieces")
    pieces.sort(key=lambda p: p["path"])
    return pieces, failures
