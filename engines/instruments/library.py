"""The instrument sources catalog (SQLite) and its vector index (faiss).

``instruments.db`` in the data home lists sources (SoundFont files, folders of samples,
single samples), their files (size and mtime, for incremental indexing; errors, for the
report) and instruments: every preset of a SoundFont and every sample, with the unit
embedding the Single-Instrument Encoder gave it. ``index/instruments-<model>.faiss`` is a
rebuildable cache of those embeddings (exact inner product), tagged with the catalog
generation it reflects.

Untrusted SoundFonts are parsed (:func:`engines.media.synth.check_soundfont`) and rendered
(:func:`engines.instruments.data.render_probes`) in child processes, so a SoundFont that
crashes the native renderer is reported and skipped; nothing else in the library is lost.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from engines.core.atomic import atomic_path, atomic_write_text
from engines.core.errors import (
    CorruptFileError,
    EngineError,
    InputError,
    NotFoundError,
    ParameterError,
    ResourceLimitError,
    UnsupportedFormatError,
)
from engines.core.home import DataHome
from engines.core.jobs import JobContext

if TYPE_CHECKING:
    from engines.instruments.engine import Engine, Match

DB_NAME = "instruments.db"
SOUNDFONT_EXTENSIONS = frozenset({".sf2", ".sf3"})
SAMPLE_EXTENSIONS = frozenset({".wav", ".wave", ".aif", ".aiff", ".aifc", ".flac", ".ogg", ".oga", ".mp3"})
#: samples longer than this are not one-shots or loops: reported and skipped
MAX_SAMPLE_SECONDS = 600.0
#: seconds of a sample that are listened to
SAMPLE_LISTEN_SECONDS = 12.0
#: presets rendered per child process
RENDER_CHUNK = 96

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sources (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    path TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    added_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS files (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    source_id INTEGER NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
    path TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    model TEXT NOT NULL,
    status TEXT NOT NULL,
    error TEXT NOT NULL DEFAULT '',
    UNIQUE (source_id, path)
);
CREATE TABLE IF NOT EXISTS instruments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    file_id INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    source_path TEXT NOT NULL,
    bank INTEGER,
    program INTEGER,
    sample_path TEXT,
    family TEXT NOT NULL DEFAULT '',
    note INTEGER,
    model TEXT NOT NULL,
    embedding BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS instruments_file ON instruments(file_id);
"""


@dataclass
class AddReport:
    """What :meth:`InstrumentLibrary.add` did."""

    sources: list[dict[str, Any]] = field(default_factory=list)
    added: int = 0  # instruments indexed in this run
    removed: int = 0  # instruments dropped (files gone or re-indexed)
    files_indexed: int = 0
    files_unchanged: int = 0
    skipped: list[dict[str, str]] = field(default_factory=list)  # {path, error, kind}
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "sources": self.sources, "added": self.added, "removed": self.removed,
            "files_indexed": self.files_indexed, "files_unchanged": self.files_unchanged,
            "skipped": self.skipped, "seconds": round(self.seconds, 2),
        }


def _is_soundfont(p: Path) -> bool:
    if p.suffix.lower() in SOUNDFONT_EXTENSIONS:
        return True
    try:
        with open(p, "rb") as fh:
            head = fh.read(12)
    except OSError:
        return False
    return head[:4] == b"RIFF" and head[8:12] == b"sfbk"


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")[:60] or "instrument"


def _skip(exc: BaseException, path: str | Path) -> dict[str, str]:
    if isinstance(exc, EngineError):
        msg = str(exc) if exc.path else f"{path}: {exc}"
        return {"path": str(path), "error": msg, "kind": exc.kind}
    return {"path": str(path), "error": f"{path}: {type(exc).__name__}: {exc}", "kind": "engine_error"}


class InstrumentLibrary:
    """The user's instrument sources, indexed with one :class:`~engines.instruments.engine.Engine`."""

    def __init__(self, home: DataHome, engine: Engine) -> None:
        self.home = home
        self.engine = engine
        self.db_path = home.root / DB_NAME
        self._con: sqlite3.Connection | None = None
        self._index: Any = None
        self._index_gen = -1

    # ------------------------------------------------------------------ database
    @property
    def con(self) -> sqlite3.Connection:
        if self._con is None:
            con = self.home.connect(self.db_path)
            con.executescript(_SCHEMA)
            con.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('generation', '0')")
            self._con = con
        return self._con

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None

    def __enter__(self) -> InstrumentLibrary:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def generation(self) -> int:
        row = self.con.execute("SELECT value FROM meta WHERE key='generation'").fetchone()
        return int(row[0]) if row else 0

    def _bump(self) -> None:
        self.con.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key='generation'")

    # ------------------------------------------------------------------ adding
    def add(self, paths: Iterable[str | os.PathLike[str]], ctx: JobContext | None = None) -> AddReport:
        """Add (or refresh) sources: SoundFont files, folders of samples, single samples.

        Unchanged files (same size, mtime and model) are skipped; files that cannot be used
        are reported in ``skipped`` and nothing else is lost.

        Raises
        ------
        NotFoundError
            A given path does not exist (checked before anything is indexed).
        UnsupportedFormatError
            A given file is neither a SoundFont nor audio.
        """
        t0 = time.monotonic()
        ctx = ctx or JobContext(home=self.home)
        resolved: list[tuple[Path, str]] = []
        for raw in paths:
            p = Path(os.fspath(raw)).expanduser()
            if not p.exists():
                raise NotFoundError("no such file or folder", path=p)
            p = p.resolve()
            if p.is_dir():
                kind = "folder"
            elif _is_soundfont(p):
                kind = "soundfont"
            elif p.suffix.lower() in SAMPLE_EXTENSIONS:
                kind = "file"
            else:
                raise UnsupportedFormatError(
                    "not an instrument source: add SoundFonts (.sf2/.sf3), audio samples "
                    f"({', '.join(sorted(SAMPLE_EXTENSIONS))}) or folders of them", path=p)
            resolved.append((p, kind))
        if not resolved:
            raise ParameterError("give at least one SoundFont, sample or folder to add")
        report = AddReport()
        plan: list[tuple[int, list[Path]]] = []
        for p, kind in resolved:
            sid = self._source_id(p, kind)
            files = self._scan(p) if kind == "folder" else [p]
            plan.append((sid, files))
            report.removed += self._drop_missing(sid, files)
        total = sum(len(f) for _, f in plan) or 1
        done = 0
        for (sid, files), (p, kind) in zip(plan, resolved, strict=True):
            before = report.added
            for f in files:
                ctx.check()
                ctx.progress(done / total, f"indexing {f.name}")
                self._index_file(sid, f, report, ctx.sub(done / total, (done + 1) / total))
                done += 1
            n = self.con.execute(
                "SELECT COUNT(*) FROM instruments i JOIN files f ON f.id = i.file_id WHERE f.source_id=?",
                (sid,)).fetchone()[0]
            self.con.execute("UPDATE sources SET updated_at=? WHERE id=?", (time.time(), sid))
            report.sources.append({"id": sid, "path": str(p), "kind": kind, "instruments": int(n),
                                   "added": report.added - before})
        ctx.progress(1.0, f"{report.added} instrument(s) indexed")
        report.seconds = time.monotonic() - t0
        return report

    def _source_id(self, p: Path, kind: str) -> int:
        row = self.con.execute("SELECT id FROM sources WHERE path=?", (str(p),)).fetchone()
        if row:
            return int(row[0])
        now = time.time()
        cur = self.con.execute("INSERT INTO sources(path, kind, added_at, updated_at) VALUES (?,?,?,?)",
                               (str(p), kind, now, now))
        return int(cur.lastrowid or 0)

    def _scan(self, folder: Path) -> list[Path]:
        out = []
        for root, dirs, names in os.walk(folder):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for n in sorted(names):
                if n.startswith("."):
                    continue
                suffix = Path(n).suffix.lower()
                if suffix in SAMPLE_EXTENSIONS or suffix in SOUNDFONT_EXTENSIONS:
                    out.append(Path(root) / n)
        return out

    def _drop_missing(self, sid: int, files: list[Path]) -> int:
        keep = {str(f) for f in files}
        gone = [(r["id"],) for r in self.con.execute("SELECT id, path FROM files WHERE source_id=?", (sid,))
                if r["path"] not in keep]
        if not gone:
            return 0
        n = 0
        with self.con:
            for (fid,) in gone:
                n += self.con.execute("DELETE FROM instruments WHERE file_id=?", (fid,)).rowcount
                self.con.execute("DELETE FROM files WHERE id=?", (fid,))
            self._bump()
        return n

    def _index_file(self, sid: int, f: Path, report: AddReport, ctx: JobContext) -> None:
        try:
            st = f.stat()
        except OSError as exc:
            report.skipped.append(_skip(NotFoundError(f"cannot read the file ({exc.strerror})", path=f), f))
            return
        row = self.con.execute("SELECT id, size, mtime_ns, model, status, error FROM files WHERE source_id=? AND path=?",
                               (sid, str(f))).fetchone()
        if row and row["size"] == st.st_size and row["mtime_ns"] == st.st_mtime_ns \
                and row["model"] == self.engine.fingerprint:
            report.files_unchanged += 1
            return
        items: list[dict[str, Any]] = []
        error = ""
        try:
            if _is_soundfont(f):
                items, skipped = self._embed_soundfont(f, ctx)
                report.skipped += skipped
            else:
                items = [self._embed_sample(f)]
        except (EngineError, OSError, ValueError) as exc:
            entry = _skip(exc, f)
            report.skipped.append(entry)
            error = entry["error"]
        with self.con:
            if row:
                report.removed += self.con.execute("DELETE FROM instruments WHERE file_id=?", (row["id"],)).rowcount
                self.con.execute("UPDATE files SET size=?, mtime_ns=?, model=?, status=?, error=? WHERE id=?",
                                 (st.st_size, st.st_mtime_ns, self.engine.fingerprint,
                                  "error" if error else "ok", error, row["id"]))
                fid = int(row["id"])
            else:
                cur = self.con.execute(
                    "INSERT INTO files(source_id, path, size, mtime_ns, model, status, error) VALUES (?,?,?,?,?,?,?)",
                    (sid, str(f), st.st_size, st.st_mtime_ns, self.engine.fingerprint,
                     "error" if error else "ok", error))
                fid = int(cur.lastrowid or 0)
            self.con.executemany(
                "INSERT INTO instruments(file_id, kind, name, source_path, bank, program, sample_path, family, "
                "note, model, embedding) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                [(fid, it["kind"], it["name"], str(f), it.get("bank"), it.get("program"), it.get("sample_path"),
                  it.get("family", ""), it.get("note"), self.engine.fingerprint,
                  np.asarray(it["embedding"], np.float32).tobytes()) for it in items])
            self._bump()
        report.added += len(items)
        if not error:
            report.files_indexed += 1

    def _embed_soundfont(self, f: Path, ctx: JobContext) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
        from engines.instruments.data import SR, family, preset_range, render_probes
        from engines.media.safe import run_isolated
        from engines.media.synth import check_soundfont

        presets = check_soundfont(f)
        items: list[dict[str, Any]] = []
        skipped: list[dict[str, str]] = []
        size_mb = f.stat().st_size / 2**20
        for start in range(0, len(presets), RENDER_CHUNK):
            ctx.check()
            ctx.progress(start / len(presets), f"rendering presets of {f.name}")
            chunk = presets[start:start + RENDER_CHUNK]
            clips = run_isolated(render_probes, str(f), chunk, sr=SR, timeout=60 + 2 * len(chunk),
                                 memory_mb=int(min(8192, 768 + 4 * size_mb)), path_for_errors=f)
            for (bank, program, name), c in zip(chunk, clips, strict=True):
                c = np.asarray(c, np.float32)
                loud = np.max(np.abs(c), axis=1) > 1e-4 if c.size else np.zeros(0, bool)
                label = f"{name.strip() or 'preset'} (bank {bank}, program {program})"
                if not loud.any():
                    skipped.append({"path": str(f), "kind": "corrupt_file",
                                    "error": f"{f}: preset {label} renders silence (empty preset): skipped"})
                    continue
                lo, hi = preset_range(bank, program, name)
                items.append({"kind": "preset", "name": name.strip() or f"Preset {bank}:{program}",
                              "bank": int(bank), "program": int(program), "family": family(bank, program, name),
                              "note": None if bank == 128 else (lo + hi) // 2,
                              "embedding": self.engine.embed_instrument(c[loud])})
        return items, skipped

    def _embed_sample(self, f: Path) -> dict[str, Any]:
        from engines.media.audio import audio_info, load_audio

        info = audio_info(f)
        if info.duration > MAX_SAMPLE_SECONDS:
            raise ResourceLimitError(
                f"lasts {info.duration / 60:.0f} min: not a one-shot or loop (samples may last at most "
                f"{MAX_SAMPLE_SECONDS / 60:.0f} min)", path=f)
        y = load_audio(f, sr=self.engine.sr, mono=True, max_duration=SAMPLE_LISTEN_SECONDS)
        peak = float(np.max(np.abs(y))) if y.size else 0.0
        if not np.isfinite(peak) or peak < 1e-4:
            raise InputError("the sample is silent", path=f)
        w, loud = self.engine.windows(y)
        return {"kind": "sample", "name": f.stem, "sample_path": str(f), "family": "",
                "embedding": self.engine.embed_instrument(w[loud] if loud.any() else w)}

    # ------------------------------------------------------------------ listing
    def list_sources(self, *, instruments: bool = False) -> list[dict[str, Any]]:
        out = []
        for s in self.con.execute("SELECT * FROM sources ORDER BY id"):
            files = self.con.execute(
                "SELECT COUNT(*), SUM(status='error') FROM files WHERE source_id=?", (s["id"],)).fetchone()
            rows = self.con.execute(
                "SELECT i.* FROM instruments i JOIN files f ON f.id=i.file_id WHERE f.source_id=? ORDER BY i.id",
                (s["id"],)).fetchall()
            d = {"id": s["id"], "path": s["path"], "kind": s["kind"], "instruments": len(rows),
                 "files": int(files[0] or 0), "errors": int(files[1] or 0),
                 "added_at": s["added_at"], "updated_at": s["updated_at"]}
            if instruments:
                d["items"] = [self._row_dict(r) for r in rows]
            out.append(d)
        return out

    def remove(self, source_id: int) -> dict[str, Any]:
        """Remove a source and its instruments (nothing else)."""
        row = self.con.execute("SELECT * FROM sources WHERE id=?", (int(source_id),)).fetchone()
        if row is None:
            raise NotFoundError(f"no instrument source with id {source_id} (see `studio instruments list`)")
        with self.con:
            n = self.con.execute(
                "DELETE FROM instruments WHERE file_id IN (SELECT id FROM files WHERE source_id=?)",
                (row["id"],)).rowcount
            self.con.execute("DELETE FROM files WHERE source_id=?", (row["id"],))
            self.con.execute("DELETE FROM sources WHERE id=?", (row["id"],))
            self._bump()
        return {"id": row["id"], "path": row["path"], "instruments_removed": n}

    def get(self, instrument_id: int) -> dict[str, Any]:
        row = self.con.execute("SELECT * FROM instruments WHERE id=?", (int(instrument_id),)).fetchone()
        if row is None:
            raise NotFoundError(f"no instrument with id {instrument_id} (ids come from `studio instruments find`)")
        return self._row_dict(row) | {"embedding": np.frombuffer(row["embedding"], np.float32).copy(),
                                      "model": row["model"]}

    @staticmethod
    def _row_dict(r: sqlite3.Row) -> dict[str, Any]:
        return {"instrument_id": r["id"], "name": r["name"], "kind": r["kind"], "source_path": r["source_path"],
                "bank": r["bank"], "program": r["program"], "sample_path": r["sample_path"],
                "family": r["family"], "note": r["note"]}

    def count(self) -> int:
        return int(self.con.execute("SELECT COUNT(*) FROM instruments WHERE model=?",
                                    (self.engine.fingerprint,)).fetchone()[0])

    def stale_sources(self) -> list[str]:
        """Sources indexed with another model (they need `instruments add` again)."""
        return [r[0] for r in self.con.execute(
            "SELECT DISTINCT s.path FROM sources s JOIN files f ON f.source_id=s.id WHERE f.model<>?",
            (self.engine.fingerprint,))]

    # ------------------------------------------------------------------ index
    def _load_index(self) -> Any:
        import faiss

        gen = self.generation
        if self._index is not None and self._index_gen == gen:
            return self._index
        dim = self.engine.cfg.emb_dim
        tag = _safe_name(self.engine.fingerprint)
        path = self.home.index_dir / f"instruments-{tag}.faiss"
        meta_path = path.with_suffix(".json")
        index = None
        try:
            meta = json.loads(meta_path.read_text("utf-8"))
            if meta.get("generation") == gen and meta.get("db") == str(self.db_path):
                index = faiss.read_index(str(path))
                if index.d != dim:
                    index = None
        except (OSError, ValueError, RuntimeError):
            index = None
        if index is None:
            index = faiss.IndexIDMap(faiss.IndexFlatIP(dim))
            rows = self.con.execute("SELECT id, embedding FROM instruments WHERE model=?",
                                    (self.engine.fingerprint,)).fetchall()
            if rows:
                vecs = np.frombuffer(b"".join(r[1] for r in rows), np.float32).reshape(len(rows), dim)
                index.add_with_ids(np.ascontiguousarray(vecs), np.array([r[0] for r in rows], np.int64))
            try:
                with atomic_path(path) as tmp:
                    faiss.write_index(index, str(tmp))
                atomic_write_text(meta_path, json.dumps({"generation": gen, "db": str(self.db_path),
                                                         "count": int(index.ntotal)}))
            except OSError:
                pass  # the index is a cache: searching still works
        self._index, self._index_gen = index, gen
        return index

    def search(self, vector: np.ndarray, *, k: int = 5, exclude: Iterable[int] = ()) -> list[Match]:
        """The ``k`` nearest instruments to a unit embedding, best first (score = cosine)."""
        from engines.instruments.engine import Match

        if k < 1:
            raise ParameterError(f"top must be at least 1, not {k}")
        index = self._load_index()
        if index.ntotal == 0:
            return []
        skip = set(int(i) for i in exclude)
        want = min(index.ntotal, k + len(skip))
        scores, ids = index.search(np.asarray(vector, np.float32).reshape(1, -1), want)
        hits = [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0 and int(i) not in skip]
        hits = hits[:k]
        if not hits:
            return []
        q = ",".join("?" * len(hits))
        rows = {r["id"]: r for r in self.con.execute(f"SELECT * FROM instruments WHERE id IN ({q})",
                                                      [h[0] for h in hits])}
        return [Match(instrument_id=i, name=rows[i]["name"], kind=rows[i]["kind"],
                      source_path=rows[i]["source_path"], bank=rows[i]["bank"], program=rows[i]["program"],
                      sample_path=rows[i]["sample_path"], score=round(s, 4))
                for i, s in hits if i in rows]

    def similar(self, instrument_id: int, *, k: int = 5) -> list[Match]:
        """'More like this': the instruments nearest to one instrument of the library."""
        item = self.get(instrument_id)
        if item["model"] != self.engine.fingerprint:
            raise InputError(f"instrument {instrument_id} was indexed with another model: add its source again",
                             path=item["source_path"])
        return self.search(item["embedding"], k=k, exclude=[instrument_id])

    # ------------------------------------------------------------------ audition
    def render(self, instrument_id: int, out: str | os.PathLike[str] | None = None, *,
               note: int | None = None, sr: int = 44100, bits: int = 24) -> Path:
        """Write a WAV to audition (or drag into a DAW): a preset's phrase around ``note``, or
        the sample itself."""
        from engines.instruments.data import render_phrase
        from engines.media.audio import load_audio, write_wav
        from engines.media.safe import run_isolated

        item = self.get(instrument_id)
        if note is not None and not 0 <= int(note) <= 127:
            raise ParameterError(f"note must be a MIDI note 0..127, not {note}")
        if item["kind"] == "preset":
            src = Path(item["source_path"])
            if not src.is_file():
                raise NotFoundError("the SoundFont is gone (was it moved?)", path=src)
            n = note if note is not None else item["note"]
            default = f"{_safe_name(item['name'])}_b{item['bank']}p{item['program']}" + (
                f"_n{int(n)}" if n is not None and item["bank"] != 128 else "") + ".wav"
            y = run_isolated(render_phrase, str(src), item["bank"], item["program"], item["name"], note=n,
                             sr=sr, timeout=60, memory_mb=int(min(8192, 768 + 4 * src.stat().st_size / 2**20)),
                             path_for_errors=src)
            if float(np.max(np.abs(y))) <= 0:
                raise CorruptFileError(f"preset {item['name']} renders silence", path=src)
        else:
            src = Path(item["sample_path"])
            default = f"{_safe_name(Path(src).stem)}.wav"
            y = load_audio(src, sr=sr, mono=False, max_duration=MAX_SAMPLE_SECONDS)
        target = Path(out).expanduser() if out else self.home.exports / default
        if target.suffix.lower() not in (".wav", ".wave"):
            raise ParameterError("the output must be a .wav file", path=target)
        return write_wav(target, y, sr=sr, bits=bits)
