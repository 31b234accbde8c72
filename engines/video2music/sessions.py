"""Conversation state of a match, stored in the data home so a refinement survives a restart.

One JSON file per session: ``<home>/video2music/sessions/<session_id>.json``, written
atomically. It holds the clip (path, range, measured features), every turn's text and
parsed meaning, the results shown after each turn, the active steering (directions with
their anchors, tags, liked and rejected tracks).
"""

from __future__ import annotations

import json
import re
import secrets
import time
from pathlib import Path
from typing import Any

from engines.core.atomic import atomic_write_text
from engines.core.errors import CorruptFileError, NotFoundError, ParameterError
from engines.core.home import DataHome

_ID = re.compile(r"^[a-z0-9]{6,32}$")


def sessions_dir(home: DataHome) -> Path:
    d = home.root / "video2music" / "sessions"
    d.mkdir(parents=True, exist_ok=True)
    return d


def new_session_id() -> str:
    return time.strftime("%y%m%d") + secrets.token_hex(4)


def _path(home: DataHome, session_id: str) -> Path:
    sid = str(session_id).strip().lower()
    if not _ID.match(sid):
        raise ParameterError(f"{session_id!r} is not a session id (see `studio video match`)")
    return sessions_dir(home) / f"{sid}.json"


def save_session(home: DataHome, state: dict[str, Any]) -> Path:
    state["updated_at"] = time.time()
    p = _path(home, state["session_id"])
    atomic_write_text(p, json.dumps(state, separators=(",", ":")))
    return p


def load_session(home: DataHome, session_id: str) -> dict[str, Any]:
    p = _path(home, session_id)
    try:
        data = json.loads(p.read_text("utf-8"))
    except FileNotFoundError:
        raise NotFoundError(f"no video session {session_id!r} in this data home "
                            "(start one with `studio video match VIDEO`)") from None
    except (OSError, ValueError) as exc:
        raise CorruptFileError(f"the session file is damaged ({exc})", path=p) from None
    if not isinstance(data, dict) or data.get("session_id") != p.stem:
        raise CorruptFileError("the session file is damaged (wrong content)", path=p)
    return data


def list_sessions(home: DataHome) -> list[dict[str, Any]]:
    out = []
    for p in sorted(sessions_dir(home).glob("*.json")):
        try:
            d = json.loads(p.read_text("utf-8"))
            out.append({"session_id": d["session_id"], "video": d["video"]["path"],
                        "turns": len(d.get("turns", [])), "updated_at": d.get("updated_at")})
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return out
