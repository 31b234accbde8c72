"""Files in and out of the app by drag and drop.

Dragging a track or a result out hands the receiver (a DAW, an NLE, a file manager)
``text/uri-list`` file URLs of files that exist; they reference them in place.
Dropping files or folders onto the window adds them to the library.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from PySide6.QtCore import QMimeData, Qt, QUrl
from PySide6.QtGui import QDrag
from PySide6.QtWidgets import QWidget


def existing_files(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """The absolute paths among ``paths`` that are existing files, in order, without repeats."""
    out: list[Path] = []
    for p in paths:
        if not p:
            continue
        path = Path(p).expanduser()
        if path.is_file():
            path = path.resolve()
            if path not in out:
                out.append(path)
    return out


def mime_for_files(paths: Iterable[str | os.PathLike[str]]) -> QMimeData | None:
    """Mime data carrying file URLs (and the paths as text) for the files that exist.

    Returns ``None`` when none of ``paths`` is an existing file.
    """
    files = existing_files(paths)
    if not files:
        return None
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in files])
    mime.setText("\n".join(str(p) for p in files))
    return mime


def paths_from_mime(mime: QMimeData) -> list[str]:
    """Local files and folders carried by a drop (remote URLs are ignored)."""
    if not mime.hasUrls():
        return []
    out = []
    for url in mime.urls():
        if url.isLocalFile():
            local = url.toLocalFile()
            if local and os.path.exists(local):
                out.append(local)
    return out


def drag_files(source: QWidget, mime: QMimeData | None) -> None:
    """Start a copy drag of ``mime`` (file URLs) from ``source``; nothing when ``mime`` is None."""
    if mime is None:
        return
    drag = QDrag(source)
    drag.setMimeData(mime)
    drag.exec(Qt.DropAction.CopyAction, Qt.DropAction.CopyAction)
