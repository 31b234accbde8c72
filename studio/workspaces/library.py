"""The Library workspace: the user's tracks, search, waveform, playback, drag out.

Everything it knows comes from commands run as jobs: ``library.list`` (whole table),
``library.search`` (ranked matches), ``library.show`` (waveform peaks, beats) and, on a
first run with an empty library, ``library.demo``.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QItemSelectionModel,
    QModelIndex,
    QPersistentModelIndex,
    QRectF,
    QSortFilterProxyModel,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QAction, QColor, QKeySequence, QPainter, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSplitter,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from engines.core.registry import Registry, Result
from studio.dragdrop import drag_files, mime_for_files
from studio.jobs import Job, JobClient
from studio.state import GuiState
from studio.widgets.player import Player
from studio.widgets.waveform import WaveformView

DEMO_BANNER = ("Demo library: 30 pieces rendered by Cue Studio from the music21 corpus — add your own music "
               "with File > Add folder or drop files here.")
DEMO_COUNT = 30

SORT_ROLE = Qt.ItemDataRole.UserRole + 10
ROW_ROLE = Qt.ItemDataRole.UserRole + 11

#: commands that only read the library (anything else in the group may change it)
READ_ONLY = {"library.list", "library.search", "library.show", "library.export", "library.stats"}

COLUMNS: list[tuple[str, str]] = [
    ("title", "Title"), ("artist", "Artist"), ("duration", "Length"), ("tempo", "BPM"),
    ("key", "Key"), ("energy", "Energy"), ("demo", ""), ("score", "Match"),
]
COL = {key: i for i, (key, _) in enumerate(COLUMNS)}


def fmt_duration(seconds: Any) -> str:
    try:
        s = int(round(float(seconds)))
    except (TypeError, ValueError):
        return ""
    return f"{s // 60}:{s % 60:02d}"


class TrackModel(QAbstractTableModel):
    """Rows are the dicts of ``library.list`` / ``library.search``."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.rows: list[dict[str, Any]] = []

    def set_rows(self, rows: list[dict[str, Any]]) -> None:
        self.beginResetModel()
        self.rows = [r for r in rows if isinstance(r, dict)]
        self.endResetModel()

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section][1]
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.ToolTipRole:
            return {"demo": "Demo pieces made by Cue Studio", "energy": "Energy (0–1)",
                    "score": "How well the track matches the search"}.get(COLUMNS[section][0])
        return None

    def flags(self, index: QModelIndex | QPersistentModelIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsDragEnabled

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row = self.rows[index.row()]
        key = COLUMNS[index.column()][0]
        value = row.get(key)
        if role == ROW_ROLE:
            return row
        if role == SORT_ROLE:
            if key in ("title", "artist", "key"):
                return str(value or "").lower()
            if key == "demo":
                return 1 if value else 0
            return float(value) if isinstance(value, int | float) else -1.0
        if role == Qt.ItemDataRole.DisplayRole:
            if key == "duration":
                return fmt_duration(value)
            if key == "tempo":
                return f"{float(value):.0f}" if isinstance(value, int | float) and value > 0 else ""
            if key == "energy":
                return f"{float(value):.2f}" if isinstance(value, int | float) else ""
            if key == "demo":
                return "demo" if value else ""
            if key == "score":
                return f"{float(value):.2f}" if isinstance(value, int | float) else ""
            if key == "title":
                return value or (row.get("path") or "").rsplit("/", 1)[-1]
            return "" if value is None else str(value)
        if role == Qt.ItemDataRole.TextAlignmentRole and key in ("duration", "tempo", "score"):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ToolTipRole:
            tip = str(row.get("path") or "")
            if row.get("matched"):
                tip += "\nmatched: " + ", ".join(map(str, row["matched"]))
            if row.get("genre"):
                tip += f"\ngenre: {row['genre']}"
            return tip
        return None


class EnergyDelegate(QStyledItemDelegate):
    """A small horizontal bar for a 0..1 value."""

    def paint(self, painter: QPainter, option: QStyleOptionViewItem,
              index: QModelIndex | QPersistentModelIndex) -> None:
        self.initStyleOption(option, index)
        option.text = ""
        style = option.widget.style() if option.widget else None
        if style is not None:
            style.drawControl(QStyle.ControlElement.CE_ItemViewItem, option, painter, option.widget)
        value = index.data(SORT_ROLE)
        if not isinstance(value, float) or value < 0:
            return
        r = QRectF(option.rect).adjusted(6, option.rect.height() / 2 - 3, -6, -(option.rect.height() / 2 - 3))
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        track = QColor(option.palette.color(QPalette.ColorRole.Text))
        track.setAlpha(40)
        painter.setBrush(track)
        painter.drawRoundedRect(r, 3, 3)
        fill = QColor.fromHsvF(max(0.0, 0.33 - 0.33 * min(1.0, value)), 0.75, 0.85)
        painter.setBrush(fill)
        painter.drawRoundedRect(QRectF(r.x(), r.y(), max(3.0, r.width() * min(1.0, value)), r.height()), 3, 3)
        painter.restore()


class BadgeDelegate(QStyledItemDelegate):
    """A rounded "DEMO" badge for demo tracks."""

    def paint(self, painter: QPainter, option: QStyleOptionViewItem,
              index: QModelIndex | QPersistentModelIndex) -> None:
        self.initStyleOption(option, index)
        option.text = ""
        style = option.widget.style() if option.widget else None
        if style is not None:
            style.drawControl(QStyle.ControlElement.CE_ItemViewItem, option, painter, option.widget)
        if not index.data(SORT_ROLE):
            return
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        font = option.font
        font.setPointSizeF(max(6.5, font.pointSizeF() * 0.75))
        font.setBold(True)
        painter.setFont(font)
        w = painter.fontMetrics().horizontalAdvance("DEMO") + 12
        h = painter.fontMetrics().height() + 2
        r = QRectF(option.rect.center().x() - w / 2, option.rect.center().y() - h / 2, w, h)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(120, 90, 200))
        painter.drawRoundedRect(r, h / 2, h / 2)
        painter.setPen(QColor("white"))
        painter.drawText(r, Qt.AlignmentFlag.AlignCenter, "DEMO")
        painter.restore()


class TrackTable(QTableView):
    """The track table; dragging rows out hands over their files as URLs."""

    def selected_rows(self) -> list[dict[str, Any]]:
        sel = self.selectionModel()
        if sel is None:
            return []
        indexes = sorted(sel.selectedRows(), key=lambda i: i.row())
        return [i.data(ROW_ROLE) for i in indexes]

    def mime_for_selection(self) -> Any:
        return mime_for_files([r.get("path") or "" for r in self.selected_rows()])

    def startDrag(self, supportedActions: Qt.DropAction) -> None:  # noqa: ARG002
        mime = self.mime_for_selection()
        drag_files(self, mime)


class LibraryWorkspace(QWidget):
    """The library: a table, a search field, the selected track's waveform and player."""

    statusMessage = Signal(str)
    rowsLoaded = Signal(int)
    trackShown = Signal(object)  # the library.show dict

    def __init__(self, client: JobClient, registry: Registry, state: GuiState,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("libraryWorkspace")
        self.client = client
        self.registry = registry
        self.state = state
        self.all_rows: list[dict[str, Any]] = []
        self.searching = ""
        self._search_job: Job | None = None
        self._show_job: Job | None = None
        self._shown: dict[Any, dict[str, Any]] = {}
        self.current: dict[str, Any] | None = None
        self.demo_job: Job | None = None
        self.list_job: Job | None = None
        self.available = "library.list" in registry

        lay = QVBoxLayout(self)
        lay.setContentsMargins(8, 8, 8, 8)
        lay.setSpacing(6)

        self.banner = QFrame()
        self.banner.setObjectName("demoBanner")
        self.banner.setStyleSheet("#demoBanner { background: rgba(120, 90, 200, 0.18); "
                                  "border: 1px solid rgba(120, 90, 200, 0.55); border-radius: 6px; }")
        bl = QHBoxLayout(self.banner)
        bl.setContentsMargins(10, 6, 6, 6)
        self.banner_label = QLabel(DEMO_BANNER)
        self.banner_label.setWordWrap(True)
        bl.addWidget(self.banner_label, 1)
        close = QPushButton("Dismiss")
        close.setFlat(True)
        close.clicked.connect(self._dismiss_banner)
        bl.addWidget(close)
        self.banner.hide()
        lay.addWidget(self.banner)

        bar = QHBoxLayout()
        self.search = QLineEdit()
        self.search.setObjectName("librarySearch")
        self.search.setPlaceholderText("Search (Ctrl+F): describe the music — calm piano, 90 bpm, A minor — Enter")
        focus_search = QAction("Search the library", self)
        focus_search.setShortcut(QKeySequence.StandardKey.Find)
        focus_search.triggered.connect(lambda: (self.search.setFocus(), self.search.selectAll()))
        self.addAction(focus_search)
        self.search.setClearButtonEnabled(True)
        self.search.returnPressed.connect(self.run_search)
        self.search.textChanged.connect(self._on_search_text)
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(600)
        self._debounce.timeout.connect(self.run_search)
        self.filter = QLineEdit()
        self.filter.setObjectName("libraryFilter")
        self.filter.setPlaceholderText("Filter rows")
        self.filter.setClearButtonEnabled(True)
        self.filter.setMaximumWidth(220)
        self.count = QLabel()
        bar.addWidget(self.search, 3)
        bar.addWidget(self.filter, 1)
        bar.addWidget(self.count)
        lay.addLayout(bar)

        self.model = TrackModel(self)
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setSortRole(SORT_ROLE)
        self.proxy.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.proxy.setFilterKeyColumn(-1)
        self.filter.textChanged.connect(self._on_filter)

        self.table = TrackTable()
        self.table.setObjectName("trackTable")
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(COL["title"], Qt.SortOrder.AscendingOrder)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setDragEnabled(True)
        self.table.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.table.setDefaultDropAction(Qt.DropAction.CopyAction)
        self.table.setAlternatingRowColors(True)
        self.table.setShowGrid(False)
        self.table.setWordWrap(False)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(26)
        self.table.setItemDelegateForColumn(COL["energy"], EnergyDelegate(self.table))
        self.table.setItemDelegateForColumn(COL["demo"], BadgeDelegate(self.table))
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(COL["title"], QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(COL["artist"], QHeaderView.ResizeMode.Interactive)
        for key, width in (("artist", 180), ("duration", 64), ("tempo", 52), ("key", 84), ("energy", 90),
                           ("demo", 62), ("score", 60)):
            self.table.setColumnWidth(COL[key], width)
        self.table.setColumnHidden(COL["score"], True)
        self.table.selectionModel().currentRowChanged.connect(self._on_current)
        self.table.doubleClicked.connect(lambda _i: self.player.toggle())
        self.table.setToolTip("Drag tracks into your DAW or video editor")

        self.details = QWidget()
        dl = QVBoxLayout(self.details)
        dl.setContentsMargins(0, 4, 0, 0)
        head = QHBoxLayout()
        self.play_button = QPushButton("▶  Play")
        self.play_button.setObjectName("playButton")
        self.play_button.setToolTip("Play / stop the selected track (Space)")
        self.play_button.setEnabled(False)
        self.play_button.clicked.connect(lambda: self.player.toggle())
        self.info = QLabel("No track selected")
        self.info.setTextFormat(Qt.TextFormat.RichText)
        head.addWidget(self.play_button)
        head.addWidget(self.info, 1)
        dl.addLayout(head)
        self.waveform = WaveformView()
        self.waveform.setObjectName("waveform")
        dl.addWidget(self.waveform, 1)
        self.description = QLabel()
        self.description.setWordWrap(True)
        self.description.setEnabled(False)
        dl.addWidget(self.description)

        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.table)
        split.addWidget(self.details)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 1)
        split.setSizes([420, 180])
        lay.addWidget(split, 1)

        self.unavailable = QLabel(
            "The library engine is not available in this installation (no 'library.list' command).\n"
            "Help › About lists the plugins that loaded and those that failed.")
        self.unavailable.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.unavailable.setWordWrap(True)
        lay.addWidget(self.unavailable)
        self.unavailable.setVisible(not self.available)
        split.setVisible(self.available)
        self.search.setEnabled("library.search" in registry)
        self.filter.setEnabled(self.available)

        self.player = Player(self)
        self.player.stateChanged.connect(self._on_playing)
        self.player.positionChanged.connect(self.waveform.set_position)
        self.player.notice.connect(self.statusMessage)
        self.waveform.seekRequested.connect(self.player.seek)
        self.play_action = QAction("Play / stop", self)
        self.play_action.setShortcut(QKeySequence(Qt.Key.Key_Space))
        self.play_action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.play_action.triggered.connect(self.player.toggle)
        self.table.addAction(self.play_action)
        self.details.addAction(self.play_action)

        client.jobAdded.connect(self._on_job_added)
        self._update_count()

    # loading -----------------------------------------------------------------
    def reload(self) -> Job | None:
        """Fetch the whole library (``library.list``)."""
        if not self.available:
            return None
        job = self.client.submit("library.list", {}, title="Load the library", visible=False)
        self.list_job = job
        job.finished.connect(lambda result, j=job: self._on_list(j, result))
        job.failed.connect(lambda err: self.statusMessage.emit(f"Could not load the library: {err.get('message')}"))
        return job

    def _on_list(self, job: Job, result: Result) -> None:
        if job is not self.list_job:
            return
        rows = result.data if isinstance(result.data, list) else []
        self.all_rows = rows
        if not self.searching:
            self._set_rows(rows)
        self.banner.setVisible(self._banner_wanted())
        self.rowsLoaded.emit(len(rows))
        if not rows and self.demo_job is None and not self.state.get("demo_started") and "library.demo" in self.registry:
            self.start_demo()

    def start_demo(self) -> Job:
        """Build the demo library (first run with an empty library)."""
        self.state.set("demo_started", True)
        params = {"count": DEMO_COUNT} if any(p.name == "count" for p in self.registry.get("library.demo").params) else {}
        self.demo_job = self.client.submit("library.demo", params, title="Build the demo library")
        self.banner.show()
        self.statusMessage.emit("Building the demo library — it appears here as soon as it is ready.")
        return self.demo_job

    def _banner_wanted(self) -> bool:
        if self.state.get("demo_banner_dismissed"):
            return False
        building = self.demo_job is not None and not self.demo_job.done
        return building or any(r.get("demo") for r in self.all_rows)

    def _dismiss_banner(self) -> None:
        self.state.set("demo_banner_dismissed", True)
        self.banner.hide()

    def _on_job_added(self, job: Job) -> None:
        if job.command_id.startswith("library.") and job.command_id not in READ_ONLY:
            job.finished.connect(lambda _r: self.reload())

    def _set_rows(self, rows: list[dict[str, Any]]) -> None:
        keep = self.current.get("track_id") if self.current else None
        self.model.set_rows(rows)
        self._update_count()
        if keep is not None:
            self.select_track(keep)

    def _update_count(self) -> None:
        shown, total = self.proxy.rowCount(), self.model.rowCount()
        if self.searching:
            self.count.setText(f"{total} match{'es' if total != 1 else ''}")
        elif shown != total:
            self.count.setText(f"{shown} of {total} tracks")
        else:
            self.count.setText(f"{total} track{'s' if total != 1 else ''}")

    def rows(self) -> list[dict[str, Any]]:
        """The rows the table shows, in display order."""
        return [self.proxy.index(i, 0).data(ROW_ROLE) for i in range(self.proxy.rowCount())]

    # search ------------------------------------------------------------------
    def _on_search_text(self, text: str) -> None:
        if not text.strip():
            self._debounce.stop()
            self.clear_search()
        else:
            self._debounce.start()

    def run_search(self) -> Job | None:
        self._debounce.stop()
        text = self.search.text().strip()
        if not text:
            self.clear_search()
            return None
        if "library.search" not in self.registry:
            return None
        command = self.registry.get("library.search")
        names = [p.name for p in command.params]
        key = next((n for n in ("text", "query", "q") if n in names), names[0] if names else "text")
        job = self.client.submit("library.search", {key: text}, title=f"Search “{text}”", visible=False)
        self._search_job = job
        job.finished.connect(lambda result, j=job, t=text: self._on_search(j, t, result))
        job.failed.connect(lambda err: self.statusMessage.emit(f"Search failed: {err.get('message')}"))
        return job

    def _on_search(self, job: Job, text: str, result: Result) -> None:
        if job is not self._search_job or not self.search.text().strip():
            return
        self.searching = text
        self.table.setColumnHidden(COL["score"], False)
        self._set_rows(result.data if isinstance(result.data, list) else [])
        self.table.sortByColumn(COL["score"], Qt.SortOrder.DescendingOrder)
        self.statusMessage.emit(result.message or f"{self.model.rowCount()} matches")

    def clear_search(self) -> None:
        self._search_job = None
        if not self.searching:
            return
        self.searching = ""
        self.table.setColumnHidden(COL["score"], True)
        self._set_rows(self.all_rows)
        self.table.sortByColumn(COL["title"], Qt.SortOrder.AscendingOrder)

    def _on_filter(self, text: str) -> None:
        self.proxy.setFilterFixedString(text)
        self._update_count()

    # selection, details, playback ------------------------------------------------
    def select_track(self, track_id: Any) -> bool:
        for i in range(self.proxy.rowCount()):
            idx = self.proxy.index(i, 0)
            if idx.data(ROW_ROLE).get("track_id") == track_id:
                self.table.selectionModel().setCurrentIndex(
                    idx, QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows)
                self.table.scrollTo(idx)
                return True
        return False

    def select_row(self, row: int) -> None:
        idx = self.proxy.index(row, 0)
        self.table.selectionModel().setCurrentIndex(
            idx, QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows)

    def _on_current(self, current: QModelIndex, _previous: QModelIndex) -> None:
        row = current.data(ROW_ROLE) if current.isValid() else None
        if row is self.current or (row and self.current and row.get("track_id") == self.current.get("track_id")
                                   and row.get("path") == self.current.get("path")):
            self.current = row
            return
        self.current = row
        if row is None:
            self.info.setText("No track selected")
            self.play_button.setEnabled(False)
            self.waveform.clear("Select a track to see its waveform")
            self.description.clear()
            return
        bits = [b for b in (
            f"{float(row['tempo']):.0f} BPM" if isinstance(row.get("tempo"), int | float) and row["tempo"] else "",
            str(row.get("key") or ""), fmt_duration(row.get("duration")), str(row.get("genre") or "")) if b]
        title = _esc(row.get("title") or row.get("path") or "")
        artist = _esc(row.get("artist") or "")
        self.info.setText(f"<b>{title}</b>" + (f" — {artist}" if artist else "")
                          + (f"&nbsp;&nbsp;<span style='color:gray'>{' · '.join(map(_esc, bits))}</span>" if bits else ""))
        self.play_button.setEnabled(True)
        self.player.load(str(row.get("path") or ""))
        tid = row.get("track_id")
        if tid in self._shown:
            self._show(self._shown[tid])
        elif "library.show" in self.registry and tid is not None:
            self.waveform.clear("Loading waveform…")
            job = self.client.submit("library.show", {"track_id": tid}, title="Show track", visible=False)
            self._show_job = job
            job.finished.connect(lambda result, j=job: self._on_show(j, result))
            job.failed.connect(lambda err: self.waveform.clear(f"No waveform: {err.get('message')}"))

    def _on_show(self, job: Job, result: Result) -> None:
        data = result.data if isinstance(result.data, dict) else {}
        self._shown[data.get("track_id")] = data
        if job is self._show_job:
            self._show(data)

    def _show(self, data: dict[str, Any]) -> None:
        self.waveform.set_track(data.get("peaks") or [], data.get("beats") or [], data.get("duration") or 0.0)
        self.description.setText(str(data.get("description") or ""))
        self.trackShown.emit(data)

    def _on_playing(self, playing: bool) -> None:
        self.play_button.setText("■  Stop" if playing else "▶  Play")


def _esc(text: Any) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
