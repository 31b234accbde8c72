"""Sheet engine: identify the score, page and bar a recording plays, and follow the score.

Two routes (the one used is reported as ``method``):

* ``"image"`` — after Carvalho, Washüttl & Widmer (2023): audio snippets (3 s) and sheet
  snippets (256-px staff windows) embedded by :class:`~engines.sheet.model.SnippetModel`;
  pieces found by voting over a faiss index of every sheet snippet of the library, bars by
  DTW over the snippet-embedding sequences. Works for scans (PDF/PNG/JPG) too.
* ``"symbolic"`` — for scores with notes (MusicXML, MXL, MEI, ABC, Humdrum, MIDI): the score is
  synthesised (bundled SoundFont) and chroma+onset features are aligned to the recording by
  subsequence DTW (librosa). Needs no training; it is the more accurate route (see
  ``bench/sheet_eval.py``), so it is used whenever the score has notes.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engines.core.errors import InputError, ModelError, NotFoundError, UnsupportedFormatError
from engines.core.jobs import JobContext
from engines.sheet.data import crop_audio
from engines.sheet.features import CHROMA_FPS, SR, chroma_onset, logspec, synth_notes
from engines.sheet.pages import (
    IMAGE_EXTENSIONS,
    PDF_EXTENSIONS,
    Strip,
    engraved_strips,
    load_image_pages,
    scan_strips,
    windows,
)
from engines.sheet.symbolic import SYMBOLIC_EXTENSIONS, load_symbolic

MODEL_DIR = Path(__file__).resolve().parents[2] / "resources" / "models" / "sheet"
QUERY_HOP_S = 0.5
MAX_QUERY_S = 600.0
WINDOW_STRIDE = 48
#: temperature of the dual-softmax cost of the image route's whole-recording alignment
ALIGN_TAU = 0.05


@dataclass
class PreparedScore:
    """Everything the library stores about one score (computed without touching the library)."""

    path: str
    kind: str  # "symbolic" | "image"
    format: str
    title: str
    pages_svg: list[str]
    pages_png: list[bytes]
    page_info: list[dict[str, Any]]
    strips: list[Strip]
    n_bars: int
    #: symbolic only: synthesised-score features (frames, 24) at CHROMA_FPS, bar onsets (s), bar pages
    features: np.ndarray | None = None
    bar_onsets_s: np.ndarray | None = None
    bar_pages: np.ndarray | None = None


@dataclass(frozen=True)
class Match:
    score_id: int
    path: str
    title: str
    score: float
    page: int
    bar: int
    method: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Alignment:
    method: str
    points: list[dict[str, Any]] = field(default_factory=list)
    score_id: int | None = None
    path: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "score_id": self.score_id, "path": self.path,
                "points": list(self.points)}


def score_kind(path: str | os.PathLike[str]) -> str:
    suffix = Path(path).suffix.lower()
    if suffix in SYMBOLIC_EXTENSIONS:
        return "symbolic"
    if suffix in IMAGE_EXTENSIONS or suffix in PDF_EXTENSIONS:
        return "image"
    raise UnsupportedFormatError(
        "not a score this app reads (MusicXML, MXL, MEI, ABC, Humdrum, MIDI, PDF, PNG, JPG)", path=path)


class SheetEngine:
    """Public API. ``SheetEngine.from_pretrained("default" | "debug" | folder)``."""

    def __init__(self, model: Any, *, name: str) -> None:
        self.model = model
        self.name = name

    @classmethod
    def from_pretrained(cls, name: str = "default") -> SheetEngine:
        from engines.sheet.model import SnippetModel

        if name == "debug":
            return cls(SnippetModel.debug(), name="debug")
        folder = MODEL_DIR if name == "default" else Path(name)
        if not (folder / "model.safetensors").is_file():
            raise ModelError(f"no sheet model in {folder} (train one with python -m engines.sheet.train)")
        try:
            model = SnippetModel.load(folder)
        except Exception as exc:  # noqa: BLE001
            raise ModelError(f"the sheet model in {folder} cannot be loaded ({exc})") from None
        return cls(model, name=model.cfg.name if name == "default" else str(folder))

    # ------------------------------------------------------------------ scores
    def prepare(self, path: str | os.PathLike[str], ctx: JobContext | None = None) -> PreparedScore:
        """Engrave/rasterise a score and cut its staff strips (no library writes)."""
        p = Path(path)
        if not p.is_file():
            raise NotFoundError("no such file", path=p)
        kind = score_kind(p)
        if kind == "symbolic":
            sym = load_symbolic(p)
            if ctx:
                ctx.check()
            strips, page_info = engraved_strips(sym.pages, sym.measure_ids, sym.note_onsets)
            if not strips:
                raise InputError("the engraving holds no staves", path=p)
            y = synth_notes(sym.notes)
            feats = chroma_onset(y)
            onsets = np.asarray(sym.bar_onsets_ms, np.float64) / 1000.0
            page_of = {b["bar"]: pi["page"] for pi in page_info for b in pi["bars"]}
            pages = np.array([page_of.get(i + 1, 1) for i in range(len(onsets))], np.int32)
            from engines.media.score import svg_to_png

            pngs = [svg_to_png(svg, width=pi["width"] * 2) for svg, pi in zip(sym.pages, page_info, strict=True)]
            return PreparedScore(str(p.resolve()), "symbolic", sym.format, sym.title or p.stem, sym.pages, pngs,
                                 page_info, strips, len(onsets), feats, onsets, pages)
        pages_ink = load_image_pages(p)
        if ctx:
            ctx.check()
        strips, page_info = scan_strips(pages_ink)
        if not strips:
            raise InputError("no music staves were found on the page(s): is this sheet music?", path=p)
        import io

        from PIL import Image

        pngs = []
        for ink in pages_ink:
            buf = io.BytesIO()
            Image.fromarray(255 - ink).save(buf, format="PNG")
            pngs.append(buf.getvalue())
        n_bars = max((b["bar"] for pi in page_info for b in pi["bars"]), default=0)
        return PreparedScore(str(p.resolve()), "image", p.suffix.lower().lstrip("."), p.stem, [], pngs,
                             page_info, strips, n_bars)

    def embed_windows(self, strips: list[Strip]) -> tuple[np.ndarray, np.ndarray]:
        """Embeddings of every window of every strip and their meta.

        Returns
        -------
        emb : (N, dim) float32
        meta : (N, 5) float32 — strip index, centre x, page, bar, is-first-staff-of-system
        """
        inks, meta = [], []
        for k, st in enumerate(strips):
            for win, cx in windows(st, stride=WINDOW_STRIDE):
                inks.append(win)
                meta.append((k, cx, st.page, st.bar_at(cx), 1.0 if st.staff == 0 else 0.0))
        if not inks:
            return np.zeros((0, self.model.cfg.dim), np.float32), np.zeros((0, 5), np.float32)
        return self.model.embed_sheet(np.stack(inks)), np.array(meta, np.float32)

    # ------------------------------------------------------------------ queries
    def query_audio(self, path: str | os.PathLike[str]) -> np.ndarray:
        from engines.media.audio import load_audio

        y = load_audio(path, sr=SR, mono=True, max_duration=MAX_QUERY_S)
        return check_audio(y, path)

    def audio_snippets(self, y: np.ndarray, *, hop_s: float = QUERY_HOP_S) -> tuple[np.ndarray, np.ndarray]:
        """Embeddings of 3-s audio snippets every ``hop_s`` and their centre times."""
        spec = logspec(y)
        dur = len(y) / SR
        centres = np.arange(min(1.5, dur / 2), max(min(1.5, dur / 2) + 1e-3, dur - 1.0), hop_s)
        snips = np.stack([crop_audio(spec, float(c)) for c in centres])
        return self.model.embed_audio(snips), centres


def check_audio(y: np.ndarray, path: Any = None) -> np.ndarray:
    if y.size < SR:
        raise InputError("the recording is shorter than one second", path=path)
    frame = 2048
    n = y.size // frame
    rms = np.sqrt((y[: n * frame].reshape(n, frame) ** 2).mean(axis=1)) if n else np.zeros(1)
    if float(np.max(rms)) < 1e-4:
        raise InputError("the recording is silent: there is no music to look up", path=path)
    return y


# ---------------------------------------------------------------------- routes

def symbolic_match(query_feats: np.ndarray, feats: np.ndarray, *, decimate: int = 2
                   ) -> tuple[float, np.ndarray]:
    """Cost and path of a query (recording features) inside a score's features."""
    from engines.sheet.align import subseq_dtw

    q = query_feats[::decimate]
    r = feats[::decimate]
    cost, path = subseq_dtw(q, r)
    return cost, path * decimate


def bar_at_time(onsets_s: np.ndarray, t: float) -> int:
    """1-based bar holding score time ``t``."""
    return int(max(1, np.searchsorted(onsets_s, t + 1e-6, side="right")))


def symbolic_points(query_feats: np.ndarray, feats: np.ndarray, onsets_s: np.ndarray, pages: np.ndarray
                    ) -> list[dict[str, Any]]:
    """One point per bar the recording covers: audio time of the bar's onset."""
    from engines.sheet.align import path_map, subseq_dtw

    _, path = subseq_dtw(query_feats, feats)
    qt = np.arange(len(query_feats)) / CHROMA_FPS
    rt = np.arange(len(feats)) / CHROMA_FPS
    ref, audio = path_map(path, qt, rt)
    lo, hi = ref[0], ref[-1]
    points = []
    for b, on in enumerate(onsets_s):
        if on < lo - 0.25 or on > hi + 0.05:
            continue
        points.append({"time_s": round(float(np.interp(on, ref, audio)), 3), "page": int(pages[b]),
                       "bar": b + 1})
    return points


def image_points(q_emb: np.ndarray, q_times: np.ndarray, w_emb: np.ndarray, w_meta: np.ndarray,
                 strips_bars: list[list[tuple[float, float, int]]], *, full: bool = False
                 ) -> list[dict[str, Any]]:
    """Bar onsets from DTW of audio-snippet embeddings against the reading-order windows.

    ``full``: the recording plays the whole score (global DTW, both ends anchored, over the
    :func:`dual_softmax_cost` of the similarities); otherwise
    subsequence DTW (an excerpt), which tends to compress the match and is only used to find
    where an excerpt starts.
    """
    from engines.sheet.align import subseq_dtw

    sel = np.flatnonzero(w_meta[:, 4] > 0)
    if sel.size < 2:
        sel = np.arange(len(w_meta))
    order = sel[np.lexsort((w_meta[sel, 1], w_meta[sel, 0]))]
    W = w_emb[order]
    M = w_meta[order]
    # fractional bar position of each window centre
    pos = np.zeros(len(order))
    for i, (k, cx) in enumerate(M[:, :2]):
        bars = strips_bars[int(k)]
        pos[i] = M[i, 3]
        for x0, x1, bar in bars:
            if x0 <= cx < x1:
                pos[i] = bar + (cx - x0) / max(1e-6, x1 - x0) - 0.0
                break
    pos = np.maximum.accumulate(pos)
    sims = q_emb @ W.T
    if full:
        import librosa

        cost = dual_softmax_cost(sims, tau=ALIGN_TAU)

        _, wp = librosa.sequence.dtw(C=np.ascontiguousarray(cost, np.float64), subseq=False)
        path = np.asarray(wp[::-1], np.int64)
    else:
        _, path = subseq_dtw(q_emb, W, cost=1.0 - sims)
    # audio time as a function of bar position along the path
    bp = pos[path[:, 1]]
    at = q_times[path[:, 0]]
    uniq, inv = np.unique(bp, return_inverse=True)
    amean = np.maximum.accumulate(np.bincount(inv, weights=at) / np.bincount(inv))
    page_of = {int(m[3]): int(m[2]) for m in M}
    points = []
    first = 1 if full else max(1, int(np.ceil(uniq[0] - 0.5)))
    last = int(M[:, 3].max()) if full else int(np.floor(uniq[-1]))
    for bar in range(first, last + 1):
        t = float(np.interp(bar, uniq, amean))
        points.append({"time_s": round(t, 3), "page": page_of.get(bar, int(M[0, 2])), "bar": int(bar)})
    return points


def dual_softmax_cost(sims: np.ndarray, *, tau: float = 0.05) -> np.ndarray:
    """``-log`` of the dual softmax of a similarity matrix (audio snippets × sheet windows).

    Each cell is scored by how much its audio snippet prefers that window over the other
    windows *and* the window prefers that snippet over the other snippets, which damps
    "hub" windows that look like every snippet. Measured on held-out pieces it places more bar
    onsets within ±0.5 s than the plain cosine distance (BENCHMARKS.md).
    """
    s = np.asarray(sims, np.float64) / tau
    a = s - s.max(axis=1, keepdims=True)
    a -= np.log(np.exp(a).sum(axis=1, keepdims=True))
    b = s - s.max(axis=0, keepdims=True)
    b -= np.log(np.exp(b).sum(axis=0, keepdims=True))
    return -(a + b)


def vote(labels: np.ndarray, sims: np.ndarray) -> dict[int, float]:
    """Votes per score id from the neighbours of each query snippet (rank-weighted)."""
    out: dict[int, float] = {}
    k = labels.shape[1]
    w = 1.0 / (1.0 + np.arange(k))
    for row, srow in zip(labels, sims, strict=True):
        seen: set[int] = set()
        for j, (lab, s) in enumerate(zip(row, srow, strict=True)):
            if lab < 0 or lab in seen:
                continue
            seen.add(int(lab))
            out[int(lab)] = out.get(int(lab), 0.0) + w[j] * max(0.0, float(s))
    return out
