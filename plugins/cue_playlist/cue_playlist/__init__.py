"""Cue Studio plugin: export library tracks or a search's results as a playlist.

M3U (extended, UTF-8: DAWs, media players and most NLE asset browsers import it) or
CSV (spreadsheets, cue sheets for music supervisors). Uses only the plugin API.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from engines.core.plugin_api import JobContext, Param, ParameterError, PluginAPI, Result, atomic_write_text

MANIFEST = {
    "name": "playlist",
    "version": "1.0",
    "api": 1,
    "description": "Export the library or a search's results as an M3U or CSV playlist",
}

CSV_COLUMNS = ("track_id", "title", "artist", "album", "genre", "duration", "tempo", "key", "energy", "path")

_api: PluginAPI | None = None


def enable(api: PluginAPI) -> None:
    global _api
    _api = api
    api.register_command(
        id="playlist.export",
        title="Export playlist (M3U/CSV)",
        handler=export,
        description="Write the whole library, or the top results of a search, as a playlist file.",
        params=(
            Param("out", "path", required=True, positional=True, help="playlist file to write (.m3u/.m3u8/.csv)"),
            Param("query", "str", default="", help="search text; empty exports the whole library"),
            Param("top", "int", default=50, minimum=1, maximum=100000, help="how many search results"),
            Param("format", "choice", default="auto", choices=("auto", "m3u", "csv"),
                  help="file format; auto picks it from the file name"),
        ),
    )


def export(ctx: JobContext, *, out: str, query: str, top: int, format: str) -> Result:
    assert _api is not None
    fmt = format
    suffix = Path(out).suffix.lower()
    if fmt == "auto":
        if suffix in (".m3u", ".m3u8"):
            fmt = "m3u"
        elif suffix == ".csv":
            fmt = "csv"
        else:
            raise ParameterError("cannot tell the format from the name: use .m3u, .m3u8 or .csv, or --format",
                                 path=out)
    ctx.progress(0.1, "collecting tracks")
    if query.strip():
        rows: list[dict[str, Any]] = _api.run("library.search", ctx, text=query, top=top).data
    else:
        rows = _api.run("library.list", ctx).data
    ctx.check()
    text = to_m3u(rows) if fmt == "m3u" else to_csv(rows)
    path = atomic_write_text(out, text)
    ctx.progress(1.0, "done")
    return Result(data={"path": str(path.resolve()), "tracks": len(rows), "format": fmt},
                  files=[str(path.resolve())], message=f"Wrote {len(rows)} tracks to {path}")


def to_m3u(rows: list[dict[str, Any]]) -> str:
    lines = ["#EXTM3U"]
    for r in rows:
        who = f"{r.get('artist')} - " if r.get("artist") else ""
        lines.append(f"#EXTINF:{round(float(r.get('duration') or 0))},{who}{r.get('title') or Path(r['path']).stem}")
        lines.append(str(r["path"]))
    return "\n".join(lines) + "\n"


def to_csv(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: r.get(k, "") for k in CSV_COLUMNS})
    return buf.getvalue()
