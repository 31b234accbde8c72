"""The preference store: pairs of results, the votes on them and copies of every file they play.

Layout in the data home::

    feedback/prefs.db                      SQLite (WAL, synchronous=FULL): pairs, candidates, votes
    feedback/blobs/<sha[:2]>/<sha>.<ext>   content-hashed copies of every candidate's audio
                                           (and MIDI / video), so deleting the original never
                                           orphans a vote
    feedback/recent.jsonl                  recent work (see :mod:`engines.feedback.recent`)

Durability: a blob is written to a temporary file, fsynced and renamed *before* the row that
references it is committed; a pair (with both candidates) and a vote are each one SQLite
transaction with ``synchronous=FULL``, so a crash or kill at any moment leaves either the whole
row or nothing, and a vote whose call returned is on disk.

Usage::

    store = PreferenceStore(home)
    pair = store.add_pair("generate", "a.wav", "b.wav", prompt="lofi piano", controls={...},
                          a_meta={"model": "default", "seed": 1}, b_meta={"seed": 2})
    vote = store.vote(pair.pair_id, "a", reason="warmer", decision_ms=5400,
                      listens=[{"side": "a", "t": 0.4, "pos": 0.0, "action": "play"}])
    store.undo_last()          # the pair is pending again
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engines.core.atomic import file_digest, fsync_dir
from engines.core.errors import (
    CorruptFileError,
    EngineError,
    NotFoundError,
    ParameterError,
)
from engines.core.home import DataHome

__all__ = [
    "CHOICES",
    "KINDS",
    "LISTEN_ACTIONS",
    "SOURCES",
    "Candidate",
    "Pair",
    "PairNotFoundError",
    "PreferenceStore",
    "Vote",
    "content_key",
]

SCHEMA_VERSION = 1
KINDS = ("generate", "video", "audio")
CHOICES = ("a", "b", "tie", "both_bad")
SOURCES = ("manual", "queue", "import", "eval")
LISTEN_SIDES = ("a", "b", "video")
LISTEN_ACTIONS = ("play", "pause", "switch", "seek")
#: candidate fields that may be given inside ``a_meta`` / ``b_meta``
_CANDIDATE_FIELDS = ("label", "model", "model_version", "seed")
_MAX_LISTENS = 10_000
_MAX_REASON = 10_000

#: test hook: called with a stage name ("pair:blobs", "pair:rows", "vote:row", "undo:row") right
#: before the transaction commits; tests set it to simulate a kill mid-write.
_before_commit: Callable[[str], None] | None = None


class PairNotFoundError(ParameterError, NotFoundError):
    """No pair with this id (a bad parameter: the CLI exits with 2)."""

    kind = "not_found"


# --------------------------------------------------------------------------- records

@dataclass(frozen=True)
class Candidate:
    """One side of a pair.

    Attributes
    ----------
    audio : Path
        The stored blob copy of the audio (never the user's original).
    midi, video : Path or None
        Stored blob copies of the MIDI / video that go with this candidate, if any.
    label : str
        Short name shown to people (the original file's stem by default).
    model, model_version : str
        What made it ("" for a library track or an imported file).
    seed : int or None
    meta : dict
        Everything else: ``source_path`` (where the original was), offsets, scores, controls...
    sha : str
        SHA-256 of the audio bytes.
    """

    audio: Path
    midi: Path | None = None
    video: Path | None = None
    label: str = ""
    model: str = ""
    model_version: str = ""
    seed: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    sha: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"audio": str(self.audio), "midi": None if self.midi is None else str(self.midi),
                "video": None if self.video is None else str(self.video), "label": self.label,
                "model": self.model, "model_version": self.model_version, "seed": self.seed,
                "meta": self.meta, "sha": self.sha}


@dataclass(frozen=True)
class Vote:
    """A rater's verdict on a pair.

    ``listens`` is a list of ``{"side": "a"|"b"|"video", "t": s since the pair was shown,
    "pos": playback position s, "action": "play"|"pause"|"switch"|"seek"}``.
    """

    vote_id: str
    pair_id: str
    choice: str
    reason: str = ""
    rater: str = "default"
    decision_ms: int | None = None
    listens: list[dict[str, Any]] = field(default_factory=list)
    created: float = 0.0

    def to_dict(self, *, with_pair: bool = True) -> dict[str, Any]:
        d: dict[str, Any] = {"vote_id": self.vote_id}
        if with_pair:
            d["pair_id"] = self.pair_id
        d.update(choice=self.choice, reason=self.reason, rater=self.rater, decision_ms=self.decision_ms,
                 listens=[dict(e) for e in self.listens], created=self.created)
        return d


@dataclass(frozen=True)
class Pair:
    """Two candidates for the same prompt/controls or the same video/text query."""

    pair_id: str
    kind: str
    prompt: str
    controls: dict[str, Any]
    video: Path | None
    a: Candidate
    b: Candidate
    created: float
    source: str = "manual"
    vote: Vote | None = None

    @property
    def pending(self) -> bool:
        return self.vote is None

    def to_dict(self) -> dict[str, Any]:
        return {"pair_id": self.pair_id, "kind": self.kind, "prompt": self.prompt, "controls": self.controls,
                "video": None if self.video is None else str(self.video), "source": self.source,
                "created": self.created, "a": self.a.to_dict(), "b": self.b.to_dict(),
                "vote": None if self.vote is None else self.vote.to_dict(with_pair=False)}


def content_key(kind: str, prompt: str, controls: Mapping[str, Any], a_sha: str, b_sha: str,
                video_sha: str | None) -> str:
    """What makes two pairs "the same pair": kind, prompt, controls, both audio hashes (in order)
    and the clip's hash. Used to de-duplicate imports."""
    blob = json.dumps([kind, prompt, controls, a_sha, b_sha, video_sha or ""], sort_keys=True,
                      separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------- schema

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS pairs (
    pair_id     TEXT PRIMARY KEY,
    kind        TEXT NOT NULL CHECK (kind IN ('generate', 'video', 'audio')),
    prompt      TEXT NOT NULL,
    controls    TEXT NOT NULL,            -- JSON object
    video_blob  TEXT,                     -- 'ab/abcdef....mp4' under feedback/blobs, or NULL
    source      TEXT NOT NULL CHECK (source IN ('manual', 'queue', 'import', 'eval')),
    content_key TEXT NOT NULL,
    created     REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS pairs_content ON pairs(content_key);
CREATE TABLE IF NOT EXISTS candidates (
    pair_id       TEXT NOT NULL REFERENCES pairs(pair_id) ON DELETE CASCADE,
    side          TEXT NOT NULL CHECK (side IN ('a', 'b')),
    sha           TEXT NOT NULL,          -- SHA-256 of the audio
    audio_blob    TEXT NOT NULL,
    midi_blob     TEXT,
    video_blob    TEXT,
    label         TEXT NOT NULL,
    model         TEXT NOT NULL,
    model_version TEXT NOT NULL,
    seed          INTEGER,
    meta          TEXT NOT NULL,          -- JSON object
    PRIMARY KEY (pair_id, side)
);
CREATE TABLE IF NOT EXISTS votes (
    vote_id     TEXT PRIMARY KEY,
    pair_id     TEXT NOT NULL UNIQUE REFERENCES pairs(pair_id),
    choice      TEXT NOT NULL CHECK (choice IN ('a', 'b', 'tie', 'both_bad')),
    reason      TEXT NOT NULL,
    rater       TEXT NOT NULL,
    decision_ms INTEGER,
    listens     TEXT NOT NULL,            -- JSON list of listen events
    created     REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS votes_created ON votes(created);
"""


def _new_id() -> str:
    return uuid.uuid4().hex[:12]


def _json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str, allow_nan=False)


# --------------------------------------------------------------------------- validation

def check_choice(choice: Any) -> str:
    c = str(choice).strip().lower().replace("-", "_").replace(" ", "_")
    if c == "bothbad":
        c = "both_bad"
    if c not in CHOICES:
        raise ParameterError(f"choice must be one of {', '.join(CHOICES)}; got {choice!r}")
    return c


def check_listens(listens: Any) -> list[dict[str, Any]]:
    """Validate listen events (a list of dicts, or a JSON string of one)."""
    if listens is None or listens == "":
        return []
    if isinstance(listens, (str, bytes)):
        try:
            listens = json.loads(listens)
        except ValueError as exc:
            raise ParameterError(f"listens is not valid JSON: {exc}") from None
    if isinstance(listens, Mapping) or not isinstance(listens, Iterable):
        raise ParameterError("listens must be a list of {side, t, pos, action} objects")
    out: list[dict[str, Any]] = []
    for i, ev in enumerate(listens):
        if len(out) >= _MAX_LISTENS:
            raise ParameterError(f"too many listen events (more than {_MAX_LISTENS})")
        if not isinstance(ev, Mapping):
            raise ParameterError(f"listen event {i}: must be an object with side, t, pos, action")
        side, action = ev.get("side"), ev.get("action")
        if side not in LISTEN_SIDES:
            raise ParameterError(f"listen event {i}: side must be one of {', '.join(LISTEN_SIDES)}; "
                                 f"got {side!r}")
        if action not in LISTEN_ACTIONS:
            raise ParameterError(f"listen event {i}: action must be one of {', '.join(LISTEN_ACTIONS)}; "
                                 f"got {action!r}")
        nums: dict[str, float] = {}
        for k in ("t", "pos"):
            v = ev.get(k)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise ParameterError(f"listen event {i}: {k} must be a number of seconds >= 0; got {v!r}")
            nums[k] = float(v)
        out.append({"side": side, "t": nums["t"], "pos": nums["pos"], "action": action})
    return out


def _check_decision_ms(value: Any) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ParameterError(f"decision_ms must be a whole number of milliseconds >= 0; got {value!r}")
    try:
        ms = int(value)
        if isinstance(value, float) and not value.is_integer():
            raise ValueError
    except (TypeError, ValueError):
        raise ParameterError(f"decision_ms must be a whole number of milliseconds >= 0; got {value!r}") from None
    if ms < 0:
        raise ParameterError(f"decision_ms must be >= 0; got {ms}")
    return ms


def _check_audio(path: Path) -> None:
    from engines.media.audio import audio_info

    info = audio_info(path)  # NotFoundError / CorruptFileError / UnsupportedFormatError name the file
    if not info.duration or info.duration <= 0:
        raise CorruptFileError("the audio has no samples", path=path)


def _check_midi(path: Path) -> None:
    from engines.media.midi import read_midi

    read_midi(path)


def _check_video(path: Path) -> None:
    from engines.media.video import video_info

    video_info(path)


# --------------------------------------------------------------------------- the store

class PreferenceStore:
    """Pairs, votes and the copies of the files they play, in ``<home>/feedback``.

    Every method opens its own SQLite connection, so one store may be shared by threads and
    several processes may use the same data home at once.

    Parameters
    ----------
    home : DataHome, str or PathLike
        The data home (a path is wrapped in :class:`~engines.core.home.DataHome`).
    """

    def __init__(self, home: DataHome | str | os.PathLike[str]) -> None:
        self.home = home if isinstance(home, DataHome) else DataHome(home)
        self.root = self.home.root / "feedback"
        self.blobs = self.root / "blobs"
        self.db_path = self.root / "prefs.db"
        self.blobs.mkdir(parents=True, exist_ok=True)
        try:
            with self._connect() as con:
                con.execute("PRAGMA journal_mode=WAL")
                if self._schema_ok(con):
                    return  # the usual case: no write lock taken just to open the store
                con.execute("BEGIN IMMEDIATE")
                for stmt in _SCHEMA.split(";"):
                    if stmt.strip():
                        con.execute(stmt)
                row = con.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
                if row is None:
                    con.execute("INSERT INTO meta(key, value) VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
                elif int(row[0]) > SCHEMA_VERSION:
                    con.execute("ROLLBACK")
                    raise EngineError(f"the preference store was written by a newer Cue Studio "
                                      f"(schema {row[0]} > {SCHEMA_VERSION}); update the app",
                                      path=self.db_path)
                con.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            raise CorruptFileError(f"the preference database cannot be opened: {exc}",
                                   path=self.db_path) from None

    # ------------------------------------------------------------------ plumbing
    def _schema_ok(self, con: sqlite3.Connection) -> bool:
        try:
            row = con.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        except sqlite3.OperationalError:  # no tables yet
            return False
        return row is not None and int(row[0]) == SCHEMA_VERSION

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        con = sqlite3.connect(str(self.db_path), timeout=30.0, isolation_level=None)
        try:
            con.execute("PRAGMA synchronous=FULL")
            con.execute("PRAGMA foreign_keys=ON")
            con.row_factory = sqlite3.Row
            yield con
        finally:
            con.close()

    @contextlib.contextmanager
    def _transaction(self, stage: str) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT`` (rolled back on any error)."""
        with self._connect() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
                if _before_commit is not None:
                    _before_commit(stage)
                con.execute("COMMIT")
            except BaseException:
                if con.in_transaction:
                    con.execute("ROLLBACK")
                raise

    def blob_path(self, rel: str) -> Path:
        return self.blobs / rel

    def put_blob(self, src: str | os.PathLike[str]) -> tuple[str, str]:
        """Copy ``src`` into the blob store under its SHA-256; return ``(sha, relative path)``.

        The copy is written to a temporary file, fsynced and renamed, so a blob under its final
        name is always complete. An existing blob with the same hash is reused.
        """
        p = Path(src)
        ext = p.suffix.lower().lstrip(".")
        ext = "".join(ch for ch in ext if ch.isalnum())[:8] or "bin"
        fd, tmp = tempfile.mkstemp(prefix=".blob.", suffix=".part", dir=self.blobs)
        h = hashlib.sha256()
        try:
            with os.fdopen(fd, "wb") as out:
                try:
                    with open(p, "rb") as fh:
                        for chunk in iter(lambda: fh.read(1 << 20), b""):
                            h.update(chunk)
                            out.write(chunk)
                except FileNotFoundError:
                    raise NotFoundError("file not found", path=p) from None
                except OSError as exc:
                    raise NotFoundError(f"cannot read the file: {exc.strerror}", path=p) from None
                out.flush()
                os.fsync(out.fileno())
            sha = h.hexdigest()
            rel = f"{sha[:2]}/{sha}.{ext}"
            final = self.blobs / rel
            final.parent.mkdir(parents=True, exist_ok=True)
            if final.is_file() and final.stat().st_size == os.path.getsize(tmp):
                os.unlink(tmp)
            else:
                os.chmod(tmp, 0o644)
                os.replace(tmp, final)
                fsync_dir(final.parent)
            return sha, rel
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    # ------------------------------------------------------------------ writing
    def add_pair(
        self,
        kind: str,
        a_audio: str | os.PathLike[str],
        b_audio: str | os.PathLike[str],
        *,
        prompt: str = "",
        controls: Mapping[str, Any] | None = None,
        a_meta: Mapping[str, Any] | None = None,
        b_meta: Mapping[str, Any] | None = None,
        a_midi: str | os.PathLike[str] | None = None,
        b_midi: str | os.PathLike[str] | None = None,
        video: str | os.PathLike[str] | None = None,
        source: str = "manual",
        pair_id: str | None = None,
        created: float | None = None,
    ) -> Pair:
        """Check both candidates, copy their files into the store and record the pair (pending).

        ``a_meta`` / ``b_meta`` may carry ``label``, ``model``, ``model_version`` and ``seed``
        (they become the candidate's fields); the rest is kept in the candidate's ``meta``,
        with ``source_path`` (the original audio path) added.

        Raises
        ------
        ParameterError
            Unknown kind or source, or the same file on both sides is fine but not the same
            pair id twice.
        NotFoundError, CorruptFileError, UnsupportedFormatError
            A missing or unreadable audio / MIDI / video file (the message names it).
        """
        if kind not in KINDS:
            raise ParameterError(f"kind must be one of {', '.join(KINDS)}; got {kind!r}")
        if source not in SOURCES:
            raise ParameterError(f"source must be one of {', '.join(SOURCES)}; got {source!r}")
        ctl = dict(controls or {})
        try:
            _json(ctl)
            metas = [dict(a_meta or {}), dict(b_meta or {})]
            for meta in metas:
                _json(meta)
        except (TypeError, ValueError) as exc:
            raise ParameterError(f"controls and metadata must be JSON-serialisable: {exc}") from None
        audios = [Path(a_audio).expanduser(), Path(b_audio).expanduser()]
        midis = [None if m is None else Path(m).expanduser() for m in (a_midi, b_midi)]
        clip = None if video is None or str(video) == "" else Path(video).expanduser()
        for p in audios:
            _check_audio(p)
        for mid in midis:
            if mid is not None:
                _check_midi(mid)
        if clip is not None:
            _check_video(clip)

        # blobs first: on disk (fsynced, renamed) before any row references them
        sides: list[dict[str, Any]] = []
        for audio, midi, meta in zip(audios, midis, metas, strict=True):
            sha, rel = self.put_blob(audio)
            midi_rel = None if midi is None else self.put_blob(midi)[1]
            cand_video = meta.pop("video", None)
            video_rel = None if not cand_video else self.put_blob(cand_video)[1]
            fields = {k: meta.pop(k) for k in _CANDIDATE_FIELDS if k in meta}
            meta.setdefault("source_path", str(audio.resolve()))
            if midi is not None:
                meta.setdefault("source_midi", str(midi.resolve()))
            seed = fields.get("seed")
            if seed is not None:
                try:
                    seed = int(seed)
                except (TypeError, ValueError):
                    raise ParameterError(f"seed must be a whole number; got {seed!r}") from None
            sides.append({"sha": sha, "audio_blob": rel, "midi_blob": midi_rel, "video_blob": video_rel,
                          "label": str(fields.get("label") or audio.stem),
                          "model": str(fields.get("model") or ""),
                          "model_version": str(fields.get("model_version") or ""),
                          "seed": seed, "meta": meta})
        clip_rel, clip_sha = None, None
        if clip is not None:
            clip_sha, clip_rel = self.put_blob(clip)
        if _before_commit is not None:
            _before_commit("pair:blobs")

        pid = pair_id or _new_id()
        t = time.time() if created is None else float(created)
        key = content_key(kind, prompt, ctl, sides[0]["sha"], sides[1]["sha"], clip_sha)
        with self._transaction("pair:rows") as con:
            if con.execute("SELECT 1 FROM pairs WHERE pair_id=?", (pid,)).fetchone():
                raise ParameterError(f"a pair with id {pid!r} already exists")
            _insert_pair(con, pid, kind, prompt, ctl, clip_rel, source, key, t, sides)
        return self.pair(pid)

    def merge(self, items: Sequence[Mapping[str, Any]], *, root: str | os.PathLike[str]) -> dict[str, Any]:
        """Add pairs (with their votes) from already validated pair dicts, all or nothing.

        ``items`` are pair dicts (:meth:`Pair.to_dict` shape) whose ``audio`` / ``midi`` /
        ``video`` paths are relative to ``root`` (a bundle folder). Files are copied into the
        blob store first; then every row goes in ONE transaction, so a failure or a kill imports
        nothing.

        De-duplication: a pair is "the same" when its :func:`content_key` matches. An incoming
        pair is a duplicate when a stored pair with that content already has the same vote
        (same ``vote_id``, or same choice, rater and time), or when both have no vote. An
        incoming vote on content that is stored but pending is attached to the stored pair.
        Pair ids are kept unless taken by different content.

        Returns ``{"added": pairs or votes added, "duplicates": n, "pair_ids": [...]}``.
        """
        base = Path(root)
        copied: dict[str, tuple[str, str]] = {}

        def blob(rel: str | None) -> str | None:
            if not rel:
                return None
            if rel not in copied:
                copied[rel] = self.put_blob(base / rel)
            return copied[rel][1]

        prepared: list[dict[str, Any]] = []
        for it in items:
            sides: list[dict[str, Any]] = []
            for side in ("a", "b"):
                c = it[side]
                audio_rel = blob(str(c["audio"]))
                assert audio_rel is not None
                sides.append({"sha": copied[str(c["audio"])][0], "audio_blob": audio_rel,
                              "midi_blob": blob(c.get("midi")), "video_blob": blob(c.get("video")),
                              "label": str(c.get("label") or ""), "model": str(c.get("model") or ""),
                              "model_version": str(c.get("model_version") or ""),
                              "seed": None if c.get("seed") is None else int(c["seed"]),
                              "meta": dict(c.get("meta") or {})})
            clip_rel = blob(it.get("video"))
            clip_sha = copied[str(it["video"])][0] if it.get("video") else None
            prepared.append({"item": it, "sides": sides, "clip": clip_rel, "key": content_key(
                str(it["kind"]), str(it.get("prompt") or ""), dict(it.get("controls") or {}),
                sides[0]["sha"], sides[1]["sha"], clip_sha)})
        if _before_commit is not None:
            _before_commit("import:blobs")

        added = duplicates = 0
        ids: list[str] = []
        with self._transaction("import:rows") as con:
            for pr in prepared:
                it, v = pr["item"], pr["item"].get("vote")
                same = con.execute("SELECT p.pair_id, v.vote_id, v.choice, v.rater, v.created FROM pairs p "
                                   "LEFT JOIN votes v USING(pair_id) WHERE p.content_key=? ORDER BY p.created",
                                   (pr["key"],)).fetchall()
                if v is None and same:
                    duplicates += 1
                    continue
                if v is not None and any(
                        r["vote_id"] is not None and (
                            r["vote_id"] == v["vote_id"]
                            or (r["choice"] == v["choice"] and r["rater"] == v["rater"]
                                and abs(float(r["created"]) - float(v["created"])) < 1e-3))
                        for r in same):
                    duplicates += 1
                    continue
                pending = [r for r in same if r["vote_id"] is None]
                if pending:
                    pid = str(pending[0]["pair_id"])
                else:
                    pid = str(it.get("pair_id") or _new_id())
                    while con.execute("SELECT 1 FROM pairs WHERE pair_id=?", (pid,)).fetchone():
                        pid = _new_id()
                    _insert_pair(con, pid, str(it["kind"]), str(it.get("prompt") or ""),
                                 dict(it.get("controls") or {}), pr["clip"], str(it.get("source") or "import"),
                                 pr["key"], float(it.get("created") or time.time()), pr["sides"])
                if v is not None:
                    vid = str(v["vote_id"])
                    if con.execute("SELECT 1 FROM votes WHERE vote_id=?", (vid,)).fetchone():
                        vid = _new_id()
                    con.execute(
                        "INSERT INTO votes(vote_id, pair_id, choice, reason, rater, decision_ms, listens, created)"
                        " VALUES (?,?,?,?,?,?,?,?)",
                        (vid, pid, check_choice(v["choice"]), str(v.get("reason") or ""),
                         str(v.get("rater") or "default"), _check_decision_ms(v.get("decision_ms")),
                         _json(check_listens(v.get("listens") or [])), float(v["created"])))
                added += 1
                ids.append(pid)
        return {"added": added, "duplicates": duplicates, "pair_ids": ids}

    def vote(self, pair_id: str, choice: str, *, reason: str = "", rater: str = "default",
             decision_ms: int | None = None, listens: Sequence[Mapping[str, Any]] | str = (),
             vote_id: str | None = None, created: float | None = None) -> Vote:
        """Record a vote on a pending pair. When this returns, the vote is on disk.

        Raises
        ------
        ParameterError
            Bad choice, listen events or decision time; the pair already has a vote (undo it
            first); :class:`PairNotFoundError` for an unknown pair id.
        """
        c = check_choice(choice)
        ev = check_listens(listens)
        ms = _check_decision_ms(decision_ms)
        reason = str(reason or "")
        if len(reason) > _MAX_REASON:
            raise ParameterError(f"reason is too long ({len(reason)} characters; at most {_MAX_REASON})")
        rater = str(rater or "default").strip() or "default"
        vid = vote_id or _new_id()
        t = time.time() if created is None else float(created)
        with self._transaction("vote:row") as con:
            if not con.execute("SELECT 1 FROM pairs WHERE pair_id=?", (pair_id,)).fetchone():
                raise PairNotFoundError(f"no pair with id {pair_id!r} (see `studio prefs list`)")
            if con.execute("SELECT 1 FROM votes WHERE pair_id=?", (pair_id,)).fetchone():
                raise ParameterError(f"pair {pair_id} already has a vote; undo it first "
                                     "(`studio prefs undo`) to vote again")
            con.execute("INSERT INTO votes(vote_id, pair_id, choice, reason, rater, decision_ms, listens, created)"
                        " VALUES (?,?,?,?,?,?,?,?)", (vid, pair_id, c, reason, rater, ms, _json(ev), t))
        return Vote(vote_id=vid, pair_id=pair_id, choice=c, reason=reason, rater=rater, decision_ms=ms,
                    listens=ev, created=t)

    def undo_last(self, rater: str | None = None) -> Pair | None:
        """Delete the newest vote (of ``rater``, if given); its pair is pending again.

        Returns the pair, or ``None`` when there is no vote to undo.
        """
        with self._transaction("undo:row") as con:
            q = "SELECT vote_id, pair_id FROM votes"
            args: tuple[Any, ...] = ()
            if rater is not None:
                q += " WHERE rater=?"
                args = (rater,)
            row = con.execute(q + " ORDER BY created DESC, rowid DESC LIMIT 1", args).fetchone()
            if row is None:
                return None
            con.execute("DELETE FROM votes WHERE vote_id=?", (row["vote_id"],))
            pid = str(row["pair_id"])
        return self.pair(pid)

    # ------------------------------------------------------------------ reading
    def pair(self, pair_id: str) -> Pair:
        with self._connect() as con:
            pairs = self._load(con, "WHERE p.pair_id=?", (pair_id,))
        if not pairs:
            raise PairNotFoundError(f"no pair with id {pair_id!r} (see `studio prefs list`)")
        return pairs[0]

    def pairs(self, pending: bool | None = None) -> list[Pair]:
        """All pairs, oldest first; ``pending=True`` only those without a vote, ``False`` only voted."""
        where = ""
        if pending is True:
            where = "WHERE v.vote_id IS NULL"
        elif pending is False:
            where = "WHERE v.vote_id IS NOT NULL"
        with self._connect() as con:
            return self._load(con, where, ())

    def votes(self) -> list[tuple[Pair, Vote]]:
        """Every vote with its pair, oldest vote first."""
        out = [(p, p.vote) for p in self.pairs(pending=False) if p.vote is not None]
        out.sort(key=lambda pv: pv[1].created)
        return out

    def find_content(self, key: str) -> list[Pair]:
        """Pairs with this :func:`content_key`."""
        with self._connect() as con:
            return self._load(con, "WHERE p.content_key=?", (key,))

    def stats(self) -> dict[str, Any]:
        """``{"votes", "pairs", "pending", "by_choice", "by_kind", "raters"}``; ``by_kind`` counts votes."""
        with self._connect() as con:
            n_pairs = int(con.execute("SELECT COUNT(*) FROM pairs").fetchone()[0])
            n_votes = int(con.execute("SELECT COUNT(*) FROM votes").fetchone()[0])
            by_choice = {c: 0 for c in CHOICES}
            for r in con.execute("SELECT choice, COUNT(*) FROM votes GROUP BY choice"):
                by_choice[str(r[0])] = int(r[1])
            by_kind = {k: 0 for k in KINDS}
            for r in con.execute("SELECT p.kind, COUNT(*) FROM votes v JOIN pairs p USING(pair_id) "
                                 "GROUP BY p.kind"):
                by_kind[str(r[0])] = int(r[1])
            raters = {str(r[0]): int(r[1]) for r in
                      con.execute("SELECT rater, COUNT(*) FROM votes GROUP BY rater ORDER BY rater")}
        return {"votes": n_votes, "pairs": n_pairs, "pending": n_pairs - n_votes, "by_choice": by_choice,
                "by_kind": by_kind, "raters": raters}

    def check(self, *, hashes: bool = True) -> list[str]:
        """Problems found (empty when healthy): SQLite integrity and foreign keys, every pair has
        both candidates, every referenced blob exists (and, with ``hashes``, matches its SHA-256)."""
        problems: list[str] = []
        with self._connect() as con:
            ic = [str(r[0]) for r in con.execute("PRAGMA integrity_check")]
            if ic != ["ok"]:
                problems += [f"integrity_check: {m}" for m in ic]
            for r in con.execute("PRAGMA foreign_key_check"):
                problems.append(f"foreign key: {tuple(r)}")
            for r in con.execute("SELECT p.pair_id, COUNT(c.side) FROM pairs p LEFT JOIN candidates c "
                                 "USING(pair_id) GROUP BY p.pair_id HAVING COUNT(c.side) != 2"):
                problems.append(f"pair {r[0]} has {r[1]} candidates, not 2")
            blobs = [(str(r[0]), str(r[1]) if r[1] else None) for r in
                     con.execute("SELECT audio_blob, sha FROM candidates UNION ALL "
                                 "SELECT midi_blob, NULL FROM candidates WHERE midi_blob IS NOT NULL UNION ALL "
                                 "SELECT video_blob, NULL FROM candidates WHERE video_blob IS NOT NULL UNION ALL "
                                 "SELECT video_blob, NULL FROM pairs WHERE video_blob IS NOT NULL")]
        for rel, sha in dict(blobs).items():
            p = self.blobs / rel
            if not p.is_file():
                problems.append(f"missing blob {rel}")
            elif hashes:
                want = sha or Path(rel).stem
                if file_digest(p) != want:
                    problems.append(f"blob {rel} does not match its hash")
        return problems

    def _load(self, con: sqlite3.Connection, where: str, args: tuple[Any, ...]) -> list[Pair]:
        rows = con.execute(
            "SELECT p.*, v.vote_id, v.choice, v.reason, v.rater, v.decision_ms, v.listens, "
            "v.created AS v_created FROM pairs p LEFT JOIN votes v ON v.pair_id = p.pair_id "
            f"{where} ORDER BY p.created, p.rowid", args).fetchall()
        if not rows:
            return []
        ids = [str(r["pair_id"]) for r in rows]
        cands: dict[tuple[str, str], sqlite3.Row] = {}
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            q = f"SELECT * FROM candidates WHERE pair_id IN ({','.join('?' * len(chunk))})"
            for c in con.execute(q, chunk):
                cands[(str(c["pair_id"]), str(c["side"]))] = c
        out: list[Pair] = []
        for r in rows:
            pid = str(r["pair_id"])
            ca, cb = cands.get((pid, "a")), cands.get((pid, "b"))
            if ca is None or cb is None:  # cannot happen (one transaction), but never crash a listing
                continue
            vote = None
            if r["vote_id"] is not None:
                vote = Vote(vote_id=str(r["vote_id"]), pair_id=pid, choice=str(r["choice"]),
                            reason=str(r["reason"]), rater=str(r["rater"]),
                            decision_ms=None if r["decision_ms"] is None else int(r["decision_ms"]),
                            listens=json.loads(r["listens"]), created=float(r["v_created"]))
            out.append(Pair(pair_id=pid, kind=str(r["kind"]), prompt=str(r["prompt"]),
                            controls=json.loads(r["controls"]),
                            video=None if r["video_blob"] is None else self.blobs / str(r["video_blob"]),
                            a=self._candidate(ca), b=self._candidate(cb), created=float(r["created"]),
                            source=str(r["source"]), vote=vote))
        return out

    def _candidate(self, c: sqlite3.Row) -> Candidate:
        return Candidate(
            audio=self.blobs / str(c["audio_blob"]),
            midi=None if c["midi_blob"] is None else self.blobs / str(c["midi_blob"]),
            video=None if c["video_blob"] is None else self.blobs / str(c["video_blob"]),
            label=str(c["label"]), model=str(c["model"]), model_version=str(c["model_version"]),
            seed=None if c["seed"] is None else int(c["seed"]), meta=json.loads(c["meta"]), sha=str(c["sha"]))

    def __repr__(self) -> str:
        return f"PreferenceStore({str(self.root)!r})"


def _insert_pair(con: sqlite3.Connection, pid: str, kind: str, prompt: str, ctl: Mapping[str, Any],
                 clip_rel: str | None, source: str, key: str, created: float,
                 sides: Sequence[Mapping[str, Any]]) -> None:
    con.execute("INSERT INTO pairs(pair_id, kind, prompt, controls, video_blob, source, content_key, created)"
                " VALUES (?,?,?,?,?,?,?,?)", (pid, kind, prompt, _json(dict(ctl)), clip_rel, source, key, created))
    for side, s in zip("ab", sides, strict=True):
        con.execute(
            "INSERT INTO candidates(pair_id, side, sha, audio_blob, midi_blob, video_blob, label, model,"
            " model_version, seed, meta) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (pid, side, s["sha"], s["audio_blob"], s["midi_blob"], s["video_blob"], s["label"],
             s["model"], s["model_version"], s["seed"], _json(s["meta"])))
