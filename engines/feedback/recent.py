"""The log of recent work: ``<home>/feedback/recent.jsonl``, one JSON object a line.

``generate.music`` / ``generate.track`` / ``generate.continue`` and ``video.match`` /
``video.refine`` call :func:`record` after they succeed; the rating queue
(:mod:`engines.feedback.queue`) and ``prefs.pair`` (sidecar metadata for a result path)
read it back with :func:`read`.

A line is ``{"id": "...", "t": unix time, "kind": "generate"|"video", "data": {...}}``:

- kind ``generate``: the generate result dict (``midi``, ``wav``, ``stems``, ``controls``,
  ``notes``) plus ``seed``, ``model``, ``text`` and ``verb`` (music / track / continue);
- kind ``video``: ``video`` (path), ``text``, ``session_id``, ``start``, ``end`` and
  ``candidates`` (``[{"path", "title", "track_id", "offset_s", "score", "rank"}]``).

Each record is appended with one ``write`` followed by flush + fsync. A torn last line (a kill
mid-append) is skipped on reading and never glued to the next record. Recording never makes the
command that produced the work fail: an unwritable log is logged and ignored.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from pathlib import Path
from typing import Any

__all__ = ["MAX_BYTES", "path", "read", "record"]

log = logging.getLogger(__name__)

#: past this size the log keeps only its newest half (rewritten atomically)
MAX_BYTES = 8 * 2**20


def path(home: Any) -> Path:
    """``<home>/feedback/recent.jsonl`` (``home``: a DataHome or a folder)."""
    root = Path(getattr(home, "root", home))
    return root / "feedback" / "recent.jsonl"


def record(home: Any, kind: str, data: dict[str, Any]) -> dict[str, Any] | None:
    """Append one record; return it (``None`` if it could not be written)."""
    rec = {"id": uuid.uuid4().hex[:12], "t": time.time(), "kind": str(kind), "data": data}
    try:
        line = json.dumps(rec, default=str, separators=(",", ":")) + "\n"
        p = path(home)
        p.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(p, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            size = os.fstat(fd).st_size
            if size:
                last = os.pread(fd, 1, size - 1)
                if last != b"\n":  # a torn record from a killed writer: end it first
                    line = "\n" + line
            os.write(fd, line.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
        if size > MAX_BYTES:
            _trim(p)
    except (OSError, TypeError, ValueError) as exc:
        log.warning("could not record recent %s work: %s", kind, exc)
        return None
    return rec


def read(home: Any, *, kind: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
    """Records, oldest first (the newest ``limit`` of them); unreadable lines are skipped."""
    p = path(home)
    try:
        raw = p.read_bytes()
    except OSError:
        return []
    out: list[dict[str, Any]] = []
    for line in raw.splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if not isinstance(rec, dict) or not isinstance(rec.get("data"), dict):
            continue
        if kind is not None and rec.get("kind") != kind:
            continue
        out.append(rec)
    return out[-limit:] if limit else out


def _trim(p: Path) -> None:
    from engines.core.atomic import atomic_write_bytes

    raw = p.read_bytes()
    keep = raw[len(raw) // 2:]
    keep = keep[keep.find(b"\n") + 1:]
    atomic_write_bytes(p, keep)
