"""Symbolic scores: engraving, note times and bar times in one isolated verovio run.

:func:`engines.media.score.engrave` gives pages, a timemap and measures but not the notes'
pitches, which the symbolic route needs to synthesise the score. This module runs the same
input checks (:func:`engines.media.score.read_score`: entity refusal, MXL size checks, size
limits) and then one child process that engraves, renders verovio's MIDI and returns everything.
"""

from __future__ import annotations

import base64
import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engines.core.errors import InputError

SYMBOLIC_EXTENSIONS = (".xml", ".musicxml", ".mxl", ".mei", ".abc", ".krn", ".hmd", ".mid", ".midi")


@dataclass
class SymbolicScore:
    pages: list[str]
    measure_ids: list[str]
    #: onset of each bar in ms at the score's own tempo
    bar_onsets_ms: list[float]
    #: note id -> onset ms
    note_onsets: dict[str, float]
    #: (pitch, start_s, end_s, velocity)
    notes: list[tuple[int, float, float, int]] = field(default_factory=list)
    title: str = ""
    format: str = ""
    duration_s: float = 0.0


def _midi_notes(data: bytes) -> list[tuple[int, float, float, int]]:
    import mido

    mf = mido.MidiFile(file=io.BytesIO(data))
    notes: list[tuple[int, float, float, int]] = []
    t = 0.0
    active: dict[tuple[int, int], list[tuple[float, int]]] = {}
    for msg in mf:  # merged tracks, times in seconds
        t += msg.time
        if msg.type == "note_on" and msg.velocity > 0:
            active.setdefault((msg.channel, msg.note), []).append((t, msg.velocity))
        elif msg.type in ("note_off", "note_on"):
            stack = active.get((msg.channel, msg.note))
            if stack:
                start, vel = stack.pop(0)
                notes.append((int(msg.note), start, max(t, start + 0.01), int(vel)))
    notes.sort(key=lambda n: (n[1], n[0]))
    return notes


def engrave_symbolic(text: str | bytes, fmt: str, options: dict[str, Any], label: str) -> dict[str, Any]:
    """Engrave with verovio and return pages, measures, note onsets and MIDI notes.

    Runs in-process for trusted corpus data (training) and in a child for user files.
    """
    from engines.media.score import verovio_pages

    tk, pages = verovio_pages(text, fmt, {"pageWidth": 2100, "scale": 40, "adjustPageHeight": True,
                                          "footer": "none", "header": "none", "breaks": "auto", **options}, label)
    fmt = "musicxml" if fmt == "midi" else fmt
    try:
        timemap = tk.renderToTimemap({"includeMeasures": True, "includeRests": False})
    except Exception:  # noqa: BLE001
        timemap = []
    measure_ids: list[str] = []
    onsets: list[float] = []
    note_onsets: dict[str, float] = {}
    for entry in timemap:
        mid = entry.get("measureOn")
        ts = float(entry.get("tstamp", 0.0))
        if mid and mid not in measure_ids:
            measure_ids.append(mid)
            onsets.append(ts)
        for nid in entry.get("on", []) or []:
            note_onsets[nid] = ts
    if not note_onsets:
        raise InputError(f"the {fmt} score has no notes", path=label)
    try:
        midi = base64.b64decode(tk.renderToMIDI())
        notes = _midi_notes(midi)
    except Exception:  # noqa: BLE001
        notes = []
    if not notes:
        raise InputError(f"the {fmt} score has no playable notes", path=label)
    title = ""
    try:
        import re

        mei = tk.getMEI({"pageNo": 0})
        for found in re.finditer(r"<title(?:\s[^>]*)?(?<!/)>(.*?)</title>", mei[:200_000], re.DOTALL):
            title = " ".join(re.sub(r"<[^>]+>", " ", found.group(1)).split())
            if title:
                break
    except Exception:  # noqa: BLE001
        title = ""
    return {"pages": pages, "measure_ids": measure_ids, "bar_onsets_ms": onsets, "note_onsets": note_onsets,
            "notes": notes, "title": title, "format": fmt,
            "duration_s": max(n[2] for n in notes)}


def load_symbolic(path: str | os.PathLike[str], *, options: dict[str, Any] | None = None,
                  timeout: float = 90.0, memory_mb: int = 2048) -> SymbolicScore:
    """Engrave a score file in an isolated child; see :class:`SymbolicScore`."""
    from engines.media.safe import run_isolated
    from engines.media.score import read_score

    p = Path(path)
    score = read_score(p)
    payload, fmt = score.payload, score.format
    out = run_isolated(engrave_symbolic, payload, fmt, dict(options or {}), str(p),
                       timeout=timeout + (30 if fmt == "midi" else 0), memory_mb=memory_mb,
                       path_for_errors=p)
    return SymbolicScore(**out)
