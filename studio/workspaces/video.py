"""The Video → Music workspace: drop a clip, get ranked tracks, steer in words, preview, export.

Everything runs as commands: ``video.match`` (ranked tracks with the offset that puts the
most cuts on beats), ``video.refine`` (one turn of the conversation), ``library.show``
(the selected track's beats, for the cut/beat strip) and ``video.export`` (WAV or MP4 in
the data home's ``exports/``; exported files can be dragged out).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from PySide6.QtCore import (
    QModelIndex,
    QPersistentModelIndex,
    QRectF,
    QSize,
    Qt,
    QUrl,
    Signal,
)
from PySide6.QtGui import (
    QAbstractTextDocumentLayout,
    QAction,
    QColor,
    QDragEnterEvent,
    QDropEvent,
    QImage,
    QKeySequence,
    QPainter,
    QPalette,
    QPen,
    QTextDocument,
)
from PySide6.QtMultimedia import QAudioOutput, QMediaDevices, QMediaPlayer, QVideoFrame, QVideoSink
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QVBoxLayout,
    QWidget,
)

from engines.core.registry import Registry, Result
from studio.dragdrop import drag_files, mime_for_files, paths_from_mime
from studio.jobs import Job, JobClient
from studio.state import GuiState

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v")
TOP = 8
ROW_ROLE = Qt.ItemDataRole.UserRole + 20
#: a cut counts as "on the beat" within this many seconds (the engine's tolerance)
ON_BEAT_S = 0.08


def _esc(text: Any) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def is_video(path: str) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def row_html(row: dict[str, Any], *, selected: bool = False) -> str:
    """The rich text of one result row (plain colours when ``selected``)."""
    title = _esc(row.get("title") or Path(str(row.get("path") or "")).name)
    artist = _esc(row.get("artist") or "")
    score = row.get("score")
    facts = [f"score {float(score):.2f}" if isinstance(score, int | float) else "",
             f"offset {float(row.get('offset_s') or 0.0):.1f} s"]
    if row.get("cuts_total"):
        facts.append(f"{int(row.get('cuts_on_beat') or 0)} of {int(row['cuts_total'])} cuts on beat")
    if isinstance(row.get("tempo"), int | float) and row["tempo"]:
        facts.append(f"{float(row['tempo']):.0f} BPM")
    if row.get("key"):
        facts.append(_esc(row["key"]))
    if row.get("matcher"):
        facts.append(_esc(row["matcher"]))
    grey = "" if selected else " style='color:gray'"
    blue = "" if selected else " style='color:#4a90d9'"
    return (f"<b>{int(row.get('rank') or 0)}. {title}</b>"
            + (f" <span{grey}>— {artist}</span>" if artist else "")
            + f"<br><span{blue}>{' · '.join(f for f in facts if f)}</span>"
            + f"<br><i>{_esc(row.get('rationale') or '')}</i>")


class ResultDelegate(QStyledItemDelegate):
    """Paints a result row as wrapped rich text (title, facts, rationale)."""

    PAD = 6

    def _doc(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex,
             width: float) -> QTextDocument:
        doc = QTextDocument()
        doc.setDefaultFont(option.font)
        doc.setHtml(row_html(index.data(ROW_ROLE) or {}))
        doc.setTextWidth(max(80.0, width - 2 * self.PAD))
        return doc

    def paint(self, painter: QPainter, option: QStyleOptionViewItem,
              index: QModelIndex | QPersistentModelIndex) -> None:
        self.initStyleOption(option, index)
        option.text = ""
        style = option.widget.style() if option.widget else None
        if style is not None:
            style.drawControl(QStyle.ControlElement.CE_ItemViewItem, option, painter, option.widget)
        doc = self._doc(option, index, option.rect.width())
        painter.save()
        painter.translate(option.rect.x() + self.PAD, option.rect.y() + self.PAD)
        ctx = QAbstractTextDocumentLayout.PaintContext()
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        ctx.palette.setColor(QPalette.ColorRole.Text, option.palette.color(
            QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text))
        if selected:
            doc.setHtml(row_html(index.data(ROW_ROLE) or {}, selected=True))
        doc.documentLayout().draw(painter, ctx)
        painter.restore()

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> QSize:
        width = option.widget.viewport().width() if option.widget is not None else 400
        doc = self._doc(option, index, width)
        return QSize(int(width), int(doc.size().height()) + 2 * self.PAD)


class CutBeatStrip(QWidget):
    """The clip's cuts (top) against the track's beats from the offset (bottom).

    Cuts that land within 80 ms of a beat are drawn green, the others orange; the
    playhead follows the preview.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.cuts: list[float] = []
        self.beats: list[float] = []  # relative to the clip's in point
        self.duration = 0.0
        self.position = 0.0
        self.message = "Select a result to see where its beats meet the cuts"
        self.setMinimumHeight(54)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setToolTip("Top: the clip's cuts (green = on a beat). Bottom: the track's beats from its offset.")

    def set_data(self, cuts: list[float], beats: list[float], offset: float, duration: float) -> None:
        self.cuts = [float(c) for c in cuts]
        self.duration = max(0.0, float(duration))
        self.beats = [float(b) - offset for b in beats if 0.0 <= float(b) - offset <= self.duration]
        self.message = "" if self.duration > 0 else "No clip length"
        self.update()

    def clear(self, message: str) -> None:
        self.cuts, self.beats, self.message = [], [], message
        self.update()

    def on_beat(self, cut: float) -> bool:
        return any(abs(cut - b) <= ON_BEAT_S for b in self.beats)

    def set_position(self, seconds: float) -> None:
        self.position = seconds
        self.update()

    def sizeHint(self) -> QSize:
        return QSize(400, 54)

    def paintEvent(self, _event: Any) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        pal = self.palette()
        r = QRectF(self.rect()).adjusted(4, 4, -4, -4)
        base = QColor(pal.color(QPalette.ColorRole.Text))
        base.setAlpha(22)
        p.fillRect(r, base)
        text = QColor(pal.color(QPalette.ColorRole.Text))
        if self.message or self.duration <= 0:
            p.setPen(text)
            p.drawText(r, Qt.AlignmentFlag.AlignCenter, self.message)
            return
        mid = r.center().y()
        label = QColor(text)
        label.setAlpha(140)
        p.setPen(label)
        font = p.font()
        font.setPointSizeF(max(6.5, font.pointSizeF() * 0.8))
        p.setFont(font)
        p.drawText(QRectF(r.x() + 3, r.y(), 60, r.height() / 2), Qt.AlignmentFlag.AlignVCenter, "cuts")
        p.drawText(QRectF(r.x() + 3, mid, 60, r.height() / 2), Qt.AlignmentFlag.AlignVCenter, "beats")
        x0, w = r.x() + 44, r.width() - 48

        def x(t: float) -> float:
            return x0 + w * t / self.duration

        beat = QColor(text)
        beat.setAlpha(150)
        p.setPen(QPen(beat, 1.5))
        for b in self.beats:
            p.drawLine(x(b), mid + 3, x(b), r.bottom() - 3)
        for c in self.cuts:
            colour = QColor(60, 180, 90) if self.on_beat(c) else QColor(230, 140, 40)
            p.setPen(QPen(colour, 3))
            p.drawLine(x(c), r.y() + 3, x(c), mid - 1)
        line = QColor(text)
        line.setAlpha(60)
        p.setPen(QPen(line, 1))
        p.drawLine(x0, mid, x0 + w, mid)
        if 0 <= self.position <= self.duration:
            p.setPen(QPen(QColor(220, 60, 60), 1.5))
            p.drawLine(x(self.position), r.y(), x(self.position), r.bottom())


class VideoView(QWidget):
    """Shows the clip's frames (from a :class:`QVideoSink`), letterboxed.

    Painting the frames ourselves keeps the preview visible in screenshots and on
    platforms where a native video surface cannot be grabbed.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.sink = QVideoSink(self)
        self.sink.videoFrameChanged.connect(self._on_frame)
        self.image = QImage()
        self.placeholder = "Drop a video clip here"
        self.setMinimumSize(320, 180)

    def _on_frame(self, frame: QVideoFrame) -> None:
        img = frame.toImage()
        if not img.isNull():
            self.image = img
            self.update()

    def clear(self, placeholder: str) -> None:
        self.image = QImage()
        self.placeholder = placeholder
        self.update()

    def paintEvent(self, _event: Any) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(12, 12, 14))
        if self.image.isNull():
            p.setPen(QColor(150, 150, 150))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self.placeholder)
            return
        size = self.image.size().scaled(self.size(), Qt.AspectRatioMode.KeepAspectRatio)
        x = (self.width() - size.width()) / 2
        y = (self.height() - size.height()) / 2
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        p.drawImage(QRectF(x, y, size.width(), size.height()), self.image)


class ExportList(QListWidget):
    """Exported files; dragging a row hands over its file URL."""

    def mime_for_row(self, row: int) -> Any:
        item = self.item(row)
        return mime_for_files([item.data(ROW_ROLE)]) if item is not None else None

    def startDrag(self, supportedActions: Qt.DropAction) -> None:  # noqa: ARG002
        item = self.currentItem()
        mime = mime_for_files([item.data(ROW_ROLE)]) if item is not None else None
        drag_files(self, mime)


class VideoWorkspace(QWidget):
    """Match music to a clip, refine it in words, preview it in sync, export it."""

    statusMessage = Signal(str)
    matched = Signal(object)  # the result data of video.match / video.refine
    exported = Signal(str)  # path

    def __init__(self, client: JobClient, registry: Registry, state: GuiState,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("videoWorkspace")
        self.setAcceptDrops(True)
        self.client = client
        self.registry = registry
        self.state = state
        self.clip: str = ""
        self.data: dict[str, Any] = {}
        self.session_id: str = ""
        self.turns: list[str] = []
        self.current: dict[str, Any] | None = None
        self.match_job: Job | None = None
        self.refine_job: Job | None = None
        self.export_job: Job | None = None
        self._beats: dict[Any, list[float]] = {}
        self._pending_track_seek: float | None = None
        self._poster_pending = False

        lay = QVBoxLayout(self)
        lay.setContentsMargins(8, 8, 8, 8)
        lay.setSpacing(6)

        bar = QHBoxLayout()
        self.open_button = QPushButton("Open clip…")
        self.open_button.setToolTip("Open a video clip (Ctrl+Shift+V) — or drop one here")
        self.open_button.clicked.connect(self.open_dialog)
        open_action = QAction("Open clip", self)
        open_action.setShortcut(QKeySequence("Ctrl+Shift+V"))
        open_action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        open_action.triggered.connect(self.open_dialog)
        self.addAction(open_action)
        self.clip_label = QLabel("Drop a video clip (MP4, MOV, MKV, WEBM, AVI) here or open one")
        self.clip_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.start_spin = QDoubleSpinBox()
        self.end_spin = QDoubleSpinBox()
        for spin, tip in ((self.start_spin, "In point (s)"), (self.end_spin, "Out point (s); 0 = end of clip")):
            spin.setRange(0.0, 36000.0)
            spin.setDecimals(1)
            spin.setSingleStep(0.5)
            spin.setSuffix(" s")
            spin.setToolTip(tip)
        self.end_spin.setSpecialValueText("end")
        self.match_button = QPushButton("Match music")
        self.match_button.setObjectName("matchButton")
        self.match_button.setEnabled(False)
        self.match_button.clicked.connect(self.run_match)
        bar.addWidget(self.open_button)
        bar.addWidget(self.clip_label, 1)
        bar.addWidget(QLabel("In"))
        bar.addWidget(self.start_spin)
        bar.addWidget(QLabel("Out"))
        bar.addWidget(self.end_spin)
        bar.addWidget(self.match_button)
        lay.addLayout(bar)

        self.error = QLabel()
        self.error.setObjectName("videoError")
        self.error.setWordWrap(True)
        self.error.setStyleSheet("#videoError { color: #b00020; background: rgba(176, 0, 32, 0.08); "
                                 "border: 1px solid rgba(176, 0, 32, 0.4); border-radius: 4px; padding: 4px; }")
        self.error.hide()
        lay.addWidget(self.error)

        # left: preview --------------------------------------------------------
        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        self.video_widget = VideoView()
        ll.addWidget(self.video_widget, 1)
        transport = QHBoxLayout()
        self.play_button = QPushButton("▶  Play")
        self.play_button.setObjectName("videoPlayButton")
        self.play_button.setToolTip("Play / pause the clip with the selected track (Space)")
        self.play_button.setEnabled(False)
        self.play_button.clicked.connect(self.toggle)
        self.clip_sound = QCheckBox("Clip sound")
        self.clip_sound.setToolTip("Hear the clip's own sound under the music")
        self.position_label = QLabel("0.0 s")
        transport.addWidget(self.play_button)
        transport.addWidget(self.clip_sound)
        transport.addStretch(1)
        transport.addWidget(self.position_label)
        ll.addLayout(transport)
        self.strip = CutBeatStrip()
        ll.addWidget(self.strip)
        self.track_info = QLabel()
        self.track_info.setWordWrap(True)
        ll.addWidget(self.track_info)

        # right: results, steering, export ---------------------------------------
        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        self.changed_label = QLabel()
        self.changed_label.setObjectName("videoChanged")
        self.changed_label.setWordWrap(True)
        self.changed_label.setStyleSheet("#videoChanged { background: rgba(74, 144, 217, 0.12); "
                                         "border-radius: 4px; padding: 4px; }")
        self.changed_label.hide()
        rl.addWidget(self.changed_label)
        self.results = QListWidget()
        self.results.setObjectName("videoResults")
        self.results.setItemDelegate(ResultDelegate(self.results))
        self.results.setWordWrap(True)
        self.results.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.results.setUniformItemSizes(False)
        self.results.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.results.setAlternatingRowColors(True)
        self.results.currentRowChanged.connect(self._on_current)
        rl.addWidget(self.results, 3)
        self.steer = QLineEdit()
        self.steer.setObjectName("videoSteer")
        self.steer.setPlaceholderText("Steer: calmer, with piano, not that one… — Enter")
        self.steer.setEnabled(False)
        self.steer.returnPressed.connect(lambda: self.refine(self.steer.text()))
        rl.addWidget(self.steer)
        self.history = QListWidget()
        self.history.setObjectName("videoTurns")
        self.history.setMaximumHeight(64)
        self.history.setToolTip("What you asked for, in order")
        self.history.hide()
        rl.addWidget(self.history)

        ex = QHBoxLayout()
        self.export_cut = QPushButton("Track cut to clip (WAV)")
        self.export_whole = QPushButton("Whole track (WAV)")
        self.export_mp4 = QPushButton("Clip with music (MP4)")
        self.mux_mode = QComboBox()
        self.mux_mode.addItems(["replace clip sound", "music under clip sound"])
        self.mux_mode.setToolTip("For the MP4: replace the clip's sound or put the music under it")
        self.export_cut.clicked.connect(lambda: self.export("cut"))
        self.export_whole.clicked.connect(lambda: self.export("whole"))
        self.export_mp4.clicked.connect(lambda: self.export("mp4"))
        for b in (self.export_cut, self.export_whole, self.export_mp4):
            b.setEnabled(False)
            ex.addWidget(b)
        ex.addWidget(self.mux_mode)
        ex.addStretch(1)
        rl.addLayout(ex)
        self.exports = ExportList()
        self.exports.setObjectName("videoExports")
        self.exports.setDragEnabled(True)
        self.exports.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.exports.setMaximumHeight(70)
        self.exports.setToolTip("Drag exported files into your video editor or DAW")
        self.exports.hide()
        rl.addWidget(self.exports)

        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(right)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 1)
        split.setSizes([520, 560])
        lay.addWidget(split, 1)

        # players ----------------------------------------------------------------
        self.audio_ok = bool(QMediaDevices.audioOutputs())
        self.clip_player = QMediaPlayer(self)
        self.clip_player.setVideoOutput(self.video_widget.sink)
        self.track_player = QMediaPlayer(self)
        self.clip_audio: QAudioOutput | None = None
        if self.audio_ok:
            self.clip_audio = QAudioOutput(self)
            self.clip_audio.setMuted(True)
            self.clip_player.setAudioOutput(self.clip_audio)
            self.track_player.setAudioOutput(QAudioOutput(self))
        self.clip_sound.toggled.connect(lambda on: self.clip_audio.setMuted(not on) if self.clip_audio else None)
        self.clip_player.positionChanged.connect(self._on_clip_position)
        self.clip_player.mediaStatusChanged.connect(self._on_clip_status)
        self.clip_player.errorOccurred.connect(lambda _e, text: self.statusMessage.emit(f"Cannot play the clip: {text}"))
        self.track_player.mediaStatusChanged.connect(self._on_track_status)
        self.playing = False
        self.play_action = QAction("Play / pause", self)
        self.play_action.setShortcut(QKeySequence(Qt.Key.Key_Space))
        self.play_action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.play_action.triggered.connect(self.toggle)
        self.addAction(self.play_action)

    # clip ------------------------------------------------------------------------
    def open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a video clip", str(Path.home()),
                                              "Video (*.mp4 *.mov *.mkv *.webm *.avi *.m4v);;All files (*)")
        if path:
            self.set_clip(path)

    def set_clip(self, path: str, *, match: bool = True) -> Job | None:
        """Load a clip into the preview and (by default) match music to it."""
        self.clip = str(Path(path).expanduser().resolve())
        self.clip_label.setText(f"<b>{_esc(Path(self.clip).name)}</b>")
        self.clip_label.setToolTip(self.clip)
        self.match_button.setEnabled(True)
        self.play_button.setEnabled(True)
        self.pause()
        self.video_widget.clear("Loading the clip…")
        self._poster_pending = True
        self.clip_player.setSource(QUrl.fromLocalFile(self.clip))
        return self.run_match() if match else None

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if any(is_video(p) for p in paths_from_mime(event.mimeData())):
            event.setDropAction(Qt.DropAction.CopyAction)
            event.accept()
        else:
            event.ignore()

    def dragMoveEvent(self, event: Any) -> None:
        self.dragEnterEvent(event)

    def dropEvent(self, event: QDropEvent) -> None:
        videos = [p for p in paths_from_mime(event.mimeData()) if is_video(p)]
        if not videos:
            event.ignore()
            return
        event.setDropAction(Qt.DropAction.CopyAction)
        event.accept()
        self.set_clip(videos[0])

    # jobs ------------------------------------------------------------------------
    def _show_error(self, what: str, err: dict[str, Any] | None) -> None:
        msg = str((err or {}).get("message") or (err or {}).get("kind") or "unknown error")
        self.error.setText(f"<b>{_esc(what)}</b>: {_esc(msg)}")
        self.error.show()
        self.statusMessage.emit(f"{what}: {msg}")
        self._busy(False)

    def _busy(self, busy: bool, text: str = "") -> None:
        self.match_button.setEnabled(not busy and bool(self.clip))
        self.steer.setEnabled(not busy and bool(self.session_id))
        if busy:
            self.changed_label.setText(text)
            self.changed_label.show()

    def run_match(self) -> Job | None:
        if not self.clip:
            return None
        params: dict[str, Any] = {"video": self.clip, "top": TOP}
        if self.start_spin.value() > 0:
            params["start"] = float(self.start_spin.value())
        if self.end_spin.value() > 0:
            params["end"] = float(self.end_spin.value())
        self.error.hide()
        self.turns = []
        self.history.clear()
        self.history.hide()
        job = self.client.submit("video.match", params, title=f"Match music to {Path(self.clip).name}")
        self.match_job = job
        self._busy(True, "Matching music to the clip…")
        job.progress.connect(lambda _f, m, j=job: self._progress(j, m))
        job.finished.connect(lambda result, j=job: self._on_results(j, result))
        job.failed.connect(lambda err, j=job: j is self.match_job and self._show_error("Matching failed", err))
        return job

    def refine(self, text: str) -> Job | None:
        text = text.strip()
        if not text or not self.session_id:
            return None
        self.error.hide()
        job = self.client.submit("video.refine", {"session_id": self.session_id, "text": text},
                                 title=f"Refine: {text}")
        self.refine_job = job
        self.turns.append(text)
        self.history.addItem(f"{len(self.turns)}. {text}")
        self.history.show()
        self.history.scrollToBottom()
        self.steer.clear()
        self._busy(True, f"Refining: “{text}”…")
        job.progress.connect(lambda _f, m, j=job: self._progress(j, m))
        job.finished.connect(lambda result, j=job: self._on_results(j, result))
        job.failed.connect(lambda err, j=job: j is self.refine_job and self._show_error("Refining failed", err))
        return job

    def _progress(self, job: Job, message: str) -> None:
        if job in (self.match_job, self.refine_job) and message:
            self.changed_label.setText(f"{job.title}: {message}")

    def _on_results(self, job: Job, result: Result) -> None:
        if job is not self.match_job and job is not self.refine_job:
            return
        data = result.data if isinstance(result.data, dict) else {}
        self.data = data
        self.session_id = str(data.get("session_id") or "")
        keep = self.current.get("track_id") if self.current else None
        rows = [r for r in data.get("results") or [] if isinstance(r, dict)]
        self.results.blockSignals(True)
        self.results.clear()
        for row in rows:
            item = QListWidgetItem()
            item.setData(ROW_ROLE, row)
            item.setToolTip(str(row.get("path") or ""))
            self.results.addItem(item)
        self.results.blockSignals(False)
        changed = str(data.get("changed") or "")
        if job is self.refine_job and changed:
            self.changed_label.setText(f"<b>What changed:</b> {_esc(changed)}")
        elif rows:
            self.changed_label.setText(f"{len(rows)} tracks for <b>{_esc(Path(self.clip).name)}</b> "
                                       f"({float(data.get('start') or 0):.1f}–{float(data.get('end') or 0):.1f} s),"
                                       " best first — select one to preview it in sync")
        else:
            self.changed_label.setText("No tracks matched.")
        self.changed_label.show()
        self._busy(False)
        if rows:
            target = next((i for i, r in enumerate(rows) if r.get("track_id") == keep), 0)
            self.results.setCurrentRow(target)
            self._on_current(target)
        self.matched.emit(data)
        self.statusMessage.emit(result.message.splitlines()[0] if result.message else "matched")

    def rows(self) -> list[dict[str, Any]]:
        return [self.results.item(i).data(ROW_ROLE) for i in range(self.results.count())]

    # selection, strip, preview ------------------------------------------------------
    @property
    def clip_start(self) -> float:
        return float(self.data.get("start") or 0.0)

    @property
    def clip_end(self) -> float:
        return float(self.data.get("end") or 0.0)

    def _on_current(self, index: int) -> None:
        item = self.results.item(index) if index >= 0 else None
        row = item.data(ROW_ROLE) if item is not None else None
        self.current = row
        for b in (self.export_cut, self.export_whole, self.export_mp4):
            b.setEnabled(row is not None)
        if row is None:
            self.track_info.clear()
            self.strip.clear("Select a result to see where its beats meet the cuts")
            return
        hits = (f" — {int(row.get('cuts_on_beat') or 0)} of {int(row['cuts_total'])} cuts land on a beat "
                "(<span style='color:#3cb45a'>green</span>; "
                "<span style='color:#e68c28'>orange</span> = off the beat)") if row.get("cuts_total") else ""
        self.track_info.setText(f"<b>{_esc(row.get('title') or '')}</b> from "
                                f"{float(row.get('offset_s') or 0):.1f} s into the track{hits}")
        pos = self.clip_position()
        path = str(row.get("path") or "")
        if self.track_player.source().toLocalFile() != path:
            self.track_player.setSource(QUrl.fromLocalFile(path) if Path(path).is_file() else QUrl())
        self._seek_track(pos)
        if self.playing:
            self.track_player.play()
        tid = row.get("track_id")
        if tid in self._beats:
            self._update_strip()
        elif "library.show" in self.registry and tid is not None:
            self.strip.clear("Loading beats…")
            job = self.client.submit("library.show", {"track_id": tid}, title="Show track", visible=False)
            job.finished.connect(lambda result, t=tid: self._on_show(t, result))
            job.failed.connect(lambda err: self.strip.clear(f"No beats: {err.get('message')}"))
        else:
            self._beats[tid] = []
            self._update_strip()

    def _on_show(self, tid: Any, result: Result) -> None:
        data = result.data if isinstance(result.data, dict) else {}
        self._beats[tid] = [float(b) for b in data.get("beats") or []]
        # the beats of the selected track, whichever request brought them (selecting the same
        # row twice quickly sends two; the first answer must not be dropped)
        if self.current is not None and self.current.get("track_id") == tid:
            self._update_strip()

    def _update_strip(self) -> None:
        row = self.current
        if row is None:
            return
        self.strip.set_data(self.data.get("cuts") or [], self._beats.get(row.get("track_id"), []),
                            float(row.get("offset_s") or 0.0), self.clip_end - self.clip_start)

    def clip_position(self) -> float:
        """Seconds from the in point."""
        return max(0.0, self.clip_player.position() / 1000.0 - self.clip_start)

    def _seek_track(self, clip_pos: float) -> None:
        target = float((self.current or {}).get("offset_s") or 0.0) + clip_pos
        self._pending_track_seek = target
        self.track_player.setPosition(int(target * 1000))

    def _on_track_status(self, status: QMediaPlayer.MediaStatus) -> None:
        if status in (QMediaPlayer.MediaStatus.LoadedMedia, QMediaPlayer.MediaStatus.BufferedMedia) \
                and self._pending_track_seek is not None:
            self.track_player.setPosition(int(self._pending_track_seek * 1000))
            self._pending_track_seek = None
            if self.playing:
                self.track_player.play()

    def _on_clip_status(self, status: QMediaPlayer.MediaStatus) -> None:
        if status == QMediaPlayer.MediaStatus.LoadedMedia and self._poster_pending and not self.playing:
            self._poster_pending = False
            self.clip_player.pause()  # shows the first frame as a poster
            self.clip_player.setPosition(int(self.clip_start * 1000))
        elif status == QMediaPlayer.MediaStatus.InvalidMedia:
            self.video_widget.clear("This clip cannot be previewed")

    def _on_clip_position(self, ms: int) -> None:
        pos = ms / 1000.0 - self.clip_start
        self.position_label.setText(f"{max(0.0, pos):.1f} s")
        self.strip.set_position(pos)
        if self.playing and self.clip_end > 0 and ms / 1000.0 >= self.clip_end:
            self.pause()
            self.clip_player.setPosition(int(self.clip_start * 1000))

    def toggle(self) -> None:
        if self.playing:
            self.pause()
        else:
            self.play()

    def play(self) -> None:
        if not self.clip:
            return
        if self.clip_end > 0 and not self.clip_start <= self.clip_player.position() / 1000.0 < self.clip_end:
            self.clip_player.setPosition(int(self.clip_start * 1000))
        if not self.audio_ok:
            self.statusMessage.emit("No audio output device is available: the preview is silent.")
        self.playing = True
        self.play_button.setText("❚❚  Pause")
        self._seek_track(self.clip_position())
        self.clip_player.play()
        if self.current is not None:
            self.track_player.play()

    def pause(self) -> None:
        self.playing = False
        self.play_button.setText("▶  Play")
        self.clip_player.pause()
        self.track_player.pause()

    # export ------------------------------------------------------------------------
    def export(self, kind: str) -> Job | None:
        """``kind``: ``"cut"`` (WAV as long as the clip), ``"whole"`` (WAV) or ``"mp4"``."""
        row = self.current
        if row is None or not self.session_id:
            return None
        exports = self.client.home.exports
        exports.mkdir(parents=True, exist_ok=True)
        title = re.sub(r"[^A-Za-z0-9]+", "_", str(row.get("title") or "track")).strip("_")[:40] or "track"
        clip = re.sub(r"[^A-Za-z0-9]+", "_", Path(self.clip).stem).strip("_")[:30] or "clip"
        under = self.mux_mode.currentIndex() == 1
        if kind == "mp4":
            name = f"{clip}_{title}_{'under' if under else 'music'}.mp4"
        elif kind == "whole":
            name = f"{title}.wav"
        else:
            name = f"{title}_for_{clip}_from{float(row.get('offset_s') or 0):.1f}s.wav"
        params = {"session_id": self.session_id, "rank": int(row.get("rank") or 1), "out": str(exports / name),
                  "mux": kind == "mp4", "whole": kind == "whole", "under": kind == "mp4" and under}
        self.error.hide()
        job = self.client.submit("video.export", params, title=f"Export {name}")
        self.export_job = job
        job.finished.connect(self._on_exported)
        job.failed.connect(lambda err: self._show_error("Export failed", err))
        return job

    def _on_exported(self, result: Result) -> None:
        data = result.data if isinstance(result.data, dict) else {}
        path = str(data.get("path") or (result.files[0] if result.files else ""))
        if not path:
            return
        item = QListWidgetItem(f"⇱ {Path(path).name}")
        item.setData(ROW_ROLE, path)
        item.setToolTip(f"{path}\nDrag into your video editor or DAW")
        self.exports.insertItem(0, item)
        self.exports.setCurrentRow(0)
        self.exports.show()
        self.statusMessage.emit(f"Exported {path} — drag it from the list")
        self.exported.emit(path)
