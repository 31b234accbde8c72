"""The sheet library: a catalog of scores in its own SQLite db plus a faiss snippet index.

Layout in the data home::

    sheet/library.db              scores (id, path, title, kind, format, pages, bars, ...)
    sheet/scores/<id>/            page SVGs/PNGs, geometry.json (bar boxes per page),
                                  data.npz (strips, window embeddings+meta, symbolic features)
    index/sheet_snippets.faiss    inner-product index of every sheet snippet
    index/sheet_snippets_ids.npy  (score id, window) of each index row
    index/sheet_symbolic.npz      symbolic features of all scores, for one-shot loading

Writes are atomic: a score's folder is written under a temporary name and renamed, its row is
committed after that, and the index files are replaced atomically; a bad file changes nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from engines.core.atomic import atomic_path, atomic_write_text, file_digest
from engines.core.errors import CorruptFileError, EngineError, NotFoundError
from engines.core.home import DataHome
from engines.core.jobs import JobContext
from engines.sheet.align import subseq_costs, unit_rows
from engines.sheet.engine import (
    Alignment,
    Match,
    SheetEngine,
    bar_at_time,
    image_points,
    score_kind,
    symbolic_match,
    symbolic_points,
    vote,
)
from engines.sheet.features import CHROMA_FPS, chroma_onset
from engines.sheet.pages import IMAGE_EXTENSIONS, PDF_EXTENSIONS
from engines.sheet.symbolic import SYMBOLIC_EXTENSIONS

ALL_EXTENSIONS = SYMBOLIC_EXTENSIONS + IMAGE_EXTENSIONS + PDF_EXTENSIONS
#: bump when the index files change shape (older ones are rebuilt on first use)
INDEX_VERSION = 2
#: the symbolic route ranks at CHROMA_FPS / RANK_DECIMATE frames a second
RANK_DECIMATE = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS scores (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    path TEXT UNIQUE NOT NULL,
    title TEXT, kind TEXT, format TEXT,
    pages INTEGER, bars INTEGER, windows INTEGER,
    sha1 TEXT, added REAL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
"""


def _sha1(path: Path) -> str:
    return file_digest(path, "sha1")


def expand_paths(paths: list[str]) -> list[Path]:
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in ALL_EXTENSIONS)
        else:
            out.append(p)
    return out


class SheetLibrary:
    def __init__(self, home: DataHome, engine: SheetEngine | None = None) -> None:
        self.home = home
        self.root = home.root / "sheet"
        (self.root / "scores").mkdir(parents=True, exist_ok=True)
        self.con = home.connect(self.root / "library.db")
        self.con.executescript(_SCHEMA)
        self._engine = engine

    # context manager -----------------------------------------------------
    def __enter__(self) -> SheetLibrary:
        return self

    def __exit__(self, *exc: object) -> None:
        self.con.close()

    @property
    def engine(self) -> SheetEngine:
        if self._engine is None:
            self._engine = SheetEngine.from_pretrained(os.environ.get("CUE_SHEET_MODEL", "default"))
        return self._engine

    # catalog ---------------------------------------------------------------
    def list(self) -> list[dict[str, Any]]:
        rows = self.con.execute("SELECT * FROM scores ORDER BY id").fetchall()
        return [dict(r) for r in rows]

    def get(self, score_id: int) -> dict[str, Any]:
        row = self.con.execute("SELECT * FROM scores WHERE id=?", (int(score_id),)).fetchone()
        if row is None:
            raise NotFoundError(f"no score {score_id} in the sheet library")
        return dict(row)

    def resolve(self, score: str | int) -> dict[str, Any] | None:
        """A library row from an id or a path (None if the path is not in the library)."""
        s = str(score)
        if s.isdigit() and not Path(s).exists():
            return self.get(int(s))
        p = str(Path(s).expanduser().resolve())
        row = self.con.execute("SELECT * FROM scores WHERE path=?", (p,)).fetchone()
        return dict(row) if row else None

    def folder(self, score_id: int) -> Path:
        return self.root / "scores" / str(int(score_id))

    def load(self, score_id: int, keys: tuple[str, ...] | None = None) -> dict[str, Any]:
        """A score's stored arrays and its ``geometry`` (only ``keys`` of data.npz if given)."""
        with np.load(self.folder(score_id) / "data.npz", allow_pickle=False) as z:
            data = {k: z[k] for k in z.files if keys is None or k in keys}
        data["geometry"] = json.loads((self.folder(score_id) / "geometry.json").read_text("utf-8"))
        return data

    def pages(self, score_id: int) -> dict[str, Any]:
        """The page images of a stored score and its bar boxes, in the images' own pixels.

        Returns ``{"score_id", "title", "kind", "path", "pages": [{"page", "png", "width",
        "height", "bars": [{"bar", "x0", "y0", "x1", "y1"}]}]}`` where ``png`` is the absolute path
        of the page image (PNG) and ``width``/``height`` are its size in pixels.
        """
        row = self.get(score_id)
        folder = self.folder(score_id)
        try:
            geo = json.loads((folder / "geometry.json").read_text("utf-8"))
        except (OSError, ValueError):
            raise CorruptFileError("the stored pages of this score are missing or damaged: add the score "
                                   "again (studio sheet add PATH)", path=row["path"]) from None
        pages = []
        for info in geo.get("pages", []):
            scale = float(info.get("png_scale") or 1)
            png = folder / str(info.get("png") or f"page-{int(info['page'])}.png")
            if not png.is_file():
                raise CorruptFileError(f"the stored image of page {info['page']} is missing: add the score "
                                       "again (studio sheet add PATH)", path=row["path"])
            pages.append({
                "page": int(info["page"]), "png": str(png),
                "width": int(round(float(info["width"]) * scale)), "height": int(round(float(info["height"]) * scale)),
                "bars": [{"bar": int(b["bar"]), **{k: round(float(b[k]) * scale, 2) for k in ("x0", "y0", "x1", "y1")}}
                         for b in info.get("bars", [])]})
        return {"score_id": int(row["id"]), "title": row["title"] or "", "kind": row["kind"], "path": row["path"],
                "pages": pages}

    # add / remove ------------------------------------------------------------
    def add(self, paths: list[str], ctx: JobContext) -> dict[str, Any]:
        files = expand_paths(paths)
        report: dict[str, Any] = {"added": [], "updated": [], "unchanged": [], "failed": []}
        t0 = time.monotonic()
        n_pages = 0
        for i, f in enumerate(files):
            ctx.check()
            ctx.progress(i / max(1, len(files)), f"Indexing {f.name} ({i + 1}/{len(files)})")
            try:
                score_kind(f)
                if not f.is_file():
                    raise NotFoundError("no such file", path=f)
                sha = _sha1(f)
                old = self.con.execute("SELECT id, sha1 FROM scores WHERE path=?",
                                       (str(f.resolve()),)).fetchone()
                if old and old["sha1"] == sha and self.folder(old["id"]).is_dir():
                    report["unchanged"].append({"score_id": old["id"], "path": str(f.resolve())})
                    continue
                prepared = self.engine.prepare(f, ctx)
                ctx.check()
                emb, meta = self.engine.embed_windows(prepared.strips)
                sid = self._store(prepared, emb, meta, sha, replace=old["id"] if old else None)
                n_pages += len(prepared.page_info)
                (report["updated"] if old else report["added"]).append(
                    {"score_id": sid, "path": prepared.path, "title": prepared.title, "kind": prepared.kind,
                     "pages": len(prepared.page_info), "bars": prepared.n_bars})
            except EngineError as exc:
                report["failed"].append({"path": str(f), "error": str(exc), "kind": exc.kind})
        if report["added"] or report["updated"]:
            self.rebuild_index()
        dt = time.monotonic() - t0
        report["seconds"] = round(dt, 3)
        report["pages_per_second"] = round(n_pages / dt, 3) if dt > 0 and n_pages else 0.0
        ctx.progress(1.0, f"Indexed {len(report['added']) + len(report['updated'])} score(s), "
                          f"{len(report['failed'])} failed", force=True)
        return report

    def _store(self, sc: Any, emb: np.ndarray, meta: np.ndarray, sha: str, *, replace: int | None) -> int:
        con = self.con
        con.execute("BEGIN IMMEDIATE")
        tmp: Path | None = None
        try:
            if replace is not None:
                sid = int(replace)
                con.execute("UPDATE scores SET title=?, kind=?, format=?, pages=?, bars=?, windows=?, sha1=?, "
                            "added=? WHERE id=?", (sc.title, sc.kind, sc.format, len(sc.page_info), sc.n_bars,
                                                   len(emb), sha, time.time(), sid))
            else:
                cur = con.execute(
                    "INSERT INTO scores (path, title, kind, format, pages, bars, windows, sha1, added) "
                    "VALUES (?,?,?,?,?,?,?,?,?)",
                    (sc.path, sc.title, sc.kind, sc.format, len(sc.page_info), sc.n_bars, len(emb), sha,
                     time.time()))
                sid = int(cur.lastrowid)
            final = self.folder(sid)
            tmp = final.with_name(f".{sid}.tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            for k, svg in enumerate(sc.pages_svg, start=1):
                (tmp / f"page-{k}.svg").write_text(svg, "utf-8")
            for k, png in enumerate(sc.pages_png, start=1):
                (tmp / f"page-{k}.png").write_bytes(png)
            geometry = {"kind": sc.kind, "pages": [
                {**pi, "svg": f"page-{pi['page']}.svg" if sc.pages_svg else None,
                 "png": f"page-{pi['page']}.png", "png_scale": 2 if sc.kind == "symbolic" else 1}
                for pi in sc.page_info]}
            (tmp / "geometry.json").write_text(json.dumps(geometry) + "\n", "utf-8")
            offsets = np.cumsum([0] + [s.ink.shape[1] for s in sc.strips]).astype(np.int64)
            arrays: dict[str, np.ndarray] = {
                "strip_ink": np.concatenate([s.ink for s in sc.strips], axis=1),
                "strip_offsets": offsets,
                "strip_pages": np.array([s.page for s in sc.strips], np.int32),
            "strip_staff": np.array([s.staff for s in sc.strips], np.int32),
                "strip_boxes": np.array([s.box for s in sc.strips], np.float32),
                "strip_bars": np.array([(k, a, b, bar) for k, s in enumerate(sc.strips) for a, b, bar in s.bars],
                                       np.float32).reshape(-1, 4),
                "emb": emb.astype(np.float32), "meta": meta.astype(np.float32),
            }
            if sc.features is not None:
                arrays.update(features=sc.features.astype(np.float32), bar_onsets_s=sc.bar_onsets_s,
                              bar_pages=sc.bar_pages)
            np.savez(tmp / "data.npz", **arrays)
            if final.exists():
                old = final.with_name(f".{sid}.old")
                shutil.rmtree(old, ignore_errors=True)
                os.replace(final, old)
                os.replace(tmp, final)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, final)
            con.execute("INSERT OR REPLACE INTO meta VALUES ('model', ?)", (self.engine.name,))
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)
            raise
        return sid

    def remove(self, score_id: int) -> dict[str, Any]:
        row = self.get(score_id)
        self.con.execute("DELETE FROM scores WHERE id=?", (int(score_id),))
        shutil.rmtree(self.folder(score_id), ignore_errors=True)
        self.rebuild_index()
        return row

    # index -----------------------------------------------------------------
    @property
    def index_paths(self) -> tuple[Path, Path, Path]:
        d = self.home.index_dir
        return d / "sheet_snippets.faiss", d / "sheet_snippets_ids.npy", d / "sheet_symbolic.npz"

    def rebuild_index(self) -> None:
        """Rewrite the faiss index and the symbolic feature pack from the stored scores."""
        import faiss

        embs, ids, feats, fids, foffs = [], [], [], [], [0]
        for row in self.list():
            try:
                d = self.load(row["id"], keys=("emb", "features"))
            except (OSError, ValueError):
                continue  # a damaged folder: the score is skipped until re-added
            embs.append(d["emb"])
            ids.append(np.stack([np.full(len(d["emb"]), row["id"]), np.arange(len(d["emb"]))], axis=1))
            if "features" in d:
                feats.append(d["features"].astype(np.float16))
                fids.append(row["id"])
                foffs.append(foffs[-1] + len(d["features"]))
        dim = self.engine.model.cfg.dim
        index = faiss.IndexFlatIP(dim)
        if embs:
            index.add(np.ascontiguousarray(np.concatenate(embs), np.float32))
        fpath, ipath, spath = self.index_paths
        with atomic_path(fpath) as tmp:
            faiss.write_index(index, str(tmp))
        with atomic_path(ipath, suffix=".npy") as tmp:
            with open(tmp, "wb") as fh:
                np.save(fh, np.concatenate(ids).astype(np.int64) if ids else np.zeros((0, 2), np.int64))
        # the symbolic route's ranking input: every score's features at 5 frames/s with unit rows,
        # concatenated (one batched DTW pass per query, see align.subseq_costs)
        dec = [unit_rows(f[::RANK_DECIMATE].astype(np.float32)).astype(np.float16) for f in feats]
        with atomic_path(spath, suffix=".npz") as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, features=np.concatenate(feats) if feats else np.zeros((0, 24), np.float16),
                         ids=np.array(fids, np.int64), offsets=np.array(foffs, np.int64),
                         ranking=np.concatenate(dec) if dec else np.zeros((0, 24), np.float16),
                         ranking_offsets=np.cumsum([0] + [len(x) for x in dec]).astype(np.int64))
        atomic_write_text(self.root / "index.json",
                          json.dumps({"model": self.engine.name, "dim": dim, "rows": int(index.ntotal),
                                      "version": INDEX_VERSION}) + "\n")

    def ensure_index(self) -> None:
        """Rebuild missing index files; re-embed every score if the model changed."""
        info_path = self.root / "index.json"
        info = json.loads(info_path.read_text("utf-8")) if info_path.exists() else None
        if info is not None and info.get("model") != self.engine.name:
            self.reembed()
            self.rebuild_index()
        elif (info is None or info.get("version") != INDEX_VERSION
              or not all(p.exists() for p in self.index_paths)):
            self.rebuild_index()

    def reembed(self) -> None:
        """Recompute window embeddings with the current model (after a model change)."""
        from engines.sheet.pages import Strip

        for row in self.list():
            folder = self.folder(row["id"])
            d = self.load(row["id"])
            off = d["strip_offsets"]
            strips = []
            for k in range(len(off) - 1):
                bars = [(float(a), float(b), int(bar)) for kk, a, b, bar in d["strip_bars"] if int(kk) == k]
                strips.append(Strip(ink=d["strip_ink"][:, off[k]:off[k + 1]], page=int(d["strip_pages"][k]),
                                    box=tuple(float(v) for v in d["strip_boxes"][k]), bars=bars,
                                    staff=int(d["strip_staff"][k]) if "strip_staff" in d else 0))
            emb, meta = self.engine.embed_windows(strips)
            arrays = {k: v for k, v in d.items() if k != "geometry"}
            arrays.update(emb=emb, meta=meta)
            with atomic_path(folder / "data.npz", suffix=".npz") as tmp:
                with open(tmp, "wb") as fh:
                    np.savez(fh, **arrays)

    def read_index(self) -> tuple[Any, np.ndarray, dict[str, np.ndarray]]:
        """The faiss snippet index, its (score id, window) rows and the symbolic pack."""
        self.ensure_index()
        index, ids = self._snippet_index()
        return index, ids, self._symbolic_pack()

    def _snippet_index(self) -> tuple[Any, np.ndarray]:
        import faiss

        fpath, ipath, _ = self.index_paths
        return faiss.read_index(str(fpath)), np.load(ipath)

    def _symbolic_pack(self) -> dict[str, np.ndarray]:
        with np.load(self.index_paths[2]) as z:
            return {k: z[k] for k in ("ids", "offsets", "ranking", "ranking_offsets")}

    # queries ---------------------------------------------------------------
    def find(self, audio: str | os.PathLike[str], *, top: int = 10, ctx: JobContext | None = None,
             route: str = "auto") -> list[Match]:
        """Rank the library's scores for a recording (see :mod:`engines.sheet.engine`).

        ``route``: ``"auto"`` ranks scores with notes by the symbolic route and scans by the
        image route; ``"image"`` or ``"symbolic"`` force one route for every score it can rank.
        """
        eng = self.engine
        rows = {r["id"]: r for r in self.list()}
        if not rows:
            raise NotFoundError("the sheet library is empty: add scores first (studio sheet add PATH)")
        y = eng.query_audio(audio)
        if ctx:
            ctx.progress(0.2, "Listening")
        self.ensure_index()
        results: dict[int, Match] = {}
        image_only = {sid for sid, r in rows.items() if r["kind"] == "image"}
        # image route: votes of every audio snippet's nearest sheet snippets. In "auto" it ranks
        # only the scans (scores with notes go by the more accurate symbolic route)
        if route == "image" or (route == "auto" and image_only):
            results.update(self._find_image(y, rows, top, only=image_only if route == "auto" else None))
        if ctx:
            ctx.progress(0.6, "Comparing with the scores' notes")
        if route in ("auto", "symbolic"):
            results.update(self._find_symbolic(y, rows, top))
        out = sorted(results.values(), key=lambda m: (-m.score, m.score_id))[:top]
        if ctx:
            ctx.progress(1.0, f"{len(out)} match(es)", force=True)
        return out

    def _find_image(self, y: np.ndarray, rows: dict[int, dict[str, Any]], top: int,
                    only: set[int] | None) -> dict[int, Match]:
        import faiss

        index, ids = self._snippet_index()
        params = None
        n = int(index.ntotal)
        if only is not None:
            keep = np.flatnonzero(np.isin(ids[:, 0], list(only)))
            n = len(keep)
            if n < index.ntotal:  # search the scans' rows only, without copying the index
                params = faiss.SearchParameters(  # type: ignore[call-arg]  # the wrapper keeps sel alive
                    sel=faiss.IDSelectorBatch(keep.astype(np.int64)))
        if n == 0:
            return {}
        q_emb, q_times = self.engine.audio_snippets(y)
        k = min(n, 20)
        sims, nn = index.search(np.ascontiguousarray(q_emb, np.float32), k, params=params)
        labels = np.where(nn >= 0, ids[np.clip(nn, 0, None), 0], -1)
        votes = vote(labels, sims)
        total = sum(votes.values()) or 1.0
        out: dict[int, Match] = {}
        for sid, v in sorted(votes.items(), key=lambda kv: -kv[1])[:top]:
            if sid not in rows:
                continue
            page, bar = self._image_position(sid, q_emb, q_times)
            out[sid] = Match(sid, rows[sid]["path"], rows[sid]["title"] or "", round(v / total, 4),
                             page, bar, "image")
        return out

    def _find_symbolic(self, y: np.ndarray, rows: dict[int, dict[str, Any]], top: int) -> dict[int, Match]:
        """DTW of chroma/onset features against every score that has notes.

        All scores are ranked in one batched pass at 5 frames/s over the pack built by
        :meth:`rebuild_index`; only the best ``top`` are loaded for their path (page and bar).
        """
        sym = self._symbolic_pack()
        if not len(sym["ids"]):
            return {}
        qf = chroma_onset(y)[::RANK_DECIMATE]
        cs_all = subseq_costs(qf, sym["ranking"].astype(np.float32), sym["ranking_offsets"], normalized=True)
        order = np.argsort(cs_all, kind="stable")
        cs = cs_all[order]
        conf_all = np.exp(-(cs - cs[0]) / 0.02)
        conf_all /= conf_all.sum()
        out: dict[int, Match] = {}
        for j, p in zip(order, conf_all, strict=False):
            if len(out) >= top:
                break
            sid = int(sym["ids"][j])
            if sid not in rows:
                continue
            d = self.load(sid, keys=("features", "bar_onsets_s", "bar_pages"))
            _, path = symbolic_match(qf, d["features"][::RANK_DECIMATE], decimate=1)
            start_t = path[0, 1] * RANK_DECIMATE / CHROMA_FPS
            bar = bar_at_time(d["bar_onsets_s"], start_t)
            page = int(d["bar_pages"][bar - 1]) if len(d["bar_pages"]) >= bar else 1
            out[sid] = Match(sid, rows[sid]["path"], rows[sid]["title"] or "", round(float(p), 4),
                             page, bar, "symbolic")
        return out

    def _image_position(self, sid: int, q_emb: np.ndarray, q_times: np.ndarray) -> tuple[int, int]:
        d = self.load(sid)
        pts = image_points(q_emb, q_times, d["emb"], d["meta"], self._strip_bars(d))
        if not pts:
            return 1, 1
        return int(pts[0]["page"]), int(pts[0]["bar"])

    @staticmethod
    def _strip_bars(d: dict[str, np.ndarray]) -> list[list[tuple[float, float, int]]]:
        n = len(d["strip_offsets"]) - 1
        out: list[list[tuple[float, float, int]]] = [[] for _ in range(n)]
        for k, a, b, bar in d["strip_bars"]:
            out[int(k)].append((float(a), float(b), int(bar)))
        return out

    def align(self, audio: str | os.PathLike[str], score: str | int, *, ctx: JobContext | None = None,
              route: str = "auto") -> Alignment:
        """Bar-level alignment of a recording with one score (a library id or a score file)."""
        eng = self.engine
        row = self.resolve(score)
        if row is None:
            p = Path(str(score)).expanduser()
            if not p.is_file():
                raise NotFoundError("no such score file or library id", path=str(score))
            prepared = eng.prepare(p, ctx)
            emb, meta = eng.embed_windows(prepared.strips)
            d: dict[str, Any] = {"emb": emb, "meta": meta,
                                 "strip_offsets": np.cumsum([0] + [s.ink.shape[1] for s in prepared.strips]),
                                 "strip_bars": np.array([(k, a, b, bar) for k, s in enumerate(prepared.strips)
                                                         for a, b, bar in s.bars], np.float32).reshape(-1, 4)}
            if prepared.features is not None:
                d.update(features=prepared.features, bar_onsets_s=prepared.bar_onsets_s,
                         bar_pages=prepared.bar_pages)
            sid, path = None, prepared.path
        else:
            d = self.load(row["id"])
            sid, path = int(row["id"]), row["path"]
        y = eng.query_audio(audio)
        if "features" in d and route in ("auto", "symbolic"):
            pts = symbolic_points(chroma_onset(y), d["features"], d["bar_onsets_s"], d["bar_pages"])
            return Alignment("symbolic", pts, sid, path)
        q_emb, q_times = eng.audio_snippets(y, hop_s=0.25)
        pts = image_points(q_emb, q_times, d["emb"], d["meta"], self._strip_bars(d), full=True)
        return Alignment("image", pts, sid, path)
