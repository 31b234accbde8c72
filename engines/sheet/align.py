"""DTW helpers: subsequence DTW of a query against a reference, and time maps from paths."""

from __future__ import annotations

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


try:  # numba ships with librosa
    from numba import njit

    _accumulate = njit(cache=True, nogil=True)(_accumulate_py)
except Exception:  # noqa: BLE001 - numba missing or broken: plain Python (slow, correct)
    _accumulate = _accumulate_py


def subseq_cost(query: np.ndarray, ref: np.ndarray) -> float:
    """Only the normalised cost of :func:`subseq_dtw` (no path): fast, for ranking many scores."""
    q = query / (np.linalg.norm(query, axis=1, keepdims=True) + 1e-9)
    r = ref / (np.linalg.norm(ref, axis=1, keepdims=True) + 1e-9)
    cost = 1.0 - q @ r.T
    if cost.shape[0] > cost.shape[1]:
        cost = cost.T
    return float(_accumulate(np.ascontiguousarray(cost, np.float64)).min() / cost.shape[0])


def subseq_costs(query: np.ndarray, refs: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """:func:`subseq_cost` of ``query`` against each ``refs[offsets[k]:offsets[k+1]]`` (one matmul)."""
    q = query / (np.linalg.norm(query, axis=1, keepdims=True) + 1e-9)
    r = refs / (np.linalg.norm(refs, axis=1, keepdims=True) + 1e-9)
    cost = (1.0 - q.astype(np.float32) @ r.astype(np.float32).T).astype(np.float64)
    out = np.empty(len(offsets) - 1)
    for k in range(len(offsets) - 1):
        c = cost[:, offsets[k]:offsets[k + 1]]
        if c.shape[1] == 0:
            out[k] = np.inf
            continue
        if c.shape[0] > c.shape[1]:
            c = c.T
        out[k] = _accumulate(np.ascontiguousarray(c)).min() / c.shape[0]
    return out
