"""Generator versions made from the user's votes, and which one ``generate`` uses.

Layout (in the data home)::

    models/generate/<version>/model.safetensors   weights (a RollDiffusion, as the shipped model)
    models/generate/<version>/config.json         its ModelConfig (+ "version", "parent", "metrics")
    models/generate/<version>/MODEL_CARD.md       parent, votes used, command, metrics
    models/generate/selected.json                 {"selected": VERSION, "history": [...]}

``"base"`` is the shipped model (``resources/models/generate``, never written to). Selecting
a version is one atomic write of ``selected.json``; its ``history`` (the versions selected
before) makes :func:`revert` step back to the previous one, then to ``base``.

``generate`` commands resolve ``--model default`` through :func:`generator` (see
``engines/generate/commands.py:_engine``), so the selected version is what the user hears.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

from engines.core.atomic import atomic_write_text
from engines.core.errors import EngineError, NotFoundError, ParameterError

BASE = "base"
_VERSION_RE = re.compile(r"^g(\d{3,})$")
MAX_HISTORY = 50


def versions_dir(home: Any) -> Path:
    return Path(home.root) / "models" / "generate"


def _selected_path(home: Any) -> Path:
    return versions_dir(home) / "selected.json"


def _is_version(folder: Path) -> bool:
    return bool(_VERSION_RE.match(folder.name)) and (folder / "model.safetensors").is_file() and (
        folder / "config.json").is_file()


def version_names(home: Any) -> list[str]:
    root = versions_dir(home)
    if not root.is_dir():
        return []
    return sorted((p.name for p in root.iterdir() if _is_version(p)), key=lambda v: int(v[1:]))


def read_selection(home: Any) -> dict[str, Any]:
    try:
        d = json.loads(_selected_path(home).read_text("utf-8"))
        if isinstance(d, dict) and isinstance(d.get("selected"), str):
            d.setdefault("history", [])
            return d
    except (OSError, ValueError):
        pass
    return {"selected": BASE, "history": []}


def selected(home: Any) -> str:
    """The selected version (``"base"`` when none is, or when the selected one is gone)."""
    v = read_selection(home)["selected"]
    if v != BASE and v not in version_names(home):
        return BASE
    return v


def version_info(home: Any, version: str) -> dict[str, Any]:
    if version == BASE:
        return {"version": BASE, "parent": None, "created": None, "metrics": {}, "votes_used": None,
                "path": None, "base_model": "default"}
    folder = versions_dir(home) / version
    if not _is_version(folder):
        raise NotFoundError(f"no generator version {version!r} (see `studio prefs models`)", path=folder)
    cfg = json.loads((folder / "config.json").read_text("utf-8"))
    fv = cfg.get("extra", {}).get("feedback", {})
    return {"version": version, "parent": fv.get("parent"), "created": fv.get("created"),
            "metrics": fv.get("metrics", {}), "votes_used": fv.get("votes_used"), "path": str(folder),
            "base_model": fv.get("base_model"), "method": fv.get("method")}


def list_versions(home: Any) -> dict[str, Any]:
    sel = selected(home)
    rows = [version_info(home, BASE)] + [version_info(home, v) for v in version_names(home)]
    for r in rows:
        r["selected"] = r["version"] == sel
    return {"selected": sel, "versions": rows}


def select(home: Any, version: str) -> dict[str, Any]:
    """Make ``version`` (or ``"base"``) the one ``generate`` uses."""
    if version != BASE:
        version_info(home, version)  # raises NotFoundError
    cur = read_selection(home)
    hist = list(cur.get("history", []))
    if cur["selected"] != version:
        hist = (hist + [cur["selected"]])[-MAX_HISTORY:]
    data = {"selected": version, "history": hist, "updated": time.time()}
    atomic_write_text(_selected_path(home), json.dumps(data, indent=2) + "\n")
    return data


def revert(home: Any) -> dict[str, Any]:
    """Go back to the version selected before the current one (``base`` at the end)."""
    cur = read_selection(home)
    if cur["selected"] == BASE and not cur.get("history"):
        raise ParameterError("nothing to revert: the shipped model (base) is already selected")
    hist = [v for v in cur.get("history", []) if v == BASE or v in version_names(home)]
    prev = hist.pop() if hist else BASE
    data = {"selected": prev, "history": hist, "updated": time.time(), "reverted_from": cur["selected"]}
    atomic_write_text(_selected_path(home), json.dumps(data, indent=2) + "\n")
    return data


def new_version_folder(home: Any) -> tuple[str, Path]:
    """A fresh temporary folder to write a version into; :func:`publish` renames it."""
    root = versions_dir(home)
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".new.{uuid.uuid4().hex[:8]}.part"
    tmp.mkdir()
    return tmp.name, tmp


def publish(home: Any, tmp: Path, on_name: Any = None) -> str:
    """Rename ``tmp`` to the next free ``gNNN`` (atomic); ``on_name(version, tmp)`` may rewrite
    files that name the version first. Returns the version."""
    root = versions_dir(home)
    for _ in range(100):
        existing = [int(p.name[1:]) for p in root.iterdir() if _VERSION_RE.match(p.name)]
        version = f"g{(max(existing) + 1) if existing else 1:03d}"
        if on_name is not None:
            on_name(version, tmp)
        try:
            os.rename(tmp, root / version)
        except OSError:
            continue
        return version
    shutil.rmtree(tmp, ignore_errors=True)
    raise EngineError("could not create a new generator version", path=root)


def model_source(home: Any | None, name: str) -> tuple[str, str]:
    """``(what Engine.from_pretrained gets, version label)`` for a ``--model`` value.

    ``"default"`` is the selected version of ``home`` (the shipped model when none is);
    ``"base"`` is always the shipped model; ``gNNN`` a version of ``home``.
    """
    if name in ("default", BASE):
        v = selected(home) if (home is not None and name == "default") else BASE
        if v == BASE:
            return "default", BASE
        return str(versions_dir(home) / v), v
    if home is not None and _VERSION_RE.match(name):
        folder = versions_dir(home) / name
        if not _is_version(folder):
            raise NotFoundError(f"no generator version {name!r} (see `studio prefs models`)", path=folder)
        return str(folder), name
    return name, name


@functools.lru_cache(maxsize=3)
def _load(source: str, device: str, stamp: float) -> Any:  # noqa: ARG001 (stamp: reload when rewritten)
    from engines.generate.engine import Engine

    return Engine.from_pretrained(source, device=None if device == "auto" else device)


def generator(name: str, device: str, home: Any | None = None) -> Any:
    """The generate :class:`~engines.generate.engine.Engine` for ``--model NAME``; its
    ``version`` attribute names the version used (``base``, ``g001``, ``debug``...)."""
    source, version = model_source(home, name)
    try:
        stamp = (Path(source) / "model.safetensors").stat().st_mtime if os.path.isdir(source) else 0.0
    except OSError:
        stamp = 0.0
    eng = _load(source, device, stamp)
    eng.version = version
    if version != BASE and os.path.isdir(source):
        eng.name = version
    return eng
