"""Sheet commands: ``sheet.add``, ``list``, ``remove``, ``pages``, ``find``, ``align``, ``export-alignment``.

Registered like any plugin's (``MANIFEST`` + ``enable(api)``); handlers are named by string
so registering imports nothing heavy. The model is ``resources/models/sheet`` unless
``$CUE_SHEET_MODEL`` names another (``debug`` or a folder).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from engines.core.errors import ParameterError
from engines.core.jobs import JobContext
from engines.core.plugin_api import PluginAPI
from engines.core.registry import Param, Result

MANIFEST = {
    "name": "sheet",
    "version": "1.0",
    "api": 1,
    "description": "Sheet music: identify the score, page and bar a recording plays; follow the score",
}

_H = "engines.sheet.commands:"


def enable(api: PluginAPI) -> None:
    api.register_command(
        id="sheet.add", title="Add scores to the sheet library", handler=_H + "add",
        params=[Param("paths", kind="paths", required=True, positional=True,
                      help="MusicXML/MXL/MEI/ABC/Humdrum/MIDI scores, PDF/PNG/JPG scans, or folders")],
        description="Engrave or read scores, cut staff snippets and index them; bad files are reported.")
    api.register_command(id="sheet.list", title="List the sheet library", handler=_H + "list_",
                         runs_in="local")
    api.register_command(
        id="sheet.remove", title="Remove a score from the sheet library", handler=_H + "remove",
        params=[Param("score_id", kind="int", required=True, positional=True, minimum=1)])
    api.register_command(
        id="sheet.pages", title="Show a score's pages and bar boxes", handler=_H + "pages",
        params=[Param("score_id", kind="int", required=True, positional=True, minimum=1)],
        description="The page images (PNG) of a score in the sheet library and each bar's box on them.",
        runs_in="local")
    api.register_command(
        id="sheet.find", title="Find the score a recording plays", handler=_H + "find",
        params=[Param("audio", kind="path", required=True, positional=True, help="recording or excerpt"),
                Param("top", kind="int", default=5, minimum=1, maximum=100, help="number of results")],
        description="Rank the library's scores with the page and bar where the excerpt is.")
    api.register_command(
        id="sheet.align", title="Align a recording with a score", handler=_H + "align",
        params=[Param("audio", kind="path", required=True, positional=True),
                Param("score", required=True, positional=True, help="a score id or a score file")],
        description="One point per bar: the time the bar starts in the recording, and its page.")
    api.register_command(
        id="sheet.export-alignment", title="Export an alignment (CSV/JSON)", handler=_H + "export_alignment",
        params=[Param("audio", kind="path", required=True, positional=True),
                Param("score", required=True, positional=True, help="a score id or a score file"),
                Param("out", kind="path", required=True, help="FILE.csv or FILE.json")])


def _lib(ctx: JobContext):  # noqa: ANN202
    from engines.sheet.library import SheetLibrary

    return SheetLibrary(ctx.home)


def add(ctx: JobContext, *, paths: list[str]) -> Result:
    with _lib(ctx) as lib:
        report = lib.add(paths, ctx)
    done = report["added"] + report["updated"]
    msg = f"Indexed {len(done)} score{'s' if len(done) != 1 else ''}"
    extra = [f"{len(report[k])} {k}" for k in ("unchanged", "failed") if report[k]]
    msg += f" ({', '.join(extra)})" if extra else ""
    for f in report["failed"]:
        msg += f"\n  skipped: {f['error']}"
    return Result(data=report, files=[d["path"] for d in done], message=msg)


def list_(ctx: JobContext) -> Result:
    with _lib(ctx) as lib:
        rows = lib.list()
    data = [{"score_id": r["id"], "title": r["title"], "kind": r["kind"], "format": r["format"],
             "pages": r["pages"], "bars": r["bars"], "path": r["path"]} for r in rows]
    return Result(data=data, message=f"{len(data)} score{'s' if len(data) != 1 else ''} in the sheet library")


def remove(ctx: JobContext, *, score_id: int) -> Result:
    with _lib(ctx) as lib:
        row = lib.remove(score_id)
    return Result(data={"removed": score_id, "path": row["path"], "title": row["title"]},
                  message=f"Removed score {score_id} ({row['title']}) from the sheet library")


def pages(ctx: JobContext, *, score_id: int) -> Result:
    with _lib(ctx) as lib:
        data = lib.pages(score_id)
    n = len(data["pages"])
    bars = sum(len(p["bars"]) for p in data["pages"])
    return Result(data=data, files=[p["png"] for p in data["pages"]],
                  message=f"{data['title'] or data['path']}: {n} page{'s' if n != 1 else ''}, {bars} bar boxes")


def find(ctx: JobContext, *, audio: str, top: int = 5) -> Result:
    with _lib(ctx) as lib:
        matches = lib.find(audio, top=top, ctx=ctx)
    data = [m.to_dict() for m in matches]
    msg = (f"Best: {matches[0].title} — page {matches[0].page}, bar {matches[0].bar} "
           f"({matches[0].score:.0%}, {matches[0].method})") if matches else "No match"
    return Result(data=data, files=[m.path for m in matches], message=msg)


def align(ctx: JobContext, *, audio: str, score: str) -> Result:
    with _lib(ctx) as lib:
        al = lib.align(audio, score, ctx=ctx)
    return Result(data=al.to_dict(), message=f"{len(al.points)} bars aligned ({al.method})")


def alignment_csv(points: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["time_s", "page", "bar"])
    for p in points:
        w.writerow([f"{p['time_s']:.3f}", p["page"], p["bar"]])
    return buf.getvalue()


def export_alignment(ctx: JobContext, *, audio: str, score: str, out: str) -> Result:
    from engines.core.atomic import atomic_write_text

    target = Path(out)
    if target.suffix.lower() not in (".csv", ".json"):
        raise ParameterError(f"--out must end in .csv or .json, not {target.name!r}")
    with _lib(ctx) as lib:
        al = lib.align(audio, score, ctx=ctx)
    text = alignment_csv(al.points) if target.suffix.lower() == ".csv" \
        else json.dumps(al.to_dict(), indent=2) + "\n"
    atomic_write_text(target, text)
    return Result(data={**al.to_dict(), "out": str(target.resolve())}, files=[str(target.resolve())],
                  message=f"Wrote {len(al.points)} points ({al.method}) to {target}")
