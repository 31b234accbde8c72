"""Page geometry: staves, bars and notes on engraved (SVG) and scanned (image/PDF) pages.

Everything here works on one convention: a *strip* is one staff of one system, cut from a
page raster scaled so that the staff (top line to bottom line) is :data:`STAFF_PX` pixels
high, :data:`STRIP_H` pixels tall and centred on the staff, stored as ink (0 = paper,
255 = black). Sheet snippets are :data:`SNIPPET_W`-pixel windows of strips.

Engraved pages: positions come from verovio's SVG (staff lines, measures, noteheads).
Scans: staves are found by horizontal projection and bars by barline detection
(approximate: see :func:`detect_staves` and :func:`detect_barlines`).
"""

from __future__ import annotations

import io
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engines.core.errors import CorruptFileError, InputError, ResourceLimitError, UnsupportedFormatError

STAFF_PX = 20
STRIP_H = 64
SNIPPET_W = 256
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
PDF_EXTENSIONS = (".pdf",)
#: images larger than this many pixels are refused (decompression bombs)
MAX_IMAGE_PIXELS = 80_000_000
MAX_IMAGE_BYTES = 100 * 2**20
MAX_PDF_PAGES = 200
PDF_DPI = 150

_MEASURE = re.compile(r'<g id="([^"]+)" class="measure[ "]')
_STAFF = re.compile(r'<g id="[^"]+" class="staff[ "]')
_LINE = re.compile(r'<path d="M(-?[\d.]+) (-?[\d.]+) L(-?[\d.]+) (-?[\d.]+)"')
_NOTE = re.compile(r'<g id="([^"]+)" class="note[ "]')
_TRANSLATE = re.compile(r'translate\((-?[\d.]+),\s*(-?[\d.]+)\)')
_VIEWBOX = re.compile(r'<svg class="definition-scale"[^>]*viewBox="0 0 ([\d.]+) ([\d.]+)"')
_MARGIN = re.compile(r'class="page-margin" transform="translate\((-?[\d.]+),\s*(-?[\d.]+)\)"')


@dataclass
class Strip:
    """One staff of one system, normalised (see module docstring).

    Attributes
    ----------
    ink : ndarray, uint8, shape (STRIP_H, width)
    page : int
        1-based page.
    box : (x0, y0, x1, y1)
        The staff's box on the page, in page pixels of the page PNG (``page_scale`` applies).
    bars : list of (x0, x1, bar)
        Bar spans in strip pixels; ``bar`` is the 1-based bar number in score order.
    notes : list of (x, onset_ms)
        Note heads in strip pixels with their score time (engraved scores only).
    staff : int
        Index of the staff in its system (0 = top).
    """

    ink: np.ndarray
    page: int
    box: tuple[float, float, float, float]
    bars: list[tuple[float, float, int]] = field(default_factory=list)
    notes: list[tuple[float, float]] = field(default_factory=list)
    #: 0 for the top staff of its system
    staff: int = 0

    def bar_at(self, x: float) -> int:
        best, dist = (self.bars[0][2] if self.bars else 1), 1e18
        for x0, x1, bar in self.bars:
            if x0 <= x < x1:
                return bar
            d = min(abs(x - x0), abs(x - x1))
            if d < dist:
                best, dist = bar, d
        return best


# --------------------------------------------------------------------------- engraved SVG

@dataclass
class SvgGeometry:
    width_units: float
    height_units: float
    margin: tuple[float, float]
    #: measure id -> list of staves (x0, x1, ytop, ybot) in units, in staff order
    measures: dict[str, list[tuple[float, float, float, float]]]
    #: note id -> (x, y) of the notehead in units
    notes: dict[str, tuple[float, float]]
    measure_order: list[str]

    @property
    def staff_height(self) -> float:
        hs = [s[3] - s[2] for staves in self.measures.values() for s in staves]
        return float(np.median(hs)) if hs else 720.0


def parse_svg(svg: str) -> SvgGeometry:
    """Read staff lines, measures and noteheads from a verovio SVG page."""
    vb = _VIEWBOX.search(svg)
    if not vb:
        raise CorruptFileError("unexpected SVG: no verovio page")
    mg = _MARGIN.search(svg)
    margin = (float(mg.group(1)), float(mg.group(2))) if mg else (0.0, 0.0)
    starts = [(m.start(), m.group(1)) for m in _MEASURE.finditer(svg)]
    measures: dict[str, list[tuple[float, float, float, float]]] = {}
    notes: dict[str, tuple[float, float]] = {}
    for k, (pos, mid) in enumerate(starts):
        end = starts[k + 1][0] if k + 1 < len(starts) else len(svg)
        seg = svg[pos:end]
        staves = []
        for sm in _STAFF.finditer(seg):
            lines = []
            for lm in _LINE.finditer(seg, sm.end(), min(len(seg), sm.end() + 600)):
                x1, y1, x2, y2 = (float(v) for v in lm.groups())
                if abs(y1 - y2) > 1e-6:
                    break
                lines.append((x1, x2, y1))
                if len(lines) == 5:
                    break
            if len(lines) >= 2:
                ys = [ln[2] for ln in lines]
                staves.append((min(ln[0] for ln in lines), max(ln[1] for ln in lines), min(ys), max(ys)))
        if staves:
            measures[mid] = staves
        for nm in _NOTE.finditer(seg):
            tm = _TRANSLATE.search(seg, nm.end(), min(len(seg), nm.end() + 400))
            if tm:
                notes[nm.group(1)] = (float(tm.group(1)), float(tm.group(2)))
    return SvgGeometry(float(vb.group(1)), float(vb.group(2)), margin, measures, notes,
                       [mid for _, mid in starts if mid in measures])


def raster_svg(svg: str, width: int) -> np.ndarray:
    """SVG → grayscale ink array (uint8, 255 = black) of the given pixel width."""
    from PIL import Image

    from engines.media.score import svg_to_png

    png = svg_to_png(svg, width=max(16, int(width)))
    gray = np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=np.uint8)
    return (255 - gray).astype(np.uint8)


def _cut(ink: np.ndarray, y_mid: float, x0: float, x1: float, scale: float) -> np.ndarray:
    """Cut a strip centred on ``y_mid`` (page px), rescaled by ``scale`` to STRIP_H rows."""
    h = STRIP_H / scale
    ya, yb = int(round(y_mid - h / 2)), int(round(y_mid + h / 2))
    xa, xb = max(0, int(np.floor(x0))), min(ink.shape[1], int(np.ceil(x1)))
    if xb <= xa:
        return np.zeros((STRIP_H, 1), np.uint8)
    crop = np.zeros((yb - ya, xb - xa), np.uint8)
    sa, sb = max(0, ya), min(ink.shape[0], yb)
    if sb > sa:
        crop[sa - ya:sb - ya] = ink[sa:sb, xa:xb]
    if abs(scale - 1.0) > 1e-3 or crop.shape[0] != STRIP_H:
        from PIL import Image

        w = max(1, int(round(crop.shape[1] * scale)))
        crop = np.asarray(Image.fromarray(crop).resize((w, STRIP_H), Image.BILINEAR), dtype=np.uint8)
    return crop


def engraved_strips(
    pages: list[str], measure_ids: list[str], note_onsets: dict[str, float],
    *, staff_px: int = STAFF_PX,
) -> tuple[list[Strip], list[dict[str, Any]]]:
    """Strips of every staff of every system of an engraving, with bars and note times.

    Parameters
    ----------
    pages : list of SVG str
    measure_ids : verovio id of each measure, in score order
    note_onsets : note id -> onset in ms (from the timemap)

    Returns
    -------
    strips : list of Strip, in reading order (page, system, staff)
    page_info : list of dict per page: ``width``, ``height`` (px of the PNG at ``staff_px``),
        ``bars``: list of ``{"bar", "x0", "y0", "x1", "y1"}`` boxes covering the system.
    """
    bar_of = {mid: i + 1 for i, mid in enumerate(measure_ids)}
    strips: list[Strip] = []
    page_info: list[dict[str, Any]] = []
    for pno, svg in enumerate(pages, start=1):
        geo = parse_svg(svg)
        f = staff_px / max(1.0, geo.staff_height)
        width = int(round(geo.width_units * f))
        ink = raster_svg(svg, width)
        f = ink.shape[1] / geo.width_units
        mx, my = geo.margin
        systems: dict[int, list[str]] = {}
        for mid in geo.measure_order:
            top = geo.measures[mid][0][2]
            key = next((k for k in systems if abs(k - top) < 50), None)
            systems.setdefault(int(top) if key is None else key, []).append(mid)
        bars_info = []
        staff_rows: list[tuple[int, float, float, float, float]] = []
        for key in sorted(systems):
            mids = systems[key]
            n_staves = max(len(geo.measures[m]) for m in mids)
            sx0 = min(geo.measures[m][0][0] for m in mids)
            sx1 = max(geo.measures[m][0][1] for m in mids)
            first = geo.measures[mids[0]]
            for mid in mids:
                st = geo.measures[mid]
                if mid in bar_of:
                    bars_info.append({"bar": bar_of[mid], "x0": (st[0][0] + mx) * f,
                                      "x1": (st[0][1] + mx) * f, "y0": (st[0][2] + my) * f,
                                      "y1": (st[-1][3] + my) * f})
            for s in range(n_staves):
                if s >= len(first):
                    continue
                ytop, ybot = first[s][2], first[s][3]
                scale = staff_px / max(1e-6, (ybot - ytop) * f)
                x0p, x1p = (sx0 + mx) * f - 4, (sx1 + mx) * f + 4
                crop = _cut(ink, ((ytop + ybot) / 2 + my) * f, x0p, x1p, scale)
                to_strip = lambda x, x0p=x0p, scale=scale: (x - x0p) * scale  # noqa: E731
                bars = [(to_strip((geo.measures[m][0][0] + mx) * f), to_strip((geo.measures[m][0][1] + mx) * f),
                         bar_of.get(m, 0)) for m in mids if m in bar_of]
                strips.append(Strip(ink=crop, page=pno, box=(x0p, (ytop + my) * f, x1p, (ybot + my) * f),
                                    bars=bars, staff=s))
            for s in range(min(n_staves, len(first))):
                staff_rows.append((len(strips) - min(n_staves, len(first)) + s,
                                   (first[s][2] + first[s][3]) / 2, sx0 - 10, sx1 + 10,
                                   staff_px / max(1e-6, (first[s][3] - first[s][2]) * f)))
        # each note goes to the nearest staff (on this page) whose x-range holds it
        for nid, (nx, ny) in geo.notes.items():
            if nid not in note_onsets:
                continue
            best = min((abs(ny - ym), k, scale) for k, ym, xa, xb, scale in staff_rows if xa <= nx <= xb) \
                if any(xa <= nx <= xb for _, _, xa, xb, _ in staff_rows) else None
            if best is None or best[0] > 1500:
                continue
            st = strips[best[1]]
            st.notes.append((((nx + mx) * f - st.box[0]) * best[2], note_onsets[nid]))
        for st in strips:
            st.notes.sort()
        page_info.append({"page": pno, "width": ink.shape[1], "height": ink.shape[0],
                          "bars": sorted(bars_info, key=lambda b: b["bar"])})
    return strips, page_info


# --------------------------------------------------------------------------- scans

def _check_image_size(w: int, h: int, path: Any) -> None:
    if w * h > MAX_IMAGE_PIXELS or w > 30000 or h > 30000:
        raise ResourceLimitError(
            f"the image is {w}×{h} pixels (limit {MAX_IMAGE_PIXELS // 1_000_000} megapixels)", path=path)
    if w < 64 or h < 32:
        raise InputError(f"the image is only {w}×{h} pixels: too small to hold music", path=path)


def load_image_pages(path: str | os.PathLike[str]) -> list[np.ndarray]:
    """Ink arrays (uint8, 255 = black) of the pages of a PNG/JPG scan or a PDF."""
    p = Path(path)
    size = p.stat().st_size
    if size == 0:
        raise CorruptFileError("empty file", path=p)
    if size > MAX_IMAGE_BYTES:
        raise ResourceLimitError(f"the file is {size / 2**20:.0f} MB (limit {MAX_IMAGE_BYTES // 2**20} MB)",
                                 path=p)
    if p.suffix.lower() in PDF_EXTENSIONS:
        from engines.media.safe import run_isolated

        with open(p, "rb") as fh:
            head = fh.read(1024)
        if b"%PDF" not in head:
            raise UnsupportedFormatError("not a PDF file (no %PDF header)", path=p)
        arrays = run_isolated(_render_pdf_child, str(p), timeout=120, memory_mb=3072, path_for_errors=p)
        return [np.asarray(a, dtype=np.uint8) for a in arrays]
    import warnings

    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():  # our own size limit below is stricter than PIL's warning
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(p)
        with im:
            _check_image_size(im.width, im.height, p)
            gray = np.asarray(im.convert("L"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise CorruptFileError(f"the image cannot be read ({exc})", path=p) from None
    except Image.DecompressionBombError:
        raise ResourceLimitError("the image is too large (a decompression bomb?)", path=p) from None
    return [(255 - gray).astype(np.uint8)]


def _render_pdf_child(path: str) -> list[np.ndarray]:
    """Rasterise a PDF at PDF_DPI (runs in a child process: PDFium parses untrusted data)."""
    import pypdfium2 as pdfium

    try:
        doc = pdfium.PdfDocument(path)
    except pdfium.PdfiumError as exc:
        msg = str(exc)
        if "password" in msg.lower():
            raise UnsupportedFormatError("the PDF is encrypted (password protected)", path=path) from None
        raise CorruptFileError(f"the PDF cannot be read ({msg})", path=path) from None
    n = len(doc)
    if n == 0:
        raise CorruptFileError("the PDF has no pages", path=path)
    if n > MAX_PDF_PAGES:
        raise ResourceLimitError(f"the PDF has {n} pages (limit {MAX_PDF_PAGES})", path=path)
    out = []
    for i in range(n):
        page = doc[i]
        w, h = page.get_size()
        scale = PDF_DPI / 72.0
        _check_image_size(int(w * scale), int(h * scale), path)
        try:
            img = page.render(scale=scale, grayscale=True).to_pil().convert("L")
        except Exception as exc:  # noqa: BLE001
            raise CorruptFileError(f"page {i + 1} of the PDF cannot be rendered ({exc})", path=path) from None
        out.append((255 - np.asarray(img, dtype=np.uint8)).astype(np.uint8))
    return out


def detect_staves(ink: np.ndarray) -> list[tuple[float, float, float, float]]:
    """Find five-line staves by horizontal projection.

    Rows where more than 35 % of the (inked columns') width is dark are staff-line
    candidates; runs of adjacent rows merge into lines; five lines with near-equal
    spacing make a staff. Returns ``(x0, ytop, x1, ybot)`` per staff, top to bottom.
    Approximate: skewed scans (more than ~1°), very faint lines or tablature are missed.
    """
    if ink.size == 0:
        return []
    dark = ink > 110
    cols = np.flatnonzero(dark.mean(axis=0) > 0.002)
    if cols.size < 20:
        return []
    width = cols[-1] - cols[0] + 1
    row = dark.sum(axis=1) / max(1, width)
    cand = np.flatnonzero(row > 0.35)
    lines: list[float] = []
    if cand.size:
        runs = np.split(cand, np.flatnonzero(np.diff(cand) > 1) + 1)
        lines = [float(r.mean()) for r in runs if r.size <= 8]
    staves = []
    i = 0
    while i + 4 < len(lines):
        gaps = np.diff(lines[i:i + 5])
        g = float(np.median(gaps))
        if g >= 3 and np.all(np.abs(gaps - g) <= max(1.5, 0.2 * g)):
            ytop, ybot = lines[i], lines[i + 4]
            band = dark[int(ytop):int(ybot) + 1]
            xs = np.flatnonzero(band.mean(axis=0) > 0.9)
            x0, x1 = (float(xs[0]), float(xs[-1])) if xs.size else (float(cols[0]), float(cols[-1]))
            staves.append((x0, ytop, x1, ybot))
            i += 5
        else:
            i += 1
    return staves


def detect_barlines(ink: np.ndarray, staff: tuple[float, float, float, float]) -> list[float]:
    """x positions of barlines in a staff: thin columns dark over the whole staff height.

    Approximate: stems spanning the staff, or double bars, can be mistaken; the result is
    cleaned (gaps under 2.5 staff-spaces dropped).
    """
    x0, ytop, x1, ybot = staff
    band = ink[int(round(ytop)):int(round(ybot)) + 1, int(x0):int(x1) + 1] > 110
    if band.size == 0:
        return []
    full = band.mean(axis=0) > 0.95
    xs = np.flatnonzero(full)
    if xs.size == 0:
        return []
    runs = np.split(xs, np.flatnonzero(np.diff(xs) > 1) + 1)
    space = (ybot - ytop) / 4
    bars = [float(r.mean()) + x0 for r in runs if r.size <= max(3, 0.5 * space)]
    out: list[float] = []
    for b in bars:
        if not out or b - out[-1] > 2.5 * space:
            out.append(b)
    return out


def scan_strips(pages: list[np.ndarray], *, staff_px: int = STAFF_PX
                ) -> tuple[list[Strip], list[dict[str, Any]]]:
    """Strips and bar boxes of scanned pages (bars numbered across pages in reading order)."""
    strips: list[Strip] = []
    page_info: list[dict[str, Any]] = []
    bar = 1
    for pno, ink in enumerate(pages, start=1):
        staves = detect_staves(ink)
        bars_info = []
        # group staves into systems: staves joined by a left barline/brace column are one system;
        # approximate: consecutive staves closer than 2 staff heights
        systems: list[list[tuple[float, float, float, float]]] = []
        for st in staves:
            h = st[3] - st[1]
            if systems and st[1] - systems[-1][-1][3] < 1.6 * h and len(systems[-1]) < 4:
                systems[-1].append(st)
            else:
                systems.append([st])
        for system in systems:
            xs = detect_barlines(ink, system[0])
            x0, x1 = system[0][0], system[0][2]
            edges = [x0] + [x for x in xs if x0 + 8 < x < x1 - 8] + [x1]
            spans = [(edges[i], edges[i + 1]) for i in range(len(edges) - 1) if edges[i + 1] - edges[i] > 5]
            if not spans:
                spans = [(x0, x1)]
            first_bar = bar
            for a, b in spans:
                bars_info.append({"bar": bar, "x0": a, "x1": b, "y0": system[0][1], "y1": system[-1][3]})
                bar += 1
            for si, st in enumerate(system):
                scale = staff_px / max(1e-6, st[3] - st[1])
                crop = _cut(ink, (st[1] + st[3]) / 2, x0 - 4, x1 + 4, scale)
                sbars = [((a - x0 + 4) * scale, (b - x0 + 4) * scale, first_bar + k)
                         for k, (a, b) in enumerate(spans)]
                strips.append(Strip(ink=crop, page=pno, box=(x0, st[1], x1, st[3]), bars=sbars, staff=si))
        page_info.append({"page": pno, "width": int(ink.shape[1]), "height": int(ink.shape[0]),
                          "bars": bars_info})
    return strips, page_info


def windows(strip: Strip, *, stride: int = 48) -> list[tuple[np.ndarray, float]]:
    """Snippets of one strip: (ink window of SNIPPET_W px, centre x), zero padded at the ends."""
    w = strip.ink.shape[1]
    half = SNIPPET_W // 2
    centres = list(np.arange(half * 0.5, max(half * 0.5 + 1, w - half * 0.5), stride))
    out = []
    padded = np.pad(strip.ink, ((0, 0), (half, half)))
    for c in centres:
        a = int(round(c))
        out.append((padded[:, a:a + SNIPPET_W], float(c)))
    return out
