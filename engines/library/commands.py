"""Library commands: ``library.add``, ``search``, ``list``, ``show``, ``remove``, ``demo``.

Registered like any plugin's (``MANIFEST`` + ``enable(api)``). Handlers are named by
string so that registering imports nothing heavy.
"""

from __future__ import annotations

from typing import Any

from engines.core.jobs import JobContext
from engines.core.plugin_api import PluginAPI
from engines.core.registry import Param, Result

MANIFEST = {
    "name": "library",
    "version": "1.0",
    "api": 1,
    "description": "Music library: scan and analyse folders, describe and search tracks",
}

_H = "engines.library.commands:"


def enable(api: PluginAPI) -> None:
    api.register_command(
        id="library.add", title="Add music to the library", handler=_H + "add",
        params=[Param("paths", kind="paths", required=True, positional=True,
                      help="audio files and folders (scanned recursively)")],
        description="Scan files and folders (incrementally) and analyse new or changed tracks.",
        shortcut="Ctrl+Shift+A")
    api.register_command(
        id="library.search", title="Search the library", handler=_H + "search",
        params=[Param("text", required=True, positional=True, help="what you are looking for"),
                Param("top", kind="int", default=10, minimum=1, maximum=1000, help="number of results")],
        description="Rank tracks by meaning and by attributes the words imply (tempo, mode, energy...).",
        runs_in="host")
    api.register_command(
        id="library.list", title="List library tracks", handler=_H + "list_",
        params=[Param("limit", kind="int", default=0, minimum=0, help="at most this many tracks; 0 lists all"),
                Param("sort", kind="choice", default="added",
                      choices=("added", "title", "artist", "tempo", "duration", "energy", "path"))],
        runs_in="local")
    api.register_command(
        id="library.show", title="Show a track", handler=_H + "show",
        params=[Param("track_id", kind="int", required=True, positional=True, minimum=1)],
        runs_in="local")
    api.register_command(
        id="library.remove", title="Remove a track from the library", handler=_H + "remove",
        params=[Param("track_id", kind="int", required=True, positional=True, minimum=1)],
        description="Forget a track (the audio file itself is not deleted).")
    api.register_command(
        id="library.demo", title="Build the demo library", handler=_H + "demo",
        params=[Param("count", kind="int", default=30, minimum=1, maximum=30,
                      help="number of demo pieces")],
        description="Render pieces from the music21 corpus with the bundled SoundFont and index them.")


def add(ctx: JobContext, *, paths: list[str]) -> Result:
    from engines.library.catalog import Catalog
    from engines.library.index import load_index
    from engines.library.scanner import scan

    with Catalog(ctx.home) as cat:
        report = scan(ctx.sub(0.0, 0.98), paths, catalog=cat)
        load_index(cat)
        rows = cat.rows(report.added + report.updated)
    data: dict[str, Any] = report.to_dict()
    data["tracks"] = [rows[i] for i in report.added + report.updated if i in rows]
    data["indexed"] = report.indexed
    parts = [f"Indexed {report.indexed} track{'s' if report.indexed != 1 else ''}"]
    extra = [f"{n} {w}" for n, w in ((len(report.failed), "skipped"), (len(report.moved), "moved"),
                                     (len(report.removed), "removed"), (report.unchanged, "unchanged"))
             if n]
    msg = parts[0] + (f" ({', '.join(extra)})" if extra else "")
    ctx.progress(1.0, msg, force=True)
    return Result(data=data, files=[r["path"] for r in data["tracks"]], message=msg)


def search(ctx: JobContext, *, text: str, top: int = 10) -> Result:
    from engines.library.search import search as _search

    rows = _search(ctx.home, text, top=top)
    return Result(data=rows, files=[r["path"] for r in rows],
                  message=f"{len(rows)} result{'s' if len(rows) != 1 else ''} for {text!r}")


def list_(ctx: JobContext, *, limit: int = 0, sort: str = "added") -> Result:
    from engines.library.catalog import Catalog

    with Catalog(ctx.home) as cat:
        rows = cat.list_tracks(limit=limit or None, sort=sort)
        total = cat.count()
    return Result(data=rows, message=f"{len(rows)} of {total} tracks")


def show(ctx: JobContext, *, track_id: int) -> Result:
    from engines.library.catalog import Catalog

    with Catalog(ctx.home) as cat:
        row = cat.get_track(track_id)
    return Result(data=row, files=[row["path"]], message="")


def remove(ctx: JobContext, *, track_id: int) -> Result:
    from engines.library.catalog import Catalog
    from engines.library.index import load_index

    with Catalog(ctx.home) as cat:
        row = cat.get_track(track_id)
        cat.remove_tracks([track_id])
        load_index(cat)
    return Result(data={"removed": track_id, "path": row["path"], "title": row["title"]},
                  message=f"Removed track {track_id} ({row['title']}) from the library")


def demo(ctx: JobContext, *, count: int = 30) -> Result:
    from engines.library.catalog import Catalog
    from engines.library.demo import build_demo
    from engines.library.index import load_index
    from engines.library.scanner import scan

    pieces, failures = build_demo(ctx.sub(0.0, 0.4), count=count)
    with Catalog(ctx.home) as cat:
        report = scan(ctx.sub(0.4, 0.98), [p["path"] for p in pieces], catalog=cat, demo=True,
                      extra_tags={p["path"]: p["tags"] for p in pieces})
        load_index(cat)
        ids = sorted(set(report.added + report.updated) | {
            t for p, (t, *_r) in cat.file_states().items() if p in {q["path"] for q in pieces}})
        rows = cat.rows(ids)
    data = report.to_dict()
    data["failed"] = failures + data["failed"]
    data["tracks"] = [rows[i] for i in ids if i in rows]
    data["indexed"] = report.indexed
    msg = f"Demo library: {len(data['tracks'])} tracks in {ctx.home.root / 'demo'}"
    if data["failed"]:
        msg += f" ({len(data['failed'])} failed)"
    return Result(data=data, files=[r["path"] for r in data["tracks"]], message=msg)
