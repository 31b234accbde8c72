"""Small file checks shared by the media modules (no heavy imports)."""

from __future__ import annotations

import os
from pathlib import Path

from engines.core.errors import CorruptFileError, NotFoundError, UnsupportedFormatError


def _existing_file(path: str | os.PathLike[str]) -> Path:
    """``path`` as a Path after checking it is an existing, non-empty, readable file."""
    p = Path(path).expanduser()
    if not p.exists():
        raise NotFoundError("file not found", path=p)
    if p.is_dir():
        raise UnsupportedFormatError("is a folder, not a file", path=p)
    try:
        size = p.stat().st_size
    except OSError as exc:
        raise NotFoundError(f"cannot read the file: {exc.strerror}", path=p) from None
    if size == 0:
        raise CorruptFileError("empty file (0 bytes)", path=p)
    return p
