"""The Sheet Music workspace: which score, page and bar is this recording playing? Follow it.

Commands: ``sheet.list`` / ``add`` / ``remove`` (the scores panel), ``sheet.find`` (ranked
scores with page and bar), ``sheet.pages`` (a score's page images and bar boxes),
``sheet.align`` (one point per bar: time, page, bar) and ``sheet.export-alignment``
(CSV/JSON). Without page images (a score file outside the library) the page and bar are shown
as text.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QDragEnterEvent, QDropEvent, QPainter, QPaintEvent, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engines.core.registry import Registry, Result
from studio.dragdrop import paths_from_mime
from studio.jobs import Job, JobClient
from studio.state import GuiState
from studio.widgets.player import Player
from studio.widgets.sources import SourcesPanel, SourcesSpec

SCORE_EXTENSIONS = (".musicxml", ".xml", ".mxl", ".mei", ".abc", ".krn", ".mid", ".midi", ".pdf", ".png",
                    ".jpg", ".jpeg")
SCORE_FILTER = ("Scores (*.musicxml *.xml *.mxl *.mei *.abc *.krn *.mid *.midi *.pdf *.png *.jpg *.jpeg);;"
                "All files (*)")
AUDIO_FILTER = "Audio (*.wav *.flac *.mp3 *.ogg *.aiff *.aif *.m4a);;All files (*)"


def is_score_path(path: str) -> bool:
    p = Path(path)
    return p.is_dir() or p.suffix.lower() in SCORE_EXTENSIONS


def _score_rows(data: Any) -> list[dict[str, Any]]:
    return list(data) if isinstance(data, list) else []


def _score_label(s: dict[str, Any]) -> tuple[str, str]:
    pages, bars = s.get("pages") or 0, s.get("bars") or 0
    return (f"{s.get('title') or Path(str(s.get('path', ''))).stem}\n"
            f"{s.get('format', '')} · {pages} page{'s' if pages != 1 else ''} · {bars} bars", str(s.get("path") or ""))


def fmt_time(seconds: float) -> str:
    s = max(0.0, float(seconds))
    return f"{int(s // 60)}:{s % 60:05.2f}"


class PageView(QWidget):
    """One page image with the current bar's box highlighted; scaled to the view's width."""

    barClicked = Signal(int)  # bar number

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.pixmap = QPixmap()
        self.boxes: list[dict[str, Any]] = []  # {"bar", x0, y0, x1, y1} in pixmap pixels
        self.bar: int | None = None
        self.placeholder = "Open a result to see its page"
        self.setMinimumSize(200, 200)

    def set_page(self, pixmap: QPixmap, boxes: list[dict[str, Any]]) -> None:
        self.pixmap = pixmap
        self.boxes = boxes
        self.update()

    def clear(self, placeholder: str) -> None:
        self.pixmap = QPixmap()
        self.boxes = []
        self.placeholder = placeholder
        self.update()

    def set_bar(self, bar: int | None) -> QRectF | None:
        self.bar = bar
        self.update()
        return self.box_rect(bar)

    def _scale(self) -> float:
        if self.pixmap.isNull():
            return 1.0
        return max(0.05, self.width() / max(1, self.pixmap.width()))

    def box_rect(self, bar: int | None) -> QRectF | None:
        s = self._scale()
        for b in self.boxes:
            if b.get("bar") == bar:
                return QRectF(b["x0"] * s, b["y0"] * s, (b["x1"] - b["x0"]) * s, (b["y1"] - b["y0"]) * s)
        return None

    def sizeHint(self) -> QSize:
        return QSize(600, 800)

    def mousePressEvent(self, event: Any) -> None:
        s = self._scale()
        pos = event.position()
        for b in self.boxes:
            if b["x0"] * s <= pos.x() <= b["x1"] * s and b["y0"] * s <= pos.y() <= b["y1"] * s:
                self.barClicked.emit(int(b["bar"]))
                return
        super().mousePressEvent(event)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: ARG002
        p = QPainter(self)
        p.fillRect(self.rect(), QColor("white") if not self.pixmap.isNull() else self.palette().base().color())
        if self.pixmap.isNull():
            p.setPen(self.palette().color(self.palette().ColorGroup.Disabled, self.palette().ColorRole.Text))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self.placeholder)
            p.end()
            return
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        p.drawPixmap(self.rect(), self.pixmap)
        box = self.box_rect(self.bar)
        if box is not None:
            p.setRenderHint(QPainter.RenderHint.Antialiasing)
            p.setPen(QColor(230, 120, 20))
            p.setBrush(QColor(255, 170, 40, 70))
            p.drawRoundedRect(box.adjusted(-2, -2, 2, 2), 4, 4)
        p.end()


class SheetWorkspace(QWidget):
    """Scores on the left; a recording, its matches, the page and the alignment on the right."""

    statusMessage = Signal(str)
    scoresLoaded = Signal(int)
    resultsShown = Signal(int)
    alignmentShown = Signal(int)  # number of points

    def __init__(self, client: JobClient, registry: Registry, state: GuiState,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.client = client
        self.registry = registry
        self.state = state
        self.recording = ""
        self.results: list[dict[str, Any]] = []
        self.opened: dict[str, Any] | None = None  # the result whose alignment is shown
        self.points: list[dict[str, Any]] = []
        self.geometry: dict[str, Any] | None = None  # the sheet.pages result of the opened score
        self.page: int | None = None
        self.current: int = -1  # index into points
        self.find_job: Job | None = None
        self.align_job: Job | None = None
        self.export_job: Job | None = None
        self.pages_job: Job | None = None
        self._pixmaps: dict[str, QPixmap] = {}
        self.setAcceptDrops(True)

        root = QHBoxLayout(self)
        root.setContentsMargins(8, 8, 8, 8)
        split = QSplitter(Qt.Orientation.Horizontal)
        root.addWidget(split)

        # scores (the shared sources panel) -----------------------------------------------
        self.scores_panel = SourcesPanel(client, registry, SourcesSpec(
            title="Your scores", hint="MusicXML, MEI, ABC, MIDI, or scanned PDF/PNG pages. Drop them here.",
            list_command="sheet.list", add_command="sheet.add", remove_command="sheet.remove",
            object_name="sheetScores", rows=_score_rows, label=_score_label,
            note=lambda _d, rows: "" if rows else "No scores yet: add MusicXML files or scanned pages.",
            id_key="score_id", remove_param="score_id", files_caption="Add scores", file_filter=SCORE_FILTER,
            folder_caption="Add a folder of scores", list_title="List the sheet library", add_title="Add scores",
            what="scores"))
        self.scores_box = self.scores_panel
        self.score_list = self.scores_panel.list
        self.scores_panel.loaded.connect(self.scoresLoaded)
        self.scores_panel.statusMessage.connect(self.statusMessage)
        self.scores_panel.errorMessage.connect(self.show_error)
        split.addWidget(self.scores_panel)

        # recording + results -------------------------------------------------------------
        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(4, 0, 0, 0)
        rec = QHBoxLayout()
        self.rec_label = QLabel("Drop a recording here (or Open…) to find the score, page and bar it plays.")
        self.rec_label.setWordWrap(True)
        self.open_button = QPushButton("Open…")
        self.open_button.clicked.connect(self._ask_recording)
        self.find_button = QPushButton("Find the score")
        self.find_button.setObjectName("sheetFind")
        self.find_button.clicked.connect(lambda: self.find())
        rec.addWidget(self.rec_label, 1)
        rec.addWidget(self.open_button)
        rec.addWidget(self.find_button)
        rl.addLayout(rec)
        self.error_label = QLabel()
        self.error_label.setObjectName("sheetError")
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet("color: #e0554d;")
        self.error_label.hide()
        rl.addWidget(self.error_label)

        self.result_table = QTableWidget(0, 5)
        self.result_table.setObjectName("sheetResults")
        self.result_table.setHorizontalHeaderLabels(["Score", "Page", "Bar", "Confidence", "Method"])
        self.result_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.result_table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.result_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.result_table.verticalHeader().hide()
        self.result_table.setAlternatingRowColors(True)
        self.result_table.setShowGrid(False)
        rh = self.result_table.horizontalHeader()
        rh.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col, w in ((1, 50), (2, 50), (3, 90), (4, 80)):
            self.result_table.setColumnWidth(col, w)
        self.result_table.setMaximumHeight(130)
        self.result_table.cellDoubleClicked.connect(lambda r, _c: self.open_result(r))
        self.result_table.setToolTip("Double-click a result to follow the recording in its score")
        rl.addWidget(self.result_table)

        follow_bar = QHBoxLayout()
        self.open_result_button = QPushButton("Open && follow")
        self.open_result_button.clicked.connect(lambda: self.open_result(self.result_table.currentRow()))
        self.play_button = QPushButton("▶  Play")
        self.play_button.clicked.connect(lambda: self.player.toggle())
        self.position_label = QLabel("")
        self.position_label.setObjectName("sheetPosition")
        font = self.position_label.font()
        font.setPointSizeF(font.pointSizeF() * 1.5)
        font.setBold(True)
        self.position_label.setFont(font)
        self.export_csv_button = QPushButton("Export CSV…")
        self.export_csv_button.clicked.connect(lambda: self._ask_export(".csv"))
        self.export_json_button = QPushButton("Export JSON…")
        self.export_json_button.clicked.connect(lambda: self._ask_export(".json"))
        follow_bar.addWidget(self.open_result_button)
        follow_bar.addWidget(self.play_button)
        follow_bar.addWidget(self.position_label, 1)
        follow_bar.addWidget(self.export_csv_button)
        follow_bar.addWidget(self.export_json_button)
        rl.addLayout(follow_bar)

        lower = QSplitter(Qt.Orientation.Horizontal)
        self.page_view = PageView()
        self.page_view.setObjectName("sheetPage")
        self.page_view.barClicked.connect(self.seek_bar)
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(False)
        self.scroll.setWidget(self.page_view)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        lower.addWidget(self.scroll)
        self.align_table = QTableWidget(0, 3)
        self.align_table.setObjectName("sheetAlignment")
        self.align_table.setHorizontalHeaderLabels(["Time", "Page", "Bar"])
        self.align_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.align_table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.align_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.align_table.verticalHeader().hide()
        self.align_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.align_table.cellClicked.connect(lambda r, _c: self.seek_point(r))
        self.align_table.setToolTip("Click a bar to move the recording there")
        lower.addWidget(self.align_table)
        lower.setStretchFactor(0, 3)
        lower.setStretchFactor(1, 1)
        lower.setSizes([620, 220])
        rl.addWidget(lower, 1)
        split.addWidget(right)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 3)
        split.setSizes([260, 860])

        self.player = Player(self)
        self.player.notice.connect(self.statusMessage)
        self.player.stateChanged.connect(lambda playing: self.play_button.setText("■  Stop" if playing else "▶  Play"))
        self.player.positionChanged.connect(self.follow)

        self._update_buttons()
        self.reload_scores()

    # helpers -----------------------------------------------------------------------------
    def show_error(self, text: str) -> None:
        self.error_label.setText(text)
        self.error_label.setVisible(bool(text))

    def _failed(self, what: str) -> Any:
        def report(err: dict[str, Any]) -> None:
            if err.get("kind") != "cancelled":
                self.show_error(f"{what}: {err.get('message') or err.get('kind')}")
        return report

    def _update_buttons(self) -> None:
        self.find_button.setEnabled(bool(self.recording) and (self.find_job is None or self.find_job.done))
        self.open_result_button.setEnabled(bool(self.results))
        self.play_button.setEnabled(bool(self.recording))
        has_alignment = bool(self.points) and "sheet.export-alignment" in self.registry
        self.export_csv_button.setEnabled(has_alignment)
        self.export_json_button.setEnabled(has_alignment)

    # scores panel ----------------------------------------------------------------------------
    @property
    def scores(self) -> list[dict[str, Any]]:
        return self.scores_panel.rows

    @property
    def list_job(self) -> Job | None:
        return self.scores_panel.list_job

    def reload_scores(self) -> Job | None:
        return self.scores_panel.reload()

    def add_scores(self, paths: list[str]) -> Job | None:
        return self.scores_panel.add(paths)

    def remove_selected(self) -> None:
        self.scores_panel.remove_selected()

    # drops -----------------------------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if paths_from_mime(event.mimeData()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        self.handle_dropped(paths_from_mime(event.mimeData()))
        event.acceptProposedAction()

    def handle_dropped(self, paths: list[str]) -> None:
        """Scores (and folders) are added to the library; an audio file becomes the recording."""
        scores = [p for p in paths if is_score_path(p)]
        recordings = [p for p in paths if p not in scores and Path(p).is_file()]
        if scores:
            self.add_scores(scores)
        if recordings:
            self.set_recording(recordings[0])

    # recording + find ------------------------------------------------------------------------
    def _ask_recording(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a recording", "", AUDIO_FILTER)
        if path:
            self.set_recording(path)

    def set_recording(self, path: str) -> None:
        self.recording = str(path)
        self.rec_label.setText(f"<b>{_esc(Path(path).name)}</b> &nbsp;<span style='color:gray'>"
                               f"{_esc(Path(path).parent)}</span>")
        self.rec_label.setToolTip(str(path))
        self.player.load(self.recording)
        self.show_error("")
        self._update_buttons()

    def find(self) -> Job | None:
        if not self.recording:
            self.show_error("Drop a recording first (or Open…).")
            return None
        self.show_error("")
        self.result_table.setRowCount(0)
        self.find_button.setText("Listening…")
        job = self.client.submit("sheet.find", {"audio": self.recording},
                                 title=f"Find the score of {Path(self.recording).name}")
        self.find_job = job
        job.finished.connect(lambda r, j=job: self._on_found(j, r))
        job.failed.connect(self._failed("Could not find the score"))
        job.changed.connect(lambda j=job: (self.find_button.setText("Find the score"), self._update_buttons())
                            if j.done else None)
        self._update_buttons()
        return job

    def _on_found(self, job: Job, result: Result) -> None:
        if job is not self.find_job:
            return
        self.results = [r for r in (result.data if isinstance(result.data, list) else []) if isinstance(r, dict)]
        self.result_table.setRowCount(len(self.results))
        for i, r in enumerate(self.results):
            score = r.get("score")
            cells = [str(r.get("title") or Path(str(r.get("path", ""))).stem), str(r.get("page", "")),
                     str(r.get("bar", "")), f"{float(score):.0%}" if isinstance(score, int | float) else "",
                     str(r.get("method") or "")]
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if c in (1, 2, 3):
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                item.setToolTip(str(r.get("path") or ""))
                self.result_table.setItem(i, c, item)
        if self.results:
            self.result_table.selectRow(0)
        else:
            self.show_error("No score in your library matches this recording.")
        self._update_buttons()
        self.resultsShown.emit(len(self.results))
        self.statusMessage.emit(result.message or f"{len(self.results)} result(s)")

    # alignment + following -----------------------------------------------------------------------
    def open_result(self, row: int) -> Job | None:
        if not 0 <= row < len(self.results):
            return None
        r = self.results[row]
        self.opened = r
        self.points = []
        self.align_table.setRowCount(0)
        self.geometry = None
        self.page = None
        self.show_point_text(int(r.get("page") or 1), int(r.get("bar") or 1), prefix="Found at ")
        self.show_page(int(r.get("page") or 1), int(r.get("bar") or 1))
        self.load_pages(r.get("score_id"))
        score = str(r.get("score_id") if r.get("score_id") is not None else r.get("path"))
        job = self.client.submit("sheet.align", {"audio": self.recording, "score": score},
                                 title=f"Align with {r.get('title')}")
        self.align_job = job
        job.finished.connect(lambda res, j=job: self._on_aligned(j, res))
        job.failed.connect(self._failed("Could not align the recording with the score"))
        return job

    def _on_aligned(self, job: Job, result: Result) -> None:
        if job is not self.align_job:
            return
        data = result.data if isinstance(result.data, dict) else {}
        self.points = [p for p in data.get("points") or [] if isinstance(p, dict)]
        self.align_table.setRowCount(len(self.points))
        for i, p in enumerate(self.points):
            for c, text in enumerate((fmt_time(float(p.get("time_s", 0.0))), str(p.get("page", "")),
                                      str(p.get("bar", "")))):
                item = QTableWidgetItem(text)
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.align_table.setItem(i, c, item)
        self.current = -1
        self._update_buttons()
        self.alignmentShown.emit(len(self.points))
        self.statusMessage.emit(result.message or f"{len(self.points)} bars aligned")
        self.follow(0.0)

    def point_at(self, seconds: float) -> int:
        """Index of the last alignment point at or before ``seconds`` (0 before the first)."""
        idx = 0
        for i, p in enumerate(self.points):
            if float(p.get("time_s", 0.0)) <= seconds + 1e-6:
                idx = i
            else:
                break
        return idx if self.points else -1

    def follow(self, seconds: float) -> None:
        """The player moved: show the page and bar the recording is at."""
        i = self.point_at(seconds)
        if i < 0 or i == self.current:
            return
        self.current = i
        p = self.points[i]
        page, bar = int(p.get("page") or 1), int(p.get("bar") or 1)
        self.show_point_text(page, bar)
        self.show_page(page, bar)
        self.align_table.blockSignals(True)
        self.align_table.selectRow(i)
        self.align_table.scrollToItem(self.align_table.item(i, 0))
        self.align_table.blockSignals(False)

    def seek_point(self, row: int) -> None:
        if 0 <= row < len(self.points):
            t = float(self.points[row].get("time_s", 0.0))
            self.player.seek(t)
            self.follow(t)

    def seek_bar(self, bar: int) -> None:
        for i, p in enumerate(self.points):
            if int(p.get("bar") or 0) == bar and int(p.get("page") or 0) == (self.page or 0):
                self.seek_point(i)
                return

    def show_point_text(self, page: int, bar: int, prefix: str = "") -> None:
        bars_on_page = self._bars_on_page(page)
        extra = f" (bars {bars_on_page[0]}–{bars_on_page[-1]})" if bars_on_page else ""
        self.position_label.setText(f"{prefix}Bar {bar} · page {page}{extra}")

    def _bars_on_page(self, page: int) -> list[int]:
        info = self._page_info(page)
        return sorted(int(b["bar"]) for b in info.get("bars", [])) if info else []

    # pages -------------------------------------------------------------------------------------------
    def load_pages(self, score_id: Any) -> Job | None:
        """Ask the engine for the opened score's page images and bar boxes (``sheet.pages``)."""
        if score_id is None or "sheet.pages" not in self.registry:
            self.pages_job = None
            return None
        job = self.client.submit("sheet.pages", {"score_id": int(score_id)}, title="Load the score's pages",
                                 visible=False)
        self.pages_job = job
        job.finished.connect(lambda r, j=job: self._on_pages(j, r))
        job.failed.connect(self._failed("Could not show the score's pages"))
        return job

    def _on_pages(self, job: Job, result: Result) -> None:
        if job is not self.pages_job:
            return
        self.geometry = result.data if isinstance(result.data, dict) else None
        self._pixmaps.clear()  # the score may have been re-indexed since
        page, bar = self.page or 1, self.page_view.bar
        self.page = None  # redraw the page now that its image is known
        self.show_page(page, bar)
        self.show_point_text(page, bar or 1, prefix="" if self.points else "Found at ")

    def _page_info(self, page: int) -> dict[str, Any] | None:
        for info in (self.geometry or {}).get("pages", []):
            if isinstance(info, dict) and int(info.get("page", 0)) == page:
                return info
        return None

    def show_page(self, page: int, bar: int | None) -> None:
        info = self._page_info(page)
        if page != self.page:
            self.page = page
            pixmap = self._pixmap(info)
            if pixmap is None or pixmap.isNull():
                self.page_view.clear(f"Page {page}\n(no page image for this score)")
                self._fit_page()
            else:
                boxes = [{"bar": int(b["bar"]), "x0": float(b["x0"]), "y0": float(b["y0"]),
                          "x1": float(b["x1"]), "y1": float(b["y1"])} for b in (info or {}).get("bars", [])]
                self.page_view.set_page(pixmap, boxes)
                self._fit_page()
        box = self.page_view.set_bar(bar)
        if box is not None:
            self.scroll.ensureVisible(int(box.center().x()), int(box.center().y()), 20, int(box.height()))

    def _pixmap(self, info: dict[str, Any] | None) -> QPixmap | None:
        png = str((info or {}).get("png") or "")
        if not png:
            return None
        if png not in self._pixmaps:
            self._pixmaps[png] = QPixmap(png)
        return self._pixmaps[png]

    def _fit_page(self) -> None:
        width = max(200, self.scroll.viewport().width())
        pm = self.page_view.pixmap
        height = int(pm.height() * width / max(1, pm.width())) if not pm.isNull() else self.scroll.viewport().height()
        self.page_view.setFixedSize(width, max(1, height))

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        self._fit_page()

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        self._fit_page()

    # export ------------------------------------------------------------------------------------------
    def _ask_export(self, suffix: str) -> None:
        if not self.opened:
            return
        default = Path(self.client.home.exports) / f"{Path(self.recording).stem}_alignment{suffix}"
        path, _ = QFileDialog.getSaveFileName(self, "Export the alignment", str(default),
                                              "CSV (*.csv)" if suffix == ".csv" else "JSON (*.json)")
        if path:
            self.export_alignment(path)

    def export_alignment(self, out: str) -> Job | None:
        if not self.opened or "sheet.export-alignment" not in self.registry:
            return None
        r = self.opened
        score = str(r.get("score_id") if r.get("score_id") is not None else r.get("path"))
        job = self.client.submit("sheet.export-alignment", {"audio": self.recording, "score": score, "out": out},
                                 title=f"Export the alignment to {Path(out).name}")
        self.export_job = job
        job.finished.connect(lambda res: self.statusMessage.emit(res.message or f"wrote {out}"))
        job.failed.connect(self._failed("Could not export the alignment"))
        return job


def _esc(text: Any) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
