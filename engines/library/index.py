"""Vector index over track-description embeddings (faiss, exact inner product).

The catalog keeps every embedding as a blob, so the index file is a rebuildable cache:
``index/tracks.faiss`` (``IndexIDMap(IndexFlatIP)``, ids are track ids) plus
``index/tracks.json`` recording the catalog generation it reflects. :func:`load_index`
brings it up to date incrementally (new, changed and removed tracks) or rebuilds it when
the file is missing or damaged, and saves it atomically.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engines.analysis.text import EMBED_DIM
from engines.core.atomic import atomic_path, atomic_write_text
from engines.library.catalog import Catalog

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)
INDEX_NAME = "tracks.faiss"
META_NAME = "tracks.json"


@dataclass
class VectorIndex:
    index: Any  # faiss.IndexIDMap
    generation: int
    rebuilt: bool = False

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    def search(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` ``(track_ids, cosine)`` for one normalised query vector."""
        import numpy as np

        k = max(1, min(int(k), self.ntotal))
        scores, ids = self.index.search(np.asarray(q, np.float32).reshape(1, -1), k)
        keep = ids[0] >= 0
        return ids[0][keep], scores[0][keep]

    def matrix(self) -> tuple[np.ndarray, np.ndarray]:
        """All ``(track_ids, vectors)`` held, without copying the vectors."""
        import faiss
        import numpy as np

        n = self.ntotal
        ids = faiss.vector_to_array(self.index.id_map).astype(np.int64)
        if n == 0:
            return ids, np.zeros((0, EMBED_DIM), np.float32)
        flat = faiss.downcast_index(self.index.index)
        vecs = faiss.rev_swig_ptr(flat.get_xb(), n * EMBED_DIM)
        return ids, np.asarray(vecs).reshape(n, EMBED_DIM)


def _new_index() -> Any:
    import faiss

    return faiss.IndexIDMap(faiss.IndexFlatIP(EMBED_DIM))


def _blobs_to_array(blobs: list[bytes]) -> np.ndarray:
    import numpy as np

    return np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(blobs), EMBED_DIM)


def load_index(cat: Catalog) -> VectorIndex:
    """The index of ``cat``'s data home, synchronised with the catalog and saved."""
    import faiss
    import numpy as np

    folder = cat.home.index_dir
    ipath, mpath = folder / INDEX_NAME, folder / META_NAME
    gen = cat.generation()
    meta: dict[str, Any] = {}
    index = None
    try:
        meta = json.loads(mpath.read_text("utf-8"))
        index = faiss.read_index(str(ipath))  # returned with its concrete type
        if index.d != EMBED_DIM or not isinstance(index, faiss.IndexIDMap):
            raise ValueError("unexpected index layout")
        if int(meta.get("ntotal", -1)) != index.ntotal:
            raise ValueError("index and its metadata disagree")
    except FileNotFoundError:
        index = None
    except Exception as exc:  # damaged cache: rebuild from the catalog
        log.warning("rebuilding the vector index (%s)", exc)
        index = None
    if index is not None and int(meta.get("generation", -1)) == gen:
        return VectorIndex(index, gen)
    rebuilt = index is None
    t_sync = time.time()
    if index is None:
        index = _new_index()
        rows = list(cat.embeddings())
        if rows:
            ids = np.array([r[0] for r in rows], np.int64)
            index.add_with_ids(_blobs_to_array([r[1] for r in rows]), ids)
    else:
        have = set(faiss.vector_to_array(index.id_map).tolist())
        synced_at = float(meta.get("synced_at", 0.0)) - 2.0
        db: dict[int, float] = {int(r[0]): float(r[1]) for r in cat.con.execute(
            "SELECT id, updated_at FROM tracks WHERE embedding IS NOT NULL")}
        stale = {i for i, up in db.items() if up >= synced_at}
        drop = (have - set(db)) | (stale & have)
        add = (set(db) - have) | stale
        if drop:
            index.remove_ids(np.array(sorted(drop), np.int64))
        add_l = sorted(add)
        for i in range(0, len(add_l), 500):
            chunk = add_l[i:i + 500]
            q = ",".join("?" * len(chunk))
            rows = cat.con.execute(f"SELECT id, embedding FROM tracks WHERE id IN ({q})", chunk).fetchall()
            if rows:
                index.add_with_ids(_blobs_to_array([r[1] for r in rows]),
                                   np.array([r[0] for r in rows], np.int64))
    with atomic_path(ipath) as tmp:
        faiss.write_index(index, str(tmp))
    atomic_write_text(mpath, json.dumps({"generation": gen, "ntotal": int(index.ntotal),
                                         "dim": EMBED_DIM, "synced_at": t_sync}))
    return VectorIndex(index, gen, rebuilt=rebuilt)
