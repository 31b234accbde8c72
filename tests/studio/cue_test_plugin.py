"""A plugin for the GUI tests: test.* commands and a tiny fake library.

Loaded into the GUI's registry directly and into the real engine host with
``--isolated --plugin cue_test_plugin`` (tests/studio is put on PYTHONPATH), so the
tests do not depend on the real library engine or its run time. Stdlib only.
"""

from __future__ import annotations

import array
import json
import math
import os
import signal
import time
import wave
from pathlib import Path
from typing import Any

from engines.core.plugin_api import JobContext, NotFoundError, Param, PluginAPI, Result

MANIFEST = {"name": "gui-tests", "version": "1.0", "api": 1, "description": "Commands for the GUI tests"}

SR = 22050


def write_wav(path: Path, *, seconds: float = 1.0, freq: float = 440.0, sr: int = SR) -> Path:
    """A real 16-bit mono WAV (a decaying sine) written with the stdlib."""
    n = int(seconds * sr)
    samples = array.array("h", (
        int(12000 * math.sin(2 * math.pi * freq * i / sr) * (0.3 + 0.7 * abs(math.sin(math.pi * 2 * i / sr))))
        for i in range(n)
    ))
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes(samples.tobytes())
    return path


def peaks_of(path: Path, n: int = 600) -> list[float]:
    with wave.open(str(path), "rb") as w:
        data = array.array("h", w.readframes(w.getnframes()))
    if not data:
        return [0.0] * n
    step = max(1, len(data) // n)
    return [min(1.0, max(abs(v) for v in data[i:i + step] or [0]) / 32768) for i in range(0, step * n, step)][:n]


# --- test.* ---------------------------------------------------------------------------

def sleep(ctx: JobContext, *, seconds: float, steps: int) -> Result:
    for i in range(steps):
        ctx.check()
        ctx.progress(i / steps, f"step {i + 1} of {steps}", force=True)
        time.sleep(seconds / steps)
    ctx.check()
    ctx.progress(1.0, "done")
    return Result(data={"slept": seconds}, message=f"Slept {seconds:g} s")


def crash(ctx: JobContext) -> Result:  # noqa: ARG001
    os.kill(os.getpid(), signal.SIGSEGV)
    time.sleep(5)
    return Result(message="not reached")


def files(ctx: JobContext, *, count: int) -> Result:
    out = [str(write_wav(ctx.exports / f"tone_{i}.wav", freq=220.0 * (i + 1), seconds=0.5)) for i in range(count)]
    return Result(data={"count": count}, files=out, message=f"Wrote {count} WAV file(s)")


def echo(ctx: JobContext, **params: Any) -> Result:  # noqa: ARG001
    return Result(data=params, message=f"echo: {params['text']} x{params['count']}")


def noisy(ctx: JobContext) -> Result:  # noqa: ARG001
    print("stray print to stdout")
    os.write(1, b"raw bytes on fd 1\n")
    return Result(data={"ok": True}, message="noisy done")


def forked(ctx: JobContext) -> Result:  # noqa: ARG001
    import multiprocessing as mp

    with mp.get_context("fork").Pool(2) as pool:
        out = pool.map(abs, [-1, -2, -3])
    return Result(data=out, message="forked")


def boom(ctx: JobContext) -> Result:  # noqa: ARG001
    raise RuntimeError("kaboom")


# --- fake library ---------------------------------------------------------------------

def _db(ctx: JobContext) -> Path:
    return ctx.home.root / "test_library.json"


def _load(ctx: JobContext) -> list[dict[str, Any]]:
    try:
        return json.loads(_db(ctx).read_text("utf-8"))
    except FileNotFoundError:
        return []


def _save(ctx: JobContext, rows: list[dict[str, Any]]) -> None:
    tmp = _db(ctx).with_suffix(".tmp")
    tmp.write_text(json.dumps(rows), "utf-8")
    os.replace(tmp, _db(ctx))


KEYS = ["A minor", "C major", "E minor", "G major", "D minor"]


def _row(path: Path, i: int, *, demo: bool) -> dict[str, Any]:
    with wave.open(str(path), "rb") as w:
        duration = w.getnframes() / w.getframerate()
    key = KEYS[i % len(KEYS)]
    return {
        "track_id": 0, "path": str(path), "title": path.stem.replace("_", " ").title(),
        "artist": "Cue Studio" if demo else "Test Artist", "album": "Demo" if demo else "",
        "genre": ["ambient", "piano", "folk", "chorale"][i % 4], "duration": duration,
        "tempo": 80.0 + 7 * i, "key": key, "mode": key.split()[1], "energy": (i * 0.17) % 1.0,
        "brightness": 0.5, "onset_density": 2.0, "loudness_db": -14.0, "demo": demo,
    }


def _add_rows(ctx: JobContext, paths: list[Path], *, demo: bool) -> int:
    rows = _load(ctx)
    known = {r["path"] for r in rows}
    next_id = max([r["track_id"] for r in rows] + [0]) + 1
    added = 0
    for i, p in enumerate(paths):
        ctx.check()
        ctx.progress(i / max(1, len(paths)), f"indexing {p.name}")
        if str(p) in known:
            continue
        row = _row(p, len(rows), demo=demo)
        row["track_id"] = next_id
        next_id += 1
        rows.append(row)
        added += 1
    _save(ctx, rows)
    return added


def lib_list(ctx: JobContext) -> Result:
    rows = _load(ctx)
    return Result(data=rows, message=f"{len(rows)} track(s)")


def lib_search(ctx: JobContext, *, text: str, top: int) -> Result:
    words = text.lower().split()
    out = []
    for r in _load(ctx):
        hay = f"{r['title']} {r['artist']} {r['genre']} {r['key']}".lower()
        matched = [w for w in words if w in hay]
        if matched:
            out.append({**r, "score": len(matched) / len(words), "matched": matched})
    out.sort(key=lambda r: -r["score"])
    return Result(data=out[:top], message=f"{len(out[:top])} match(es) for {text!r}")


def lib_show(ctx: JobContext, *, track_id: int) -> Result:
    for r in _load(ctx):
        if r["track_id"] == track_id:
            beat = 60.0 / r["tempo"]
            beats = [round(k * beat, 3) for k in range(int(r["duration"] / beat) + 1)]
            return Result(data={**r, "beats": beats, "energy_curve": [0.5] * 20,
                                "peaks": peaks_of(Path(r["path"])), "timbre": "bright sine",
                                "description": f"{r['genre']} piece in {r['key']}"},
                          message=r["title"])
    raise NotFoundError(f"no track {track_id}")


def lib_add(ctx: JobContext, *, paths: list[str]) -> Result:
    found: list[Path] = []
    skipped = []
    for p in map(Path, paths):
        if p.is_dir():
            found += sorted(q for q in p.rglob("*.wav"))
        elif p.suffix.lower() == ".wav" and p.is_file():
            found.append(p)
        else:
            skipped.append({"path": str(p), "error": "not a WAV file"})
    added = _add_rows(ctx, found, demo=False)
    return Result(data={"added": added, "updated": 0, "moved": 0, "removed": 0, "skipped": skipped},
                  message=f"Added {added} track(s)")


def lib_demo(ctx: JobContext, *, count: int) -> Result:
    folder = ctx.home.root / "demo"
    paths = [write_wav(folder / f"demo_piece_{i:02d}.wav", seconds=0.6 + 0.05 * i, freq=200.0 + 40 * i)
             for i in range(count)]
    added = _add_rows(ctx, paths, demo=True)
    return Result(data={"added": added}, files=[str(p) for p in paths], message=f"Demo library: {added} pieces")


def enable(api: PluginAPI) -> None:
    P = Param
    api.register_command(id="test.sleep", title="Sleep (test)", handler=sleep,
                         params=(P("seconds", "float", 5.0, minimum=0), P("steps", "int", 50, minimum=1)))
    api.register_command(id="test.crash", title="Crash the engine host (test)", handler=crash)
    api.register_command(id="test.files", title="Write WAV files (test)", handler=files,
                         params=(P("count", "int", 2, minimum=1, maximum=10),))
    api.register_command(id="test.noisy", title="Print to stdout (test)", handler=noisy)
    api.register_command(id="test.fork", title="Fork workers (test)", handler=forked)
    api.register_command(id="test.boom", title="Raise a bug (test)", handler=boom)
    api.register_command(
        id="test.echo", title="Echo parameters (test)", handler=echo, shortcut="Ctrl+Alt+E",
        params=(
            Param("text", "str", required=True, help="what to say"),
            Param("count", "int", 1, minimum=1, maximum=10),
            Param("ratio", "float", 0.5, minimum=0.0, maximum=1.0),
            Param("loud", "bool", False),
            Param("mode", "choice", "calm", choices=("calm", "wild")),
            Param("source", "path", ""),
            Param("inputs", "paths", []),
        ),
    )
    api.register_command(id="library.list", title="List the library", handler=lib_list, runs_in="host")
    api.register_command(id="library.search", title="Search the library", handler=lib_search,
                         params=(P("text", "str", required=True, positional=True), P("top", "int", 20)))
    api.register_command(id="library.show", title="Show a track", handler=lib_show,
                         params=(P("track_id", "int", required=True, positional=True),))
    api.register_command(id="library.add", title="Add music to the library", handler=lib_add,
                         params=(P("paths", "paths", required=True, positional=True),), shortcut="Ctrl+Shift+A")
    api.register_command(id="library.demo", title="Build the demo library", handler=lib_demo,
                         params=(P("count", "int", 30, minimum=1),))
