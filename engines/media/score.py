"""Engrave scores (MusicXML, MXL, MEI, ABC, Humdrum, MIDI) to SVG with verovio.

verovio segfaults or aborts on some malformed files, and an MXL zip bomb can eat gigabytes,
so every engraving runs in a child process with time and memory limits
(:func:`engines.media.safe.run_isolated`). Before that, in this process: XML that declares
entities is refused, MXL archives are checked against their uncompressed size, and sizes are
bounded.
"""

from __future__ import annotations

import io
import os
import re
import zipfile
from dataclasses import dataclass, field
from typing import Any

from engines.core.errors import (
    CorruptFileError,
    ParameterError,
    ResourceLimitError,
    UnsupportedFormatError,
)
from engines.media.safe import run_isolated

__all__ = [
    "MAX_MIDI_BYTES",
    "MAX_SCORE_BYTES",
    "SCORE_EXTENSIONS",
    "Engraving",
    "ScorePayload",
    "detect_score_format",
    "engrave",
    "midi_to_musicxml",
    "read_score",
    "svg_to_png",
]

SCORE_EXTENSIONS: dict[str, str] = {
    ".xml": "musicxml", ".musicxml": "musicxml", ".mxl": "mxl", ".mei": "mei", ".abc": "abc",
    ".krn": "humdrum", ".hmd": "humdrum", ".mid": "midi", ".midi": "midi",
}
#: score files (and uncompressed MXL contents) larger than this are refused
MAX_SCORE_BYTES = 64 * 2**20
MAX_MIDI_BYTES = 4 * 2**20
MAX_ZIP_ENTRIES = 1000
_FORMATS = ("musicxml", "mxl", "mei", "abc", "humdrum", "midi")
_ENTITY = re.compile(r"<!ENTITY", re.IGNORECASE)
_DOCTYPE_SUBSET = re.compile(r"<!DOCTYPE[^>\[]*\[", re.IGNORECASE)


@dataclass
class Engraving:
    """An engraved score.

    Attributes
    ----------
    pages : list of str
        One SVG document per page.
    timemap : list of dict
        verovio's ``renderToTimemap`` entries (``tstamp`` in ms, ``qstamp`` in quarter notes,
        ``on``/``off`` note ids, ``measureOn``, ``tempo``).
    measures : list of dict
        In score order: ``{"page": 1-based page, "measure_index": 0-based, "onset_ms": float,
        "id": verovio's element id}``.
    title : str
        From the file's metadata, else empty.
    format : str
        The input format that was engraved.
    """

    pages: list[str]
    timemap: list[dict[str, Any]] = field(default_factory=list)
    measures: list[dict[str, Any]] = field(default_factory=list)
    title: str = ""
    format: str = ""

    @property
    def page_of_measure(self) -> list[int]:
        """1-based page of each measure (index = measure_index)."""
        return [m["page"] for m in self.measures]


# --------------------------------------------------------------------------- input checks

def detect_score_format(data: bytes, *, suffix: str = "") -> str:
    """Name the score format from a suffix or, failing that, the content."""
    fmt = SCORE_EXTENSIONS.get(suffix.lower(), "")
    if fmt:
        return fmt
    head = data[:4096]
    if head[:4] == b"PK\x03\x04":
        return "mxl"
    if head[:4] == b"MThd":
        return "midi"
    text = head.decode("utf-8", "replace").lstrip("\ufeff \r\n\t")
    if text.startswith("<"):
        if "<mei" in text:
            return "mei"
        if "score-partwise" in text or "score-timewise" in text:
            return "musicxml"
        return "musicxml"
    if text.startswith("**") or text.startswith("!!"):
        return "humdrum"
    if re.search(r"^X:\s*\d", text, re.MULTILINE) or re.search(r"^K:", text, re.MULTILINE):
        return "abc"
    return ""


def _decode_text(data: bytes, fmt: str, path: Any) -> str:
    if data.startswith(b"\xff\xfe") or data.startswith(b"\xfe\xff"):
        encoding = "utf-16"
    else:
        encoding = "utf-8-sig"
    try:
        return data.decode(encoding)
    except UnicodeDecodeError:
        if fmt in ("abc", "humdrum"):
            return data.decode("latin-1")
        m = re.match(rb"<\?xml[^>]*encoding=[\"']([A-Za-z0-9_.-]+)", data[:200])
        if m:
            try:
                return data.decode(m.group(1).decode("ascii"))
            except (LookupError, UnicodeDecodeError):
                pass
        raise CorruptFileError(f"the {fmt} text is not valid UTF-8", path=path) from None


def _refuse_entities(text: str, path: Any) -> None:
    """Refuse XML with entity declarations (external entities read files; nested ones explode)."""
    head = text[:200_000]
    m = _ENTITY.search(head)
    if m:
        decl = head[m.start():m.start() + 120].split(">")[0]
        external = " SYSTEM " in decl.upper() or " PUBLIC " in decl.upper()
        raise UnsupportedFormatError(
            "refused: the XML declares "
            + ("an external entity (it could read other files)" if external else "entities (a possible entity bomb)")
            + f": {decl.strip()[:80]}>", path=path,
        )
    if _DOCTYPE_SUBSET.search(head) and "<!ENTITY" in text.upper():
        raise UnsupportedFormatError("refused: the XML declares entities", path=path)


def _read_mxl(data: bytes, path: Any) -> str:
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise CorruptFileError("corrupt MXL: not a valid ZIP archive", path=path) from None
    with zf:
        infos = zf.infolist()
        if len(infos) > MAX_ZIP_ENTRIES:
            raise ResourceLimitError(f"the MXL archive holds {len(infos)} files", path=path)
        total = sum(i.file_size for i in infos)
        if total > MAX_SCORE_BYTES * 4:
            raise ResourceLimitError(
                f"the MXL archive unpacks to {total / 2**20:.0f} MB; a zip bomb? (limit "
                f"{MAX_SCORE_BYTES * 4 // 2**20} MB)", path=path,
            )
        names = {i.filename: i for i in infos}
        root = ""
        if "META-INF/container.xml" in names and names["META-INF/container.xml"].file_size < 2**20:
            container = zf.read("META-INF/container.xml").decode("utf-8", "replace")
            _refuse_entities(container, path)
            m = re.search(r"full-path\s*=\s*[\"']([^\"']+)[\"']", container)
            if m:
                root = m.group(1)
        if root not in names:
            candidates = [n for n in names if n.lower().endswith((".xml", ".musicxml"))
                          and not n.startswith("META-INF/")]
            if not candidates:
                raise CorruptFileError("corrupt MXL: no MusicXML file inside", path=path)
            root = candidates[0]
        info = names[root]
        if info.file_size > MAX_SCORE_BYTES:
            raise ResourceLimitError(
                f"the MusicXML inside the MXL is {info.file_size / 2**20:.0f} MB", path=path,
            )
        try:
            with zf.open(info) as fh:
                raw = fh.read(MAX_SCORE_BYTES + 1)  # never trust the declared size
        except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError) as exc:
            raise CorruptFileError(f"corrupt MXL: {exc}", path=path) from None
        if len(raw) > MAX_SCORE_BYTES:
            raise ResourceLimitError("the MusicXML inside the MXL is too large", path=path)
    return _decode_text(raw, "musicxml", path)


# --------------------------------------------------------------------------- child side

def midi_to_musicxml(data: bytes) -> str:
    """MusicXML text of a MIDI file (music21's quantisation).

    Parses untrusted data: call it in an isolated child (as :func:`engrave` does).
    """
    import music21

    score = music21.converter.parse(data, format="midi", forceSource=True)
    from music21.musicxml.m21ToXml import GeneralObjectExporter

    return GeneralObjectExporter(score).parse().decode("utf-8")


def verovio_pages(text: str | bytes, fmt: str, options: dict[str, Any], label: str) -> tuple[Any, list[str]]:
    """Load a checked score (:func:`read_score`'s payload) into a verovio toolkit and engrave it.

    MIDI is converted to MusicXML first. Returns the toolkit (for the timemap, MIDI and MEI) and
    one SVG per page. Parses untrusted data: call it in an isolated child.
    """
    import verovio

    if fmt == "midi":
        try:
            text = midi_to_musicxml(bytes(text) if isinstance(text, (bytes, bytearray)) else text.encode())
        except Exception as exc:
            raise CorruptFileError(f"the MIDI file cannot be converted to notation ({exc})",
                                   path=label) from None
        fmt = "musicxml"
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode("utf-8", "replace")
    verovio.enableLog(verovio.LOG_OFF)
    tk = verovio.toolkit()
    tk.setOptions({"inputFrom": fmt, **options})
    if not tk.loadData(text):
        raise CorruptFileError(f"verovio could not read this {fmt} score", path=label)
    n_pages = tk.getPageCount()
    if n_pages < 1:
        raise CorruptFileError("the score has no pages (no music in it?)", path=label)
    return tk, [tk.renderToSVG(i) for i in range(1, n_pages + 1)]


def _engrave_child(text: str | bytes, fmt: str, options: dict[str, Any], label: str) -> dict[str, Any]:
    """Engrave in the child process; returns plain data."""
    tk, pages = verovio_pages(text, fmt, options, label)
    fmt = "musicxml" if fmt == "midi" else fmt
    try:
        timemap = tk.renderToTimemap({"includeMeasures": True, "includeRests": True})
    except Exception:
        timemap = []
    measures: list[dict[str, Any]] = []
    seen: set[str] = set()
    for entry in timemap:
        mid = entry.get("measureOn")
        if mid and mid not in seen:
            seen.add(mid)
            measures.append({"id": mid, "onset_ms": float(entry.get("tstamp", 0.0))})
    if not measures and not timemap:
        raise CorruptFileError(f"no music could be read from this {fmt} score", path=label)
    for i, m in enumerate(measures):
        m["measure_index"] = i
        try:
            m["page"] = int(tk.getPageWithElement(m["id"])) or 1
        except Exception:
            m["page"] = 1
    title = ""
    try:
        mei = tk.getMEI({"pageNo": 0})
        found = re.search(r"<titleStmt[^>]*>.*?<title[^>]*>(.*?)</title>", mei, re.DOTALL)
        if found:
            title = re.sub(r"<[^>]+>", "", found.group(1)).strip()
    except Exception:
        title = ""
    return {"pages": pages, "timemap": list(timemap), "measures": measures, "title": title,
            "format": fmt}


# --------------------------------------------------------------------------- public

@dataclass(frozen=True)
class ScorePayload:
    """A score file checked and ready for verovio (see :func:`read_score`).

    Attributes
    ----------
    payload : str or bytes
        The score text (MusicXML for an MXL archive), or the raw bytes of a MIDI file.
    format : {"musicxml", "mei", "abc", "humdrum", "midi"}
    label : str
        The path (or ``"<score data>"``) to name in errors.
    """

    payload: str | bytes
    format: str
    label: str


def read_score(path_or_data: str | os.PathLike[str] | bytes, *, fmt: str | None = None) -> ScorePayload:
    """Read a score and make every check that needs no parser, in this process.

    Sizes are bounded; MXL archives are checked against their uncompressed size before they are
    unpacked; text is decoded; XML that declares entities (external entities could read other
    files, nested ones explode) is refused and never resolved; a MIDI file must start with
    ``MThd``. The payload still has to be parsed in an isolated child (verovio, music21).

    Parameters
    ----------
    path_or_data : path, str or bytes
        As :func:`engrave`.
    fmt : {"musicxml", "mxl", "mei", "abc", "humdrum", "midi"}, optional
        Default: from the suffix, else sniffed from the content.

    Raises
    ------
    NotFoundError, UnsupportedFormatError, CorruptFileError, ResourceLimitError
    """
    from engines.media._files import _existing_file

    label: str
    suffix = ""
    if isinstance(path_or_data, (bytes, bytearray)):
        data = bytes(path_or_data)
        label = "<score data>"
    elif isinstance(path_or_data, str) and ("\n" in path_or_data or path_or_data.lstrip().startswith("<")):
        data = path_or_data.encode("utf-8")
        label = "<score data>"
    else:
        p = _existing_file(path_or_data)
        size = p.stat().st_size
        if size > MAX_SCORE_BYTES:
            raise ResourceLimitError(
                f"the score file is {size / 2**20:.0f} MB (limit {MAX_SCORE_BYTES // 2**20} MB)", path=p,
            )
        data = p.read_bytes()
        label = str(p)
        suffix = p.suffix
    if len(data) > MAX_SCORE_BYTES:
        raise ResourceLimitError("the score is too large", path=label)
    if not data.strip():
        raise CorruptFileError("empty score", path=label)
    fmt = (fmt or detect_score_format(data, suffix=suffix)).lower()
    if fmt == "xml":
        fmt = "musicxml"
    if fmt not in _FORMATS:
        raise UnsupportedFormatError(
            "not a score file this app reads (MusicXML, MXL, MEI, ABC, Humdrum, MIDI)"
            + (f"; unknown format {fmt!r}" if fmt else ""), path=label,
        )

    payload: str | bytes
    if fmt == "mxl":
        payload = _read_mxl(data, label)
        fmt = "musicxml"
    elif fmt == "midi":
        if data[:4] != b"MThd":
            raise UnsupportedFormatError("not a MIDI file (no 'MThd' header)", path=label)
        if len(data) > MAX_MIDI_BYTES:
            raise ResourceLimitError(
                f"MIDI files over {MAX_MIDI_BYTES // 2**20} MB are not engraved", path=label,
            )
        payload = data
    else:
        payload = _decode_text(data, fmt, label)
    if fmt in ("musicxml", "mei"):
        assert isinstance(payload, str)
        stripped = payload.lstrip("\ufeff \r\n\t")
        if not stripped.startswith("<"):
            raise UnsupportedFormatError(f"not {fmt.upper()}: the file is not XML", path=label)
        _refuse_entities(payload, label)
    return ScorePayload(payload, fmt, label)


def engrave(
    path_or_data: str | os.PathLike[str] | bytes,
    *,
    fmt: str | None = None,
    page_width: int = 2100,
    scale: int = 40,
    options: dict[str, Any] | None = None,
    timeout: float = 60.0,
    memory_mb: int = 2048,
) -> Engraving:
    """Engrave a score to SVG pages with a time map.

    Parameters
    ----------
    path_or_data : path, str or bytes
        A file, or the score itself: ``bytes``, or a ``str`` holding a newline or
        starting with ``<`` (a ``str`` otherwise is a path).
    fmt : {"musicxml", "mxl", "mei", "abc", "humdrum", "midi"}, optional
        Default: from the suffix, else sniffed from the content.
    page_width : int
        verovio page width (its units: 1/10 mm at scale 100).
    scale : int
        Percent.
    options : dict, optional
        Further verovio options (they win over the above).
    timeout : float
        Seconds the engraving may take.
    memory_mb : int
        Memory the engraving process may use beyond its start-up size.

    Returns
    -------
    Engraving

    Raises
    ------
    NotFoundError
    UnsupportedFormatError
        Unknown format, or XML that declares entities.
    CorruptFileError
        verovio cannot read it or crashed on it.
    ResourceLimitError
        Too large, a zip bomb, too slow or too much memory.
    """
    score = read_score(path_or_data, fmt=fmt)
    payload, fmt, label = score.payload, score.format, score.label
    if page_width < 100 or not 1 <= scale <= 1000:
        raise ParameterError(f"impossible page_width {page_width} or scale {scale}", path=label)

    opts: dict[str, Any] = {
        "pageWidth": int(page_width), "scale": int(scale), "adjustPageHeight": True,
        "footer": "none", "breaks": "auto",
    }
    opts.update(options or {})
    out = run_isolated(
        _engrave_child, payload, fmt, opts, label,
        timeout=timeout + (30.0 if fmt == "midi" else 0.0), memory_mb=memory_mb,
        path_for_errors=label,
    )
    return Engraving(pages=out["pages"], timemap=out["timemap"], measures=out["measures"],
                     title=out["title"], format=out["format"])


def svg_to_png(svg: str, *, width: int | None = None) -> bytes:
    """Rasterise an SVG (for example an engraved page) to PNG bytes on white.

    Parameters
    ----------
    svg : str
    width : int, optional
        Output width in pixels (height follows the aspect ratio); default the SVG's size.
    """
    import cairosvg

    if width is not None and not 1 <= width <= 16384:
        raise ParameterError(f"PNG width must be 1..16384 px, not {width}")
    try:
        return cairosvg.svg2png(bytestring=svg.encode("utf-8"), output_width=width,
                                background_color="white")
    except Exception as exc:
        raise CorruptFileError(f"the SVG cannot be rendered ({exc})") from None
