"""The music side: every library track's analysis as numpy arrays, cached in the data home.

:func:`load_library` reads the catalog once (``engines.library.catalog``) into a
:class:`LibraryMatrix` and saves it as ``cache/video2music/library.npz``; later calls load
that file, and rebuild it only when the catalog's generation changes. Ranking 10,000
tracks is then a handful of vector operations.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engines.core.atomic import atomic_path
from engines.core.errors import EngineError
from engines.core.home import DataHome

CACHE_VERSION = 1
EMPTY_LIBRARY = ("the library is empty: add music with `studio library add FOLDER` "
                 "(or `studio library demo`) before matching a video")
#: numeric columns of :attr:`LibraryMatrix.num`
NUM_COLS = ("tempo", "energy", "brightness", "onset_density", "major", "loudness_db", "duration",
            "key_confidence")


def _ragged(rows: list[list[float]]) -> tuple[np.ndarray, np.ndarray]:
    off = np.zeros(len(rows) + 1, np.int64)
    off[1:] = np.cumsum([len(r) for r in rows])
    flat = np.asarray([x for r in rows for x in r], np.float32)
    return flat, off


@dataclass
class LibraryMatrix:
    """All tracks of one library, row ``i`` = track ``ids[i]``."""

    ids: np.ndarray                 # (N,) int64
    num: np.ndarray                 # (N, len(NUM_COLS)) float32
    timbre: np.ndarray              # (N, 26) float32
    emb: np.ndarray                 # (N, 384) float32, description embeddings (0 when missing)
    beats_flat: np.ndarray
    beats_off: np.ndarray
    curve_flat: np.ndarray
    curve_off: np.ndarray
    meta: dict[str, list[str]]      # title, artist, album, genre, path, description, key
    generation: int = -1
    _norm: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def col(self, name: str) -> np.ndarray:
        return self.num[:, NUM_COLS.index(name)].astype(np.float64)

    def beats(self, i: int) -> np.ndarray:
        return self.beats_flat[self.beats_off[i]:self.beats_off[i + 1]]

    def curve(self, i: int) -> np.ndarray:
        return self.curve_flat[self.curve_off[i]:self.curve_off[i + 1]]

    def row_of(self, track_id: int) -> int | None:
        hit = np.flatnonzero(self.ids == int(track_id))
        return int(hit[0]) if hit.size else None

    def scaled(self, name: str) -> np.ndarray:
        """Attribute on a 0..1 scale: half absolute, half rank within the library.

        ``tempo`` (log scale 60..180 BPM), ``energy``, ``brightness`` (500..3500 Hz),
        ``density`` (0..5 onsets/s), ``major`` (1 major, 0 minor), ``loudness`` (-40..-8 dB).
        """
        if name in self._norm:
            return self._norm[name]
        if name == "major":
            out = self.col("major")
        else:
            src, lo, hi = {
                "tempo": ("tempo", np.log2(60.0), np.log2(180.0)),
                "energy": ("energy", 0.0, 1.0),
                "brightness": ("brightness", 500.0, 3500.0),
                "density": ("onset_density", 0.0, 5.0),
                "loudness": ("loudness_db", -40.0, -8.0),
            }[name]
            x = self.col(src)
            if name == "tempo":
                x = np.log2(np.maximum(x, 30.0))
            absolute = np.clip((x - lo) / (hi - lo), 0.0, 1.0)
            n = x.shape[0]
            if n > 1:
                rank = np.empty(n)
                rank[np.argsort(x, kind="stable")] = np.arange(n) / (n - 1)
                out = 0.5 * absolute + 0.5 * rank
            else:
                out = absolute
        self._norm[name] = out
        return out

    def texts(self) -> list[str]:
        m = self.meta
        return [" ".join((m["title"][i], m["artist"][i], m["album"][i], m["genre"][i],
                          m["description"][i])).lower() for i in range(len(self))]


def _build(home: DataHome) -> LibraryMatrix:
    from engines.library.catalog import Catalog

    with Catalog(home) as cat:
        gen = cat.generation()
        rows = cat.list_tracks(sort="path")
        emb_map = {int(i): blob for i, blob in cat.embeddings()}
        full = [cat.get_track(int(r["track_id"])) for r in rows]
    n = len(full)
    ids = np.array([int(r["track_id"]) for r in full], np.int64)
    num = np.zeros((n, len(NUM_COLS)), np.float32)
    timbre = np.zeros((n, 26), np.float32)
    emb = np.zeros((n, 384), np.float32)
    beats, curves = [], []
    meta: dict[str, list[str]] = {k: [] for k in ("title", "artist", "album", "genre", "path",
                                                  "description", "key")}
    for i, r in enumerate(full):
        mode = str(r.get("mode") or "")
        num[i] = [float(r.get("tempo") or 0), float(r.get("energy") or 0),
                  float(r.get("brightness") or 0), float(r.get("onset_density") or 0),
                  1.0 if mode == "major" else (0.0 if mode == "minor" else 0.5),
                  float(r.get("loudness_db") or 0), float(r.get("duration") or 0),
                  float(r.get("key_confidence") or 0)]
        t = list(r.get("timbre") or [])[:26]
        timbre[i, :len(t)] = t
        blob = emb_map.get(int(r["track_id"]))
        if blob is not None and len(blob) == 384 * 4:
            emb[i] = np.frombuffer(blob, np.float32)
        beats.append([float(b) for b in (r.get("beats") or [])])
        curves.append([float(c) for c in (r.get("energy_curve") or [])])
        for k in meta:
            meta[k].append(str(r.get(k) or ""))
    bf, bo = _ragged(beats)
    cf, co = _ragged(curves)
    return LibraryMatrix(ids, num, timbre, emb, bf, bo, cf, co, meta, gen)


def _cache_path(home: DataHome) -> Any:
    return home.cache / "video2music" / "library.npz"


def _save(home: DataHome, lib: LibraryMatrix) -> None:
    p = _cache_path(home)
    with atomic_path(p) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, ids=lib.ids, num=lib.num, timbre=lib.timbre, emb=lib.emb,
                     beats_flat=lib.beats_flat, beats_off=lib.beats_off, curve_flat=lib.curve_flat,
                     curve_off=lib.curve_off,
                     meta=np.frombuffer(json.dumps(lib.meta).encode(), np.uint8),
                     info=np.array([CACHE_VERSION, lib.generation], np.int64))


def _load_cached(home: DataHome, generation: int) -> LibraryMatrix | None:
    p = _cache_path(home)
    try:
        with np.load(p, allow_pickle=False) as z:
            info = z["info"]
            if int(info[0]) != CACHE_VERSION or int(info[1]) != generation:
                return None
            return LibraryMatrix(z["ids"], z["num"], z["timbre"], z["emb"], z["beats_flat"],
                                 z["beats_off"], z["curve_flat"], z["curve_off"],
                                 json.loads(bytes(z["meta"]).decode()), generation)
    except (OSError, KeyError, ValueError):
        return None


_mem: dict[str, LibraryMatrix] = {}
_lock = threading.Lock()


def load_library(home: DataHome, *, allow_empty: bool = False) -> LibraryMatrix:
    """The library of ``home`` as a :class:`LibraryMatrix` (memory, then disk cache, then catalog).

    Raises
    ------
    EngineError
        The library is empty (unless ``allow_empty``).
    """
    from engines.library.catalog import Catalog

    with Catalog(home) as cat:
        gen = cat.generation()
        count = cat.count()
    if count == 0 and not allow_empty:
        raise EngineError(EMPTY_LIBRARY, path=home.library_db)
    key = str(home.root)
    with _lock:
        lib = _mem.get(key)
        if lib is not None and lib.generation == gen:
            return lib
        lib = _load_cached(home, gen)
        if lib is None:
            lib = _build(home)
            try:
                _save(home, lib)
            except OSError:
                pass  # a read-only cache folder only costs speed
        _mem[key] = lib
        return lib


def matrix_from_features(feats: list[dict[str, Any]], meta: list[dict[str, str]],
                         emb: np.ndarray | None = None) -> LibraryMatrix:
    """A :class:`LibraryMatrix` from analysis dicts (``TrackFeatures.to_dict()``) without a
    catalog — used for training on soundtracks and for evaluation pools."""
    n = len(feats)
    num = np.zeros((n, len(NUM_COLS)), np.float32)
    timbre = np.zeros((n, 26), np.float32)
    for i, f in enumerate(feats):
        mode = str(f.get("mode") or "")
        num[i] = [float(f.get("tempo") or 0), float(f.get("energy") or 0), float(f.get("brightness") or 0),
                  float(f.get("onset_density") or 0), 1.0 if mode == "major" else (0.0 if mode == "minor" else 0.5),
                  float(f.get("loudness_db") or 0), float(f.get("duration") or 0),
                  float(f.get("key_confidence") or 0)]
        t = list(f.get("timbre") or [])[:26]
        timbre[i, :len(t)] = t
    bf, bo = _ragged([list(f.get("beats") or []) for f in feats])
    cf, co = _ragged([list(f.get("energy_curve") or []) for f in feats])
    keys = ("title", "artist", "album", "genre", "path", "description", "key")
    m = {k: [str(x.get(k, "")) for x in meta] for k in keys}
    m["key"] = [str(f.get("key") or "") for f in feats]
    e = np.zeros((n, 384), np.float32) if emb is None else np.asarray(emb, np.float32)
    return LibraryMatrix(np.arange(1, n + 1, dtype=np.int64), num, timbre, e, bf, bo, cf, co, m, 0)
