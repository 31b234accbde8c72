"""DTW helpers: subsequence DTW of a query against a reference, and time maps from paths."""

from __future__ import annotations

from typing import Any

import numpy as np


def subseq_dtw(query: np.ndarray, ref: np.ndarray, *, cost: np.ndarray | None = None
               ) -> tuple[float, np.ndarray]:
    """Align all of ``query`` (frames, d) to a contiguous part of ``ref`` (frames, d).

    Features are compared by cosine distance (or ``cost`` is given, shape (Q, R)).

    Returns
    -------
    cost : float
        Accumulated cost at the best end, divided by the query length.
    path : ndarray, shape (L, 2)
        ``(query_frame, ref_frame)`` pairs in increasing order.
    """
    import librosa

    if cost is None:
        q = query / (np.linalg.norm(query, axis=1, keepdims=True) + 1e-9)
        r = ref / (np.linalg.norm(ref, axis=1, keepdims=True) + 1e-9)
        cost = 1.0 - q @ r.T
    cost = np.ascontiguousarray(cost, dtype=np.float64)
    swap = cost.shape[0] > cost.shape[1]
    if swap:  # the reference is the shorter one: find it inside the query instead
        cost = np.ascontiguousarray(cost.T)
    steps = np.array([[1, 1], [1, 2], [2, 1], [1, 0], [0, 1]])
    weights = np.array([1.0, 1.0, 1.5, 1.5, 1.5])
    D, wp = librosa.sequence.dtw(C=cost, subseq=True, step_sizes_sigma=steps, weights_add=np.zeros(5),
                                 weights_mul=weights, backtrack=True)
    path = np.asarray(wp[::-1], dtype=np.int64)
    if swap:
        path = path[:, ::-1].copy()
    return float(np.min(D[-1, :]) / max(1, cost.shape[0])), path


def path_map(path: np.ndarray, query_times: np.ndarray, ref_times: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray]:
    """Monotone (ref_time, query_time) pairs from a DTW path (duplicates averaged)."""
    rt = ref_times[path[:, 1]]
    qt = query_times[path[:, 0]]
    uniq, inv = np.unique(rt, return_inverse=True)
    qmean = np.bincount(inv, weights=qt) / np.bincount(inv)
    return uniq, np.maximum.accumulate(qmean)


def _accumulate_py(cost: np.ndarray) -> np.ndarray:
    """Subsequence DTW end costs (last query row) with steps (1,1) (1,2) (2,1) (1,0) (0,1)."""
    q, r = cost.shape
    inf = np.inf
    D = np.full((q, r), inf)
    D[0, :] = cost[0, :]
    for i in range(1, q):
        for j in range(r):
            c = cost[i, j]
            best = D[i - 1, j] + 1.5 * c
            if j >= 1:
                best = min(best, D[i - 1, j - 1] + c, D[i, j - 1] + 1.5 * c)
            if j >= 2:
                best = min(best, D[i - 1, j - 2] + c)
            if i >= 2 and j >= 1:
                best = min(best, D[i - 2, j - 1] + 1.5 * c)
            D[i, j] = best
    return D[q - 1]


_prange: Any = range  # numba.prange when numba is there
# compiled below when numba is there (plain Python otherwise)
_end_cost: Any
_cosine_cost: Any
_accumulate: Any
_segment_costs: Any


def _end_cost_py(block: np.ndarray) -> float:
    """Best subsequence DTW end cost of ``block`` (rows: the shorter side), over its rows.

    The recursion of :func:`_accumulate_py` split in two passes per row: the four steps from
    earlier rows (independent across columns, so they vectorise), then the one horizontal
    step, which runs along the row.
    """
    rows, cols = block.shape
    inf = np.float32(np.inf)
    prev2 = np.full(cols, inf, np.float32)
    prev = block[0].copy()
    cur = np.empty(cols, np.float32)
    h = np.float32(1.5)
    for i in range(1, rows):
        c = block[i]
        cur[0] = prev[0] + h * c[0]
        if cols > 1:
            cur[1] = min(prev[1] + h * c[1], prev[0] + c[1], prev2[0] + h * c[1])
        for j in range(2, cols):
            cj = c[j]
            cur[j] = min(min(prev[j] + h * cj, prev[j - 1] + cj), min(prev2[j - 1] + h * cj, prev[j - 2] + cj))
        for j in range(1, cols):
            cur[j] = min(cur[j], cur[j - 1] + h * c[j])
        prev2, prev, cur = prev, cur, prev2
    return float(prev.min()) / rows


def _cosine_cost_py(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``1 - x @ y.T`` for unit rows, as plain loops (a BLAS call per small block is slower)."""
    n, m, d = x.shape[0], y.shape[0], x.shape[1]
    out = np.empty((n, m), np.float32)
    for i in range(n):
        for j in range(m):
            acc = np.float32(0.0)
            for t in range(d):
                acc += x[i, t] * y[j, t]
            out[i, j] = np.float32(1.0) - acc
    return out


def _segment_costs_py(q: np.ndarray, r: np.ndarray, offsets: np.ndarray, out: np.ndarray) -> None:
    """Subsequence DTW end cost of ``q`` against each ``r[offsets[k]:offsets[k+1]]``.

    ``q`` and ``r`` hold unit rows (float32); the cost is cosine distance, computed one score at
    a time so it stays in cache. Same recursion as :func:`_accumulate_py` with rolling rows; when a
    score is shorter than the query it is found inside the query (roles swapped, as
    :func:`subseq_dtw` does). ``out[k]`` is the best end cost divided by the shorter side;
    ``inf`` for an empty score.
    """
    n_seg = offsets.shape[0] - 1
    for k in _prange(n_seg):
        a = offsets[k]
        r_len = offsets[k + 1] - a
        if r_len <= 0:
            out[k] = np.inf
        elif q.shape[0] > r_len:
            out[k] = _end_cost(_cosine_cost(r[a:a + r_len], q))
        else:
            out[k] = _end_cost(_cosine_cost(q, r[a:a + r_len]))


try:  # numba ships with librosa
    from numba import njit, prange

    _accumulate = njit(cache=True, nogil=True)(_accumulate_py)
    _prange = prange
    _end_cost = njit(cache=True, nogil=True)(_end_cost_py)
    _cosine_cost = njit(cache=True, nogil=True, fastmath=True)(_cosine_cost_py)
    _segment_costs = njit(cache=True, nogil=True, parallel=True)(_segment_costs_py)
except Exception:  # noqa: BLE001 - numba missing or broken: plain Python (slow, correct)
    _accumulate = _accumulate_py
    _end_cost = _end_cost_py
    _cosine_cost = _cosine_cost_py
    _segment_costs = _segment_costs_py


def subseq_cost(query: np.ndarray, ref: np.ndarray) -> float:
    """Only the normalised cost of :func:`subseq_dtw` (no path): fast, for ranking many scores."""
    q = query / (np.linalg.norm(query, axis=1, keepdims=True) + 1e-9)
    r = ref / (np.linalg.norm(ref, axis=1, keepdims=True) + 1e-9)
    cost = 1.0 - q @ r.T
    if cost.shape[0] > cost.shape[1]:
        cost = cost.T
    return float(_accumulate(np.ascontiguousarray(cost, np.float64)).min() / cost.shape[0])


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows of ``x`` scaled to unit L2 norm (float32); all-zero rows stay zero."""
    x = np.asarray(x, np.float32)
    return x / (np.linalg.norm(x, axis=1, keepdims=True) + 1e-9)


def subseq_costs(query: np.ndarray, refs: np.ndarray, offsets: np.ndarray, *, normalized: bool = False
                 ) -> np.ndarray:
    """:func:`subseq_cost` of ``query`` against each ``refs[offsets[k]:offsets[k+1]]``.

    One compiled loop over all scores (in parallel): per score, the cosine costs are one small
    float32 matrix product that stays in cache, then the subsequence DTW runs on rolling rows;
    memory stays small for any library size.

    Parameters
    ----------
    query : (Q, d) array
    refs : (N, d) array
        Every score's frames, concatenated.
    offsets : (K + 1,) int array
        Score ``k`` is ``refs[offsets[k]:offsets[k + 1]]``.
    normalized : bool
        ``refs`` rows already have unit norm (see :func:`unit_rows`): skips that step.

    Returns
    -------
    (K,) float64 — the cost of the best subsequence match per score (``inf`` if it is empty).
    """
    q = unit_rows(query)
    r = np.asarray(refs, np.float32) if normalized else unit_rows(refs)
    offsets = np.asarray(offsets, np.int64)
    n = len(offsets) - 1
    out = np.empty(n, np.float64)
    if n <= 0:
        return out
    if len(q) == 0:
        out[:] = np.inf
        return out
    _segment_costs(np.ascontiguousarray(q), np.ascontiguousarray(r), offsets, out)
    return out


def warm() -> None:
    """Compile (or load from numba's cache) the ranking loops once, in one process.

    Run by the Makefile's bootstrap next to the librosa warm-up, so that processes started
    later (engine host, test workers) never compile the same cache entries concurrently.
    """
    rng = np.random.default_rng(0)
    subseq_costs(rng.random((6, 12)), rng.random((20, 12)), np.array([0, 4, 20]))
    subseq_cost(rng.random((6, 12)), rng.random((9, 12)))
