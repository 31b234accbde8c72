"""The track catalog: one SQLite database (``library.db``, WAL) in the data home.

This module is import-light on purpose (standard library only, no numpy/librosa/torch):
the GUI reads the catalog directly to list and show tracks.

Row dicts (``list_tracks``, search results, ``get_track``) use the keys ``track_id, path,
title, artist, album, genre, duration`` (s), ``tempo`` (BPM), ``key`` ("A minor"),
``mode, energy`` (0..1), ``brightness`` (Hz), ``onset_density`` (onsets/s),
``loudness_db, demo`` (bool). ``get_track`` adds ``beats, energy_curve, peaks, timbre,
description, key_confidence, added_at``.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from engines.core.errors import NotFoundError, ParameterError
from engines.core.home import DataHome

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tracks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    path TEXT NOT NULL UNIQUE,
    size INTEGER NOT NULL,
    mtime REAL NOT NULL,
    content_hash TEXT NOT NULL,
    title TEXT NOT NULL DEFAULT '',
    artist TEXT NOT NULL DEFAULT '',
    album TEXT NOT NULL DEFAULT '',
    genre TEXT NOT NULL DEFAULT '',
    duration REAL NOT NULL DEFAULT 0,
    tempo REAL NOT NULL DEFAULT 0,
    key TEXT NOT NULL DEFAULT '',
    mode TEXT NOT NULL DEFAULT '',
    energy REAL NOT NULL DEFAULT 0,
    brightness REAL NOT NULL DEFAULT 0,
    onset_density REAL NOT NULL DEFAULT 0,
    loudness REAL NOT NULL DEFAULT 0,
    features_json TEXT NOT NULL DEFAULT '{}',
    description TEXT NOT NULL DEFAULT '',
    embedding BLOB,
    demo INTEGER NOT NULL DEFAULT 0,
    added_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS tracks_hash ON tracks(content_hash);
CREATE TABLE IF NOT EXISTS scan_state (
    root TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    started_at REAL NOT NULL,
    finished_at REAL,
    total INTEGER NOT NULL DEFAULT 0,
    done INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS failures (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime REAL NOT NULL,
    message TEXT NOT NULL,
    at REAL NOT NULL
);
"""

_ROW_COLS = ("id, path, title, artist, album, genre, duration, tempo, key, mode, energy, "
             "brightness, onset_density, loudness, demo")
SORTS = {
    "added": "id DESC",
    "title": "title COLLATE NOCASE, id",
    "artist": "artist COLLATE NOCASE, title COLLATE NOCASE, id",
    "tempo": "tempo, id",
    "duration": "duration, id",
    "energy": "energy DESC, id",
    "path": "path, id",
}
HASH_CHUNK = 64 * 1024


def content_hash(path: str | os.PathLike[str], size: int | None = None) -> str:
    """Fast identity of a file's content: its size and a hash of its first and last 64 KB."""
    size = os.path.getsize(path) if size is None else size
    h = hashlib.blake2b(digest_size=16)
    h.update(str(size).encode())
    with open(path, "rb") as fh:
        h.update(fh.read(HASH_CHUNK))
        if size > 2 * HASH_CHUNK:
            fh.seek(size - HASH_CHUNK)
            h.update(fh.read(HASH_CHUNK))
    return f"{size}-{h.hexdigest()}"


def _row(r: sqlite3.Row) -> dict[str, Any]:
    return {
        "track_id": r["id"], "path": r["path"], "title": r["title"], "artist": r["artist"],
        "album": r["album"], "genre": r["genre"], "duration": r["duration"], "tempo": r["tempo"],
        "key": r["key"], "mode": r["mode"], "energy": r["energy"], "brightness": r["brightness"],
        "onset_density": r["onset_density"], "loudness_db": r["loudness"], "demo": bool(r["demo"]),
    }


class Catalog:
    """Open (and create or migrate) the catalog of one data home."""

    def __init__(self, home: DataHome) -> None:
        self.home = home
        self.con = home.connect()
        self.con.executescript(_SCHEMA)
        self.con.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
        self.con.execute("INSERT OR IGNORE INTO meta VALUES ('generation', '0')")

    # plumbing ------------------------------------------------------------------------
    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    class _Tx:
        def __init__(self, con: sqlite3.Connection) -> None:
            self.con = con

        def __enter__(self) -> sqlite3.Connection:
            self.con.execute("BEGIN IMMEDIATE")
            return self.con

        def __exit__(self, et: object, *rest: object) -> None:
            if et is None:
                self.con.execute(
                    "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'")
                self.con.execute("COMMIT")
            else:
                self.con.execute("ROLLBACK")

    def transaction(self) -> Catalog._Tx:
        """``with cat.transaction() as con:`` one atomic write; bumps :meth:`generation`."""
        return Catalog._Tx(self.con)

    def generation(self) -> int:
        """A number that changes whenever the catalog changes (cache key for indexes)."""
        return int(self.con.execute("SELECT value FROM meta WHERE key='generation'").fetchone()[0])

    # reading ---------------------------------------------------------------------------
    def count(self, *, demo: bool | None = None) -> int:
        if demo is None:
            return int(self.con.execute("SELECT COUNT(*) FROM tracks").fetchone()[0])
        return int(self.con.execute("SELECT COUNT(*) FROM tracks WHERE demo=?", (int(demo),)).fetchone()[0])

    def list_tracks(self, *, limit: int | None = None, offset: int = 0, sort: str = "added",
                    demo: bool | None = None) -> list[dict[str, Any]]:
        if sort not in SORTS:
            raise ParameterError(f"sort must be one of {', '.join(SORTS)}; got {sort!r}")
        where = "" if demo is None else f"WHERE demo={int(bool(demo))}"
        sql = f"SELECT {_ROW_COLS} FROM tracks {where} ORDER BY {SORTS[sort]} LIMIT ? OFFSET ?"
        return [_row(r) for r in self.con.execute(sql, (-1 if limit is None else int(limit), int(offset)))]

    def rows(self, ids: list[int]) -> dict[int, dict[str, Any]]:
        """Row dicts for ``ids`` (missing ids are left out)."""
        out: dict[int, dict[str, Any]] = {}
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            q = ",".join("?" * len(chunk))
            for r in self.con.execute(f"SELECT {_ROW_COLS} FROM tracks WHERE id IN ({q})", chunk):
                out[r["id"]] = _row(r)
        return out

    def get_track(self, track_id: int) -> dict[str, Any]:
        r = self.con.execute(f"SELECT {_ROW_COLS}, features_json, description, added_at, size, "
                             "content_hash FROM tracks WHERE id=?", (int(track_id),)).fetchone()
        if r is None:
            raise NotFoundError(f"no track with id {track_id} in the library (see `studio library list`)")
        d = _row(r)
        feats = json.loads(r["features_json"] or "{}")
        for k in ("beats", "energy_curve", "peaks", "timbre", "key_confidence", "tonic",
                  "analysed_seconds"):
            d[k] = feats.get(k, [] if k in ("beats", "energy_curve", "peaks", "timbre") else None)
        d["style"] = feats.get("extra", {}).get("style", "")
        d["description"] = r["description"]
        d["added_at"] = r["added_at"]
        d["size"] = r["size"]
        return d

    def file_states(self) -> dict[str, tuple[int, int, float, str]]:
        """``path -> (id, size, mtime, content_hash)`` for every track."""
        return {r[1]: (r[0], r[2], r[3], r[4])
                for r in self.con.execute("SELECT id, path, size, mtime, content_hash FROM tracks")}

    def failures(self) -> dict[str, tuple[int, float, str]]:
        return {r[0]: (r[1], r[2], r[3])
                for r in self.con.execute("SELECT path, size, mtime, message FROM failures")}

    def search_rows(self) -> Iterator[tuple[Any, ...]]:
        """``(id, tempo, mode, energy, brightness, onset_density, text)`` for all tracks, by id;
        ``text`` is the lower-cased tags and description."""
        yield from self.con.execute(
            "SELECT id, tempo, mode, energy, brightness, onset_density, "
            "lower(title || ' ' || artist || ' ' || album || ' ' || genre || ' ' || description) "
            "FROM tracks ORDER BY id")

    def embeddings(self) -> Iterator[tuple[int, bytes]]:
        yield from self.con.execute("SELECT id, embedding FROM tracks WHERE embedding IS NOT NULL ORDER BY id")

    # writing ---------------------------------------------------------------------------
    def put_track(self, *, path: str, size: int, mtime: float, content_hash: str,
                  tags: Mapping[str, Any], features: Mapping[str, Any], description: str,
                  embedding: bytes | None, demo: bool = False, track_id: int | None = None) -> int:
        """Insert a track, or replace the analysis of ``track_id`` (keeping its id)."""
        now = time.time()
        vals = dict(
            path=path, size=int(size), mtime=float(mtime), content_hash=content_hash,
            title=str(tags.get("title") or Path(path).stem), artist=str(tags.get("artist") or ""),
            album=str(tags.get("album") or ""), genre=str(tags.get("genre") or ""),
            duration=float(features.get("duration") or 0), tempo=float(features.get("tempo") or 0),
            key=str(features.get("key") or ""), mode=str(features.get("mode") or ""),
            energy=float(features.get("energy") or 0), brightness=float(features.get("brightness") or 0),
            onset_density=float(features.get("onset_density") or 0),
            loudness=float(features.get("loudness_db") or 0),
            features_json=json.dumps(dict(features), separators=(",", ":")),
            description=description, embedding=embedding, demo=int(bool(demo)), updated_at=now,
        )
        with self.transaction() as con:
            con.execute("DELETE FROM failures WHERE path=?", (path,))
            if track_id is None:
                row = con.execute("SELECT id FROM tracks WHERE path=?", (path,)).fetchone()
                track_id = None if row is None else int(row[0])
            if track_id is None:
                vals["added_at"] = now
                cols = ", ".join(vals)
                cur = con.execute(f"INSERT INTO tracks ({cols}) VALUES ({', '.join('?' * len(vals))})",
                                  tuple(vals.values()))
                return int(cur.lastrowid or 0)
            sets = ", ".join(f"{k}=?" for k in vals)
            con.execute(f"UPDATE tracks SET {sets} WHERE id=?", (*vals.values(), track_id))
            return track_id

    def move_track(self, track_id: int, *, path: str, size: int, mtime: float) -> None:
        with self.transaction() as con:
            con.execute("UPDATE tracks SET path=?, size=?, mtime=?, updated_at=? WHERE id=?",
                        (path, size, mtime, time.time(), track_id))

    def touch_track(self, track_id: int, *, size: int, mtime: float) -> None:
        with self.transaction() as con:
            con.execute("UPDATE tracks SET size=?, mtime=? WHERE id=?", (size, mtime, track_id))

    def remove_tracks(self, ids: list[int]) -> int:
        if not ids:
            return 0
        with self.transaction() as con:
            n = 0
            for i in ids:
                n += con.execute("DELETE FROM tracks WHERE id=?", (int(i),)).rowcount
            return n

    def record_failure(self, path: str, *, size: int, mtime: float, message: str) -> None:
        with self.transaction() as con:
            con.execute("INSERT OR REPLACE INTO failures VALUES (?, ?, ?, ?, ?)",
                        (path, size, mtime, message, time.time()))

    def forget_failures(self, paths: list[str]) -> None:
        if paths:
            with self.transaction() as con:
                con.executemany("DELETE FROM failures WHERE path=?", [(p,) for p in paths])

    # scan bookkeeping ------------------------------------------------------------------
    def scan_started(self, root: str, total: int) -> bool:
        """Mark ``root`` as being scanned; returns True when a previous scan of it was interrupted."""
        r = self.con.execute("SELECT status FROM scan_state WHERE root=?", (root,)).fetchone()
        resumed = r is not None and r[0] == "running"
        self.con.execute("INSERT OR REPLACE INTO scan_state VALUES (?, 'running', ?, NULL, ?, 0)",
                         (root, time.time(), total))
        return resumed

    def scan_progress(self, root: str, done: int) -> None:
        self.con.execute("UPDATE scan_state SET done=? WHERE root=?", (done, root))

    def scan_finished(self, root: str) -> None:
        self.con.execute("UPDATE scan_state SET status='done', finished_at=? WHERE root=?",
                         (time.time(), root))


def list_tracks(home: DataHome, **kw: Any) -> list[dict[str, Any]]:
    """Convenience for the GUI: ``Catalog(home).list_tracks(**kw)``."""
    with Catalog(home) as cat:
        return cat.list_tracks(**kw)


def get_track(home: DataHome, track_id: int) -> dict[str, Any]:
    with Catalog(home) as cat:
        return cat.get_track(track_id)
