"""The Compare workspace: rate pairs of results A / B, keep every vote, learn from them.

Everything goes through the ``prefs.*`` commands of the preference store:
``prefs.list`` (history and the pending pairs), ``prefs.queue`` (*Rate N pairs*: pending
pairs topped up from recent work), ``prefs.vote`` (with the listen events and the
decision time), ``prefs.undo``, ``prefs.stats``, ``prefs.export`` / ``prefs.import`` and,
when installed, ``prefs.train-reward`` / ``prefs.finetune`` (long jobs, shown in the jobs
dock).

Keys (while this workspace has the focus): **A** / **B** hear that side from the same
position, **Space** plays / pauses, **1** A is better, **2** B is better, **3** tie,
**4** both bad, **Ctrl+Z** undoes the last vote. Rating is blind: which model, version
and seed made A and B is shown in the history once the vote is in.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, QRectF, Qt, Signal
from PySide6.QtGui import (
    QAction,
    QColor,
    QKeyEvent,
    QKeySequence,
    QPainter,
    QPaintEvent,
    QPalette,
    QShowEvent,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from engines.core.registry import Registry, Result
from studio.jobs import FAILED, Job, JobClient
from studio.state import GuiState
from studio.widgets.abplayer import SIDES, ABPlayer
from studio.widgets.peaks import PeaksLoader
from studio.widgets.waveform import WaveformView
from studio.workspaces.video import VideoView

#: (choice, button text, key)
CHOICES = (("a", "A is better", "1"), ("b", "B is better", "2"), ("tie", "Tie", "3"),
           ("both_bad", "Both bad", "4"))
CHOICE_LABEL = {"a": "A", "b": "B", "tie": "tie", "both_bad": "both bad"}
KIND_VOTES = {"generate": "generations", "video": "video matches", "audio": "recordings"}
KIND_LABEL = {"generate": "two generations", "video": "two tracks for a clip", "audio": "two recordings"}
EXPORT_FORMATS = (("trl", "TRL preference JSONL (prompt, chosen, rejected) — for DPO / reward training"),
                  ("bundle", "Bundle: audio files + JSONL + dataset card (to share or re-import)"),
                  ("csv", "CSV (one row per vote)"))
HISTORY_COLUMNS = ("When", "Vote", "Prompt", "Reason", "A", "B", "Decision", "Listens", "Rater", "Kind")
PAIR_ROLE = Qt.ItemDataRole.UserRole + 30
#: the CLI / palette commands whose results change what this workspace shows
PREFS_REFRESHING = ("prefs.pair", "prefs.vote", "prefs.undo", "prefs.import", "prefs.queue",
                    "prefs.train-reward", "prefs.finetune")


def _esc(text: Any) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def controls_text(controls: dict[str, Any]) -> str:
    """The controls of a pair in a producer's words: ``Dm · 92 bpm · 4/4 · Dm Bb F A · lofi``."""
    c = controls or {}

    def txt(v: Any) -> str:
        return " ".join(map(str, v)) if isinstance(v, list | tuple) else str(v)

    bits = []
    if c.get("key"):
        bits.append(txt(c["key"]) + (f" {c['mode']}" if c.get("mode") and str(c["mode"]) not in str(c["key"])
                                     and str(c["mode"]) not in ("major", "minor") else ""))
    if isinstance(c.get("tempo"), int | float) and c["tempo"]:
        bits.append(f"{float(c['tempo']):g} bpm")
    for k in ("meter", "chords"):
        if c.get(k):
            bits.append(txt(c[k]))
    if c.get("bars"):
        bits.append(f"{c['bars']} bars")
    if c.get("instruments"):
        inst = c["instruments"]
        bits.append(", ".join(map(str, inst)) if isinstance(inst, list | tuple) else str(inst))
    if c.get("style"):
        bits.append(txt(c["style"]))
    return " · ".join(bits)


def clip_text(video: str, controls: dict[str, Any]) -> str:
    """``clip city.mp4, 2.0–6.0 s`` (the store keeps clips under their hash: then just ``the clip``)."""
    name = Path(video).name
    what = "the clip" if re.fullmatch(r"[0-9a-f]{64}\.\w+", name) else f"clip {name}"
    start, end = controls.get("start"), controls.get("end")
    if isinstance(start, int | float) and isinstance(end, int | float) and end > start:
        what += f", {float(start):.1f}–{float(end):.1f} s"
    return what + " — each track plays from its offset under it"


def candidate_offset(cand: dict[str, Any]) -> float:
    """Where a candidate track starts under the clip (video pairs), from its metadata."""
    meta = cand.get("meta") or {}
    for key in ("offset_s", "offset"):
        v = meta.get(key)
        if isinstance(v, int | float):
            return max(0.0, float(v))
    return 0.0


def candidate_source(cand: dict[str, Any]) -> str:
    """``model version · seed N`` (or the label) of a candidate, for the history."""
    bits = [str(cand.get("model") or ""), str(cand.get("model_version") or "")]
    if cand.get("seed") is not None:
        bits.append(f"seed {cand['seed']}")
    text = " ".join(b for b in bits[:2] if b)
    text = " · ".join(b for b in (text, bits[2]) if b)
    return text or str(cand.get("label") or Path(str(cand.get("audio") or "")).name)


def fmt_when(ts: Any) -> str:
    try:
        when = datetime.fromtimestamp(float(ts))
    except (TypeError, ValueError, OSError, OverflowError):
        return ""
    return when.strftime("%H:%M" if when.date() == datetime.now().date() else "%d %b %Y")


class WindowedWaveform(WaveformView):
    """A waveform that dims what lies outside ``window`` (seconds): the part of a track that
    plays under the clip of a video pair."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.window_s: tuple[float, float] | None = None

    def set_window(self, window: tuple[float, float] | None) -> None:
        self.window_s = window
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        super().paintEvent(event)
        if self.window_s is None or self.duration <= 0 or not self.peaks:
            return
        w, h = self.width(), self.height()
        x0 = max(0.0, min(1.0, self.window_s[0] / self.duration)) * w
        x1 = max(0.0, min(1.0, self.window_s[1] / self.duration)) * w
        shade = QColor(self.palette().color(QPalette.ColorRole.Base))
        shade.setAlpha(170)
        p = QPainter(self)
        p.fillRect(QRectF(0, 0, x0, h), shade)
        p.fillRect(QRectF(x1, 0, w - x1, h), shade)
        p.end()


class SidePanel(QFrame):
    """One candidate: a button to hear it (its key on it) and its waveform with the playhead."""

    def __init__(self, side: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.side = side
        self.setObjectName(f"comparePanel_{side}")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 4, 6, 6)
        lay.setSpacing(3)
        head = QHBoxLayout()
        self.button = QPushButton(f"Listen to {side.upper()}   ({side.upper()})")
        self.button.setObjectName(f"compareListen_{side}")
        self.button.setCheckable(True)
        self.button.setToolTip(f"Hear {side.upper()} from the same position (key {side.upper()})")
        self.button.setMinimumWidth(120)
        self.info = QLabel()
        self.info.setTextFormat(Qt.TextFormat.RichText)
        head.addWidget(self.button)
        head.addWidget(self.info, 1)
        lay.addLayout(head)
        self.waveform = WindowedWaveform()
        self.waveform.setObjectName(f"compareWave_{side}")
        self.waveform.setMinimumHeight(80)
        self.waveform.placeholder = "No pair to compare"
        self.waveform.setToolTip(f"Click to hear {side.upper()} from there")
        lay.addWidget(self.waveform, 1)
        self.set_active(False)

    def set_active(self, active: bool) -> None:
        self.button.setChecked(active)
        border = "2px solid #409cff" if active else "2px solid transparent"
        self.setStyleSheet(f"#comparePanel_{self.side} {{ border: {border}; border-radius: 6px; }}")


class ExportDialog(QDialog):
    """Format + destination for ``prefs.export``."""

    def __init__(self, default_dir: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export preferences")
        self.default_dir = default_dir
        form = QFormLayout(self)
        self.format = QComboBox()
        for key, text in EXPORT_FORMATS:
            self.format.addItem(text, key)
        self.out = QLineEdit()
        browse = QToolButton()
        browse.setText("…")
        browse.setToolTip("Choose where to write it")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.out, 1)
        row.addWidget(browse)
        form.addRow("Format", self.format)
        form.addRow("Write to", row)
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.note.setEnabled(False)
        form.addRow(self.note)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Export")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)
        self.format.currentIndexChanged.connect(self._on_format)
        self._on_format()
        self.resize(560, 0)

    @property
    def fmt(self) -> str:
        return str(self.format.currentData())

    def default_out(self, fmt: str) -> Path:
        stamp = datetime.now().strftime("%Y%m%d-%H%M")
        return self.default_dir / {"trl": f"preferences-{stamp}.jsonl", "bundle": f"preferences-{stamp}",
                                   "csv": f"preferences-{stamp}.csv"}[fmt]

    def _on_format(self) -> None:
        fmt = self.fmt
        previous = {self.default_out(f).name for f in ("trl", "bundle", "csv")}
        if not self.out.text().strip() or Path(self.out.text()).name in previous:
            self.out.setText(str(self.default_out(fmt)))
        self.note.setText({
            "trl": "Rows of prompt, chosen, rejected plus metadata columns; ties and both-bad votes go to a "
                   "separate file beside it.",
            "bundle": "A folder (or a .zip, if the name ends in .zip) with a copy of every audio file, the "
                      "votes as JSONL and a dataset card; Import… merges it into another data home without "
                      "duplicates.",
            "csv": "One row per vote, for a spreadsheet.",
        }[fmt])

    def _browse(self) -> None:
        start = self.out.text().strip() or str(self.default_dir)
        if self.fmt == "bundle":
            path = QFileDialog.getExistingDirectory(self, "Folder for the bundle", str(Path(start).parent))
            if path:
                path = str(Path(path) / Path(start).name)
        else:
            filt = "JSON lines (*.jsonl)" if self.fmt == "trl" else "CSV (*.csv)"
            path, _ = QFileDialog.getSaveFileName(self, "Export preferences", start, filt)
        if path:
            self.out.setText(path)

    def params(self) -> dict[str, Any]:
        return {"format": self.fmt, "out": self.out.text().strip() or str(self.default_out(self.fmt))}


class CompareWorkspace(QWidget):
    """Rate A / B pairs with seamless switching; history, statistics, export, learning."""

    statusMessage = Signal(str)
    pairShown = Signal(object)  # the pair dict, or None when the queue is empty
    voted = Signal(object)  # the vote dict returned by prefs.vote
    undone = Signal(str)  # pair id that is pending again
    historyLoaded = Signal(int)  # number of votes in the table
    statsLoaded = Signal(object)  # the prefs.stats dict

    def __init__(self, client: JobClient, registry: Registry, state: GuiState,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("compareWorkspace")
        self.client = client
        self.registry = registry
        self.state = state
        self.queue: list[dict[str, Any]] = []  # pending pairs, the current one first
        self.current: dict[str, Any] | None = None
        self.listens: list[dict[str, Any]] = []
        self.shown_at = time.monotonic()
        self.history_pairs: list[dict[str, Any]] = []
        self.stats: dict[str, Any] = {}
        self.vote_job: Job | None = None
        self.queue_job: Job | None = None
        self.list_job: Job | None = None
        self.stats_job: Job | None = None
        self.undo_job: Job | None = None
        self.train_job: Job | None = None
        self.finetune_job: Job | None = None
        self._own: set[str] = set()  # ids of the jobs this workspace started
        self._want_pair: str | None = None  # after an undo: show this pair first
        self._peaks: dict[str, tuple[list[float], float]] = {}
        self._voted: set[str] = set()  # voted here and not undone (a slower list must not bring them back)

        lay = QVBoxLayout(self)
        lay.setContentsMargins(8, 8, 8, 8)
        lay.setSpacing(6)

        # top bar ---------------------------------------------------------------------------
        bar = QHBoxLayout()
        self.n_spin = QSpinBox()
        self.n_spin.setRange(1, 200)
        self.n_spin.setValue(int(state.get("prefs_queue_n") or 10))
        self.n_spin.setToolTip("How many pairs to line up")
        self.queue_button = QPushButton()
        self.queue_button.setObjectName("compareQueue")
        self.queue_button.setToolTip("Line up pairs to rate: the pending ones, topped up from your recent "
                                     "generations and video matches (prefs.queue)")
        self.queue_button.clicked.connect(lambda: self.fill_queue())
        self.n_spin.valueChanged.connect(self._update_queue_button)
        # rater profile: the raters who voted already (from prefs.stats), or type a new name
        self.rater = QComboBox()
        self.rater.setEditable(True)
        self.rater.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        current = str(state.get("prefs_rater") or "default")
        self.rater.addItem(current)
        self.rater.setCurrentText(current)
        self.rater.setObjectName("compareRater")
        self.rater.setToolTip("Rater profile: votes are stored with it, so several people can rate apart. "
                              "Pick one who voted before or type a new name.")
        self.rater.setMinimumWidth(120)
        self.rater.setMaximumWidth(160)
        line = self.rater.lineEdit()
        assert line is not None
        line.editingFinished.connect(lambda: self.state.set("prefs_rater", self.rater_name()))
        self.rater.activated.connect(lambda _i: self.state.set("prefs_rater", self.rater_name()))
        bar.addWidget(self.queue_button)
        bar.addWidget(self.n_spin)
        bar.addSpacing(12)
        bar.addWidget(QLabel("Rater"))
        bar.addWidget(self.rater)
        bar.addStretch(1)
        self.export_button = QPushButton("Export…")
        self.export_button.setToolTip("Write the votes as TRL JSONL (DPO), a shareable bundle or CSV")
        self.export_button.clicked.connect(self.export_dialog)
        self.import_button = QPushButton("Import…")
        self.import_button.setToolTip("Merge a bundle exported from another data home (duplicates are skipped)")
        self.import_button.clicked.connect(self.import_dialog)
        self.train_button = QPushButton("Train reward model")
        self.train_button.setObjectName("compareTrain")
        self.train_button.setToolTip("Fit a reward model on your votes and report its held-out accuracy "
                                     "(prefs.train-reward; progress in the Jobs dock)")
        self.train_button.clicked.connect(self.train_reward)
        self.finetune_button = QPushButton("Fine-tune")
        self.finetune_button.setObjectName("compareFinetune")
        self.finetune_button.setToolTip("Fine-tune the generator on your votes into a new model version you can "
                                        "select and revert (prefs.finetune; progress in the Jobs dock)")
        self.finetune_button.clicked.connect(self.finetune)
        for b, cid in ((self.export_button, "prefs.export"), (self.import_button, "prefs.import"),
                       (self.train_button, "prefs.train-reward"), (self.finetune_button, "prefs.finetune")):
            b.setEnabled(cid in registry)
            if cid not in registry:
                b.setToolTip(f"Not available in this installation (no '{cid}' command)")
            bar.addWidget(b)
        lay.addLayout(bar)

        self.error = QLabel()
        self.error.setObjectName("compareError")
        self.error.setWordWrap(True)
        self.error.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error.setStyleSheet("#compareError { color: #ff6b6b; background: rgba(255, 80, 80, 0.10); "
                                 "border: 1px solid rgba(255, 80, 80, 0.5); border-radius: 5px; padding: 5px; }")
        self.error.hide()
        lay.addWidget(self.error)

        # left: the pair being rated ------------------------------------------------------------
        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 6, 0)
        ll.setSpacing(6)
        self.pair_label = QLabel()
        self.pair_label.setObjectName("comparePairLabel")
        self.pair_label.setTextFormat(Qt.TextFormat.RichText)
        ll.addWidget(self.pair_label)
        self.prompt_label = QLabel()
        self.prompt_label.setObjectName("comparePrompt")
        self.prompt_label.setWordWrap(True)
        self.prompt_label.setTextFormat(Qt.TextFormat.RichText)
        self.prompt_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.prompt_label.setStyleSheet("#comparePrompt { background: rgba(74, 144, 217, 0.12); "
                                        "border-radius: 5px; padding: 6px; }")
        ll.addWidget(self.prompt_label)
        self.video_view = VideoView()
        self.video_view.setMinimumSize(240, 135)
        self.video_view.setMaximumHeight(230)
        self.video_view.hide()
        ll.addWidget(self.video_view, 1)
        self.panels = {side: SidePanel(side) for side in SIDES}
        for side, panel in self.panels.items():
            panel.button.clicked.connect(lambda _c=False, s=side: self.switch(s))
            panel.waveform.seekRequested.connect(lambda t, s=side: self._seek_on(s, t))
            ll.addWidget(panel, 1)

        transport = QHBoxLayout()
        self.play_button = QPushButton("▶  Play   (Space)")
        self.play_button.setObjectName("comparePlay")
        self.play_button.setToolTip("Play / pause (Space); A and B keep the same position")
        self.play_button.clicked.connect(self.toggle_play)
        self.position_label = QLabel("0.0 s")
        self.position_label.setMinimumWidth(110)
        self.hearing_label = QLabel()
        transport.addWidget(self.play_button)
        transport.addWidget(self.hearing_label)
        transport.addStretch(1)
        transport.addWidget(self.position_label)
        ll.addLayout(transport)

        votes = QHBoxLayout()
        self.vote_buttons: dict[str, QPushButton] = {}
        for choice, text, key in CHOICES:
            b = QPushButton(f"{text}   ({key})")
            b.setObjectName(f"compareVote_{choice}")
            b.setToolTip(f"{text} — key {key}")
            b.setMinimumHeight(34)
            b.clicked.connect(lambda _c=False, ch=choice: self.vote(ch))
            self.vote_buttons[choice] = b
            votes.addWidget(b)
        ll.addLayout(votes)
        reason_row = QHBoxLayout()
        self.reason = QLineEdit()
        self.reason.setObjectName("compareReason")
        self.reason.setPlaceholderText("Why? (optional) — e.g. “B's drums are too busy”")
        self.reason.setToolTip("Saved with your vote. Enter returns to the keys (A, B, Space, 1–4).")
        self.reason.returnPressed.connect(lambda: self.setFocus())
        self.skip_button = QPushButton("Skip →")
        self.skip_button.setToolTip("Rate this pair later (it stays pending)")
        self.skip_button.clicked.connect(self.skip)
        self.undo_button = QPushButton("Undo last vote   (Ctrl+Z)")
        self.undo_button.setObjectName("compareUndo")
        self.undo_button.setToolTip("Delete your last vote; its pair comes back to be rated again")
        self.undo_button.clicked.connect(self.undo)
        reason_row.addWidget(self.reason, 1)
        reason_row.addWidget(self.skip_button)
        reason_row.addWidget(self.undo_button)
        ll.addLayout(reason_row)

        # right: statistics and history -------------------------------------------------------
        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(6, 0, 0, 0)
        stats_box = QGroupBox("Statistics")
        sl = QVBoxLayout(stats_box)
        self.stats_label = QLabel("No votes yet.")
        self.stats_label.setObjectName("compareStats")
        self.stats_label.setWordWrap(True)
        self.stats_label.setTextFormat(Qt.TextFormat.RichText)
        sl.addWidget(self.stats_label)
        rl.addWidget(stats_box)
        self.history_label = QLabel("<b>History</b>")
        rl.addWidget(self.history_label)
        self.history = QTableWidget(0, len(HISTORY_COLUMNS))
        self.history.setObjectName("compareHistory")
        self.history.setHorizontalHeaderLabels(list(HISTORY_COLUMNS))
        self.history.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.history.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.history.setAlternatingRowColors(True)
        self.history.setShowGrid(False)
        self.history.setWordWrap(False)
        self.history.verticalHeader().hide()
        self.history.verticalHeader().setDefaultSectionSize(24)
        head = self.history.horizontalHeader()
        head.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        head.setStretchLastSection(True)
        for col, width in zip(range(len(HISTORY_COLUMNS)), (92, 56, 150, 130, 120, 120, 62, 52, 64, 64),
                              strict=True):
            self.history.setColumnWidth(col, width)
        self.history.setToolTip("Your votes, newest first; A and B show which model, version and seed made them")
        rl.addWidget(self.history, 1)

        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(right)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        split.setSizes([640, 480])
        lay.addWidget(split, 1)

        # playback ---------------------------------------------------------------------------------
        self.player = ABPlayer(self.video_view.sink, self)
        self.player.positionChanged.connect(self._on_position)
        self.player.stateChanged.connect(self._on_playing)
        self.player.sideChanged.connect(self._on_side)
        self.player.listened.connect(self._on_listened)
        self.player.notice.connect(self.statusMessage)
        self.peaks = PeaksLoader(self)
        self.peaks.loaded.connect(self._on_peaks)

        # keys ---------------------------------------------------------------------------------------
        self.key_actions: dict[str, QAction] = {}
        keyed: list[tuple[str, str, Callable[..., Any]]] = [
            ("A", "Hear A", lambda: self.switch("a")), ("B", "Hear B", lambda: self.switch("b")),
            ("Space", "Play / pause", self.toggle_play)]
        keyed += [(key, text, lambda _c=False, ch=choice: self.vote(ch)) for choice, text, key in CHOICES]
        for key, text, slot in keyed:
            act = QAction(text, self)
            act.setShortcut(QKeySequence(key))
            act.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            act.triggered.connect(slot)
            self.addAction(act)
            self.key_actions[key] = act
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)

        client.jobAdded.connect(self._on_job_added)
        self._update_queue_button()
        self._show(None)

    # helpers ------------------------------------------------------------------------------------------
    def rater_name(self) -> str:
        return self.rater.currentText().strip() or "default"

    def _fill_raters(self, raters: dict[str, Any]) -> None:
        """The rater list: everyone who voted (with their vote count as a tooltip) and the
        current name, which stays selected."""
        cur = self.rater_name()
        names = sorted(set(raters) | {cur, "default"})
        self.rater.blockSignals(True)
        self.rater.clear()
        for i, name in enumerate(names):
            self.rater.addItem(name)
            n = int(raters.get(name) or 0)
            self.rater.setItemData(i, f"{n} vote{'s' if n != 1 else ''}", Qt.ItemDataRole.ToolTipRole)
        self.rater.setCurrentText(cur)
        self.rater.blockSignals(False)

    def _update_queue_button(self) -> None:
        n = int(self.n_spin.value())
        self.queue_button.setText(f"Rate {n} pair{'s' if n != 1 else ''}")
        self.queue_button.setEnabled("prefs.queue" in self.registry
                                     and (self.queue_job is None or self.queue_job.done))

    def _submit(self, command: str, params: dict[str, Any], title: str, *, visible: bool = False,
                on_done: Any = None, what: str = "") -> Job | None:
        """Run ``command``; failures are shown inline (``what`` failed: message)."""
        if command not in self.registry:
            self._show_error(f"This installation has no '{command}' command.")
            return None
        job = self.client.submit(command, params, title=title, visible=visible)
        self._own.add(job.id)
        what = what or title

        def failed(err: Any) -> None:
            if isinstance(err, dict) and err.get("kind") == "cancelled":
                self.statusMessage.emit(f"{what}: cancelled")
            else:
                msg = err.get("message") if isinstance(err, dict) else str(err)
                self._show_error(f"{what} failed: {msg or 'unknown error'}")
            self._update_buttons()

        if job.state == FAILED:  # rejected while binding the parameters
            failed(job.error or {})
            return job
        if on_done is not None:
            job.finished.connect(on_done)
        job.finished.connect(lambda _r: self._update_buttons())
        job.failed.connect(failed)
        return job

    def _show_error(self, message: str) -> None:
        self.error.setText(_esc(message))
        self.error.show()
        self.statusMessage.emit(message)

    def _on_job_added(self, job: Job) -> None:
        # prefs commands run from the palette, menus or a drop change the history and the queue too
        if job.id not in self._own and job.command_id in PREFS_REFRESHING:
            job.finished.connect(lambda _r: self.refresh())

    # Ctrl+Z inside this workspace undoes the last vote at once and brings its pair back (the
    # prefs.undo command has no global shortcut: Ctrl+Z elsewhere belongs to other workspaces).
    # The override is claimed here, so the key reaches keyPressEvent even if a window-level
    # shortcut is ever bound to it; a text field with the focus (the reason) still gets it first.
    def event(self, e: QEvent) -> bool:
        if e.type() == QEvent.Type.ShortcutOverride and isinstance(e, QKeyEvent) \
                and e.matches(QKeySequence.StandardKey.Undo):
            e.accept()
            return True
        return super().event(e)

    def keyPressEvent(self, e: QKeyEvent) -> None:
        if e.matches(QKeySequence.StandardKey.Undo):
            e.accept()
            self.undo()
            return
        super().keyPressEvent(e)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self.refresh()  # votes and pairs made elsewhere (CLI, scripts, other tabs) show up here

    # loading -------------------------------------------------------------------------------------------
    def refresh(self) -> Job | None:
        """Reload the history, the pending pairs (``prefs.list``) and the statistics (``prefs.stats``)."""
        self.load_stats()
        if "prefs.list" not in self.registry:
            return None
        job = self._submit("prefs.list", {}, "Load preference history", what="Loading the history")
        if job is not None:
            job.finished.connect(lambda r, j=job: self._on_list(j, r))
        self.list_job = job
        return job

    def load_stats(self) -> Job | None:
        if "prefs.stats" not in self.registry:
            return None
        job = self._submit("prefs.stats", {}, "Preference statistics", on_done=self._on_stats,
                           what="Loading the statistics")
        self.stats_job = job
        return job

    def _on_list(self, job: Job | None, result: Result) -> None:
        if job is not self.list_job:
            return
        data = result.data if isinstance(result.data, dict) else {}
        pairs = [p for p in data.get("pairs") or [] if isinstance(p, dict)]
        self._set_history([p for p in pairs if p.get("vote")])
        self._merge_pending([p for p in pairs if not p.get("vote")])

    def _merge_pending(self, pending: list[dict[str, Any]], *, replace: bool = False) -> None:
        """Keep the queue in step with the store: pairs voted elsewhere leave it, new pending ones join."""
        by_id = {str(p.get("pair_id")): p for p in pending if str(p.get("pair_id")) not in self._voted}
        if replace:
            keep = [by_id[i] for i in by_id]
        else:
            keep = [by_id[str(p.get("pair_id"))] for p in self.queue if str(p.get("pair_id")) in by_id]
            seen = {str(p.get("pair_id")) for p in keep}
            keep += sorted((p for i, p in by_id.items() if i not in seen), key=lambda p: float(p.get("created") or 0))
        want = self._want_pair
        if want is not None and want in by_id:
            keep = [by_id[want]] + [p for p in keep if str(p.get("pair_id")) != want]
            self._want_pair = None
        cur = str(self.current.get("pair_id")) if self.current else None
        self.queue = keep
        if keep and (cur is None or str(keep[0].get("pair_id")) != cur):
            self._show(keep[0])
        elif not keep:
            self._show(None)
        else:
            self.current = keep[0]
            self._update_pair_label()

    def fill_queue(self, n: int | None = None) -> Job | None:
        """*Rate N pairs*: ``prefs.queue`` — the pending pairs, topped up to N from recent work."""
        n = int(n if n is not None else self.n_spin.value())
        self.state.set("prefs_queue_n", n)
        self.error.hide()
        job = self._submit("prefs.queue", {"n": n}, f"Line up {n} pairs to rate", visible=True,
                           what="Lining up pairs")
        if job is not None:
            job.finished.connect(lambda r, j=job: self._on_queue(j, r))
        self.queue_job = job
        self._update_queue_button()
        if job is not None and job.done:
            self.queue_job = None
            self._update_queue_button()
        return job

    def _on_queue(self, job: Job | None, result: Result) -> None:
        if job is not self.queue_job:
            return
        self.queue_job = None
        data = result.data if isinstance(result.data, dict) else {}
        pairs = [p for p in data.get("pairs") or [] if isinstance(p, dict) and not p.get("vote")]
        self._merge_pending(pairs, replace=True)
        self._update_queue_button()
        if pairs:
            self.statusMessage.emit(f"{len(pairs)} pair{'s' if len(pairs) != 1 else ''} to rate — "
                                    "A / B to listen, 1–4 to vote")
        else:
            self.statusMessage.emit(result.message or "No pairs to rate: generate or match some music first.")
        self.setFocus()

    # showing a pair -------------------------------------------------------------------------------------
    def _show(self, pair: dict[str, Any] | None) -> None:
        self.current = pair
        self.listens = []
        self.shown_at = time.monotonic()
        self.reason.clear()
        self._peaks = {}
        if pair is None:
            self.player.unload()
            self.video_view.hide()
            for panel in self.panels.values():
                panel.waveform.clear("No pair to compare")
                panel.info.clear()
            self.prompt_label.setText(
                "No pairs to rate. <b>Rate N pairs</b> lines some up from your recent work (two generations of "
                "the same controls, or two tracks for the same clip); <code>studio prefs pair A B</code> "
                "compares any two results.")
        else:
            a, b = pair.get("a") or {}, pair.get("b") or {}
            prompt = str(pair.get("prompt") or "")
            controls = controls_text(pair.get("controls") or {})
            video = str(pair.get("video") or a.get("video") or "")
            if prompt:
                parts = [f"<b>{_esc(prompt)}</b>"]
            elif video:
                parts = ["<b>Which track fits the clip better?</b>"]
            else:
                parts = ["<i>(no prompt)</i>"]
            if controls:
                parts.append(f"<span style='color:gray'>{_esc(controls)}</span>")
            if video:
                parts.append(f"<span style='color:gray'>{_esc(clip_text(video, pair.get('controls') or {}))}"
                             "</span>")
            self.prompt_label.setText("<br>".join(parts))
            c = pair.get("controls") or {}
            self.player.load(str(a.get("audio") or ""), str(b.get("audio") or ""),
                             a_offset=candidate_offset(a), b_offset=candidate_offset(b), video=video,
                             video_start=float(c.get("start") or 0.0) if video else 0.0,
                             video_end=float(c.get("end") or 0.0) if video else 0.0)
            self.video_view.setVisible(bool(video))
            if video:
                self.video_view.clear("Loading the clip…")
            for side, cand in (("a", a), ("b", b)):
                panel = self.panels[side]
                panel.waveform.clear("Loading waveform…")
                panel.info.setText("")
                key = f"{pair.get('pair_id')}:{side}"
                self.peaks.request(key, str(cand.get("audio") or ""))
        self._update_pair_label()
        self._update_buttons()
        self._on_position(0.0)
        self.pairShown.emit(pair)

    def _on_peaks(self, key: str, peaks: list[float], duration: float, error: str) -> None:
        pid, _, side = key.rpartition(":")
        if self.current is None or str(self.current.get("pair_id")) != pid or side not in self.panels:
            return
        panel = self.panels[side]
        if error:
            panel.waveform.clear(f"No waveform: {error}")
            return
        self._peaks[side] = (peaks, duration)
        # both sides on one scale: a quieter take looks quieter
        scale = max((max(p, default=0.0) for p, _d in self._peaks.values()), default=0.0) or 1.0
        for s, (p, d) in self._peaks.items():
            self.panels[s].waveform.set_track([v / scale for v in p], [], d)
        off = candidate_offset(self.current.get(side) or {})
        extra = f" · plays from {off:.1f} s" if off > 0 else ""
        self._update_windows()
        panel.info.setText(f"<span style='color:gray'>{duration:.1f} s{extra}</span>")
        self._on_position(self.player.position())

    def _update_windows(self) -> None:
        """For a video pair, the part of each track under the clip stays bright."""
        length = self.player.duration() if self.player.has_video else 0.0
        for side, panel in self.panels.items():
            off = self.player.offsets.get(side, 0.0)
            panel.waveform.set_window((off, off + length) if length > 0 else None)

    def _update_pair_label(self) -> None:
        if self.current is None:
            self.pair_label.setText("<b>Compare</b>")
            return
        kind = str(self.current.get("kind") or "")
        src = str(self.current.get("source") or "")
        src_text = {"queue": "from your recent work", "manual": "made by you", "import": "imported",
                    "eval": "evaluation"}.get(src, src)
        self.pair_label.setText(
            f"<b>Pair 1 of {len(self.queue)}</b>&nbsp;&nbsp;<span style='color:gray'>"
            f"{_esc(KIND_LABEL.get(kind, kind))}{' · ' + _esc(src_text) if src_text else ''} · "
            "which one is better?</span>")

    def _update_buttons(self) -> None:
        have = self.current is not None
        idle = self.vote_job is None or self.vote_job.done
        can_vote = have and idle and "prefs.vote" in self.registry
        for b in self.vote_buttons.values():
            b.setEnabled(can_vote)
        self.play_button.setEnabled(have)
        for panel in self.panels.values():
            panel.button.setEnabled(have)
        self.skip_button.setEnabled(have and len(self.queue) > 1)
        self.undo_button.setEnabled("prefs.undo" in self.registry and idle
                                    and (self.undo_job is None or self.undo_job.done))
        self._update_queue_button()

    # playback --------------------------------------------------------------------------------------------
    def toggle_play(self) -> None:
        if self.current is not None:
            self.player.toggle()

    def switch(self, side: str) -> None:
        """Hear ``side`` (``"a"`` / ``"b"``) from the same position."""
        if self.current is None:
            return
        if side == self.player.side:
            self._on_side(side)  # keep the button checked
            return
        self.player.switch(side)

    def _seek_on(self, side: str, track_time: float) -> None:
        """A click on a waveform: hear that side from there."""
        if self.current is None:
            return
        self.switch(side)
        self.player.seek(track_time - self.player.offsets[side])

    def _on_position(self, t: float) -> None:
        if self.player.has_video and not any(p.waveform.window_s for p in self.panels.values()):
            self._update_windows()  # the clip's length is known once it has loaded
        for side, panel in self.panels.items():
            panel.waveform.set_position(self.player.offsets.get(side, 0.0) + t)
        total = self.player.duration()
        self.position_label.setText(f"{t:.1f} / {total:.1f} s" if total > 0 else f"{t:.1f} s")

    def _on_playing(self, playing: bool) -> None:
        self.play_button.setText("❚❚  Pause   (Space)" if playing else "▶  Play   (Space)")

    def _on_side(self, side: str) -> None:
        for s, panel in self.panels.items():
            panel.set_active(s == side)
        self.hearing_label.setText(f"hearing <b>{side.upper()}</b>" if self.current else "")

    def _on_listened(self, action: str, side: str, pos: float) -> None:
        if self.current is None:
            return
        self.listens.append({"side": side, "t": round(time.monotonic() - self.shown_at, 3),
                             "pos": round(float(pos), 3), "action": action})

    # voting --------------------------------------------------------------------------------------------
    def vote(self, choice: str) -> Job | None:
        """Store the vote (``prefs.vote``) with the listen events and the decision time; next pair."""
        pair = self.current
        if pair is None or (self.vote_job is not None and not self.vote_job.done):
            return None
        decision_ms = int(round((time.monotonic() - self.shown_at) * 1000))
        self.player.pause(log=False)
        params = {"pair_id": str(pair["pair_id"]), "choice": choice, "reason": self.reason.text().strip(),
                  "rater": self.rater_name(), "decision_ms": decision_ms, "listens": json.dumps(self.listens)}
        self.state.set("prefs_rater", self.rater_name())
        self.error.hide()
        job = self._submit("prefs.vote", params, f"Vote {CHOICE_LABEL[choice]}",
                           on_done=lambda r: self._on_voted(pair, r), what="Saving the vote")
        self.vote_job = job
        self._update_buttons()
        self.setFocus()
        return job

    def _on_voted(self, pair: dict[str, Any], result: Result) -> None:
        vote = result.data if isinstance(result.data, dict) else {}
        pid = str(pair.get("pair_id"))
        self._voted.add(pid)
        self.queue = [p for p in self.queue if str(p.get("pair_id")) != pid]
        done = {**pair, "vote": vote or {"choice": "?"}}
        self._set_history([done] + [p for p in self.history_pairs if str(p.get("pair_id")) != pid])
        self._show(self.queue[0] if self.queue else None)
        self.statusMessage.emit(f"Vote saved: {CHOICE_LABEL.get(str(vote.get('choice')), '?')}"
                                + (f" — {len(self.queue)} to go" if self.queue else " — all rated"))
        self.voted.emit(vote)
        self.refresh()

    def skip(self) -> None:
        if self.current is None or len(self.queue) < 2:
            return
        self.queue = self.queue[1:] + self.queue[:1]
        self._show(self.queue[0])

    def undo(self) -> Job | None:
        """``prefs.undo``: the last vote is deleted and its pair comes back first in the queue."""
        if self.undo_job is not None and not self.undo_job.done:
            return None
        if self.vote_job is not None and not self.vote_job.done:
            return None
        params: dict[str, Any] = {}
        cmd = self.registry.get("prefs.undo") if "prefs.undo" in self.registry else None
        if cmd is not None and any(p.name == "rater" for p in cmd.params):
            params["rater"] = self.rater_name()
        self.player.pause(log=False)
        self.error.hide()
        job = self._submit("prefs.undo", params, "Undo last vote", on_done=self._on_undone,
                           what="Undoing the last vote")
        self.undo_job = job
        self._update_buttons()
        return job

    def _on_undone(self, result: Result) -> None:
        data = result.data if isinstance(result.data, dict) else {}
        pid = str(data.get("pair_id") or "")
        if not pid:
            return
        self._want_pair = pid
        self._voted.discard(pid)
        self.history_pairs = [p for p in self.history_pairs if str(p.get("pair_id")) != pid]
        self._set_history(self.history_pairs)
        self.statusMessage.emit("Last vote undone — the pair is back to be rated again")
        self.undone.emit(pid)
        self.refresh()

    # history & statistics ----------------------------------------------------------------------------
    def _set_history(self, pairs: list[dict[str, Any]]) -> None:
        pairs = sorted(pairs, key=lambda p: float((p.get("vote") or {}).get("created") or p.get("created") or 0),
                       reverse=True)
        self.history_pairs = pairs
        self.history.setRowCount(len(pairs))
        for row, p in enumerate(pairs):
            v = p.get("vote") or {}
            dms = v.get("decision_ms")
            cells = (fmt_when(v.get("created") or p.get("created")),
                     CHOICE_LABEL.get(str(v.get("choice")), str(v.get("choice") or "")),
                     str(p.get("prompt") or ""), str(v.get("reason") or ""),
                     candidate_source(p.get("a") or {}), candidate_source(p.get("b") or {}),
                     f"{float(dms) / 1000:.1f} s" if isinstance(dms, int | float) else "",
                     str(len(v.get("listens") or [])), str(v.get("rater") or ""), str(p.get("kind") or ""))
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(text)
                if col == 0:
                    item.setData(PAIR_ROLE, p)
                    item.setToolTip(f"pair {p.get('pair_id')} · vote {v.get('vote_id', '')}")
                if col in (4, 5) and str(v.get("choice")) == "ab"[col - 4]:
                    f = item.font()
                    f.setBold(True)
                    item.setFont(f)
                self.history.setItem(row, col, item)
        n = len(pairs)
        self.history_label.setText(f"<b>History</b>&nbsp;&nbsp;<span style='color:gray'>{n} vote"
                                   f"{'s' if n != 1 else ''}, newest first</span>")
        self.historyLoaded.emit(n)

    def history_rows(self) -> list[dict[str, str]]:
        """The history table as text, one dict per row (column title → cell)."""
        def text(r: int, c: int) -> str:
            item = self.history.item(r, c)
            return item.text() if item is not None else ""

        return [{HISTORY_COLUMNS[c]: text(r, c) for c in range(len(HISTORY_COLUMNS))}
                for r in range(self.history.rowCount())]

    def _on_stats(self, result: Result) -> None:
        s = result.data if isinstance(result.data, dict) else {}
        self.stats = s
        if isinstance(s.get("raters"), dict):
            self._fill_raters(s["raters"])
        votes, pending = int(s.get("votes") or 0), int(s.get("pending") or 0)
        by_choice = s.get("by_choice") or {}
        by_kind = s.get("by_kind") or {}
        lines = [f"<b>{votes}</b> vote{'s' if votes != 1 else ''} · <b>{pending}</b> pending"]
        if by_choice:
            lines.append(" · ".join(f"{_esc(CHOICE_LABEL.get(k, k))}: {int(v)}" for k, v in by_choice.items()))
        kinds = [(k, int(v)) for k, v in by_kind.items() if int(v or 0) > 0]
        if kinds:
            lines.append("<span style='color:gray'>on " + " · ".join(
                f"{_esc(KIND_VOTES.get(k, k))} {v}" for k, v in kinds) + "</span>")
        reward = s.get("reward")
        if isinstance(reward, dict) and reward:
            agree = reward.get("agreement")
            ver = _esc(reward.get("model_version") or "")
            n = reward.get("n")
            of = f"{int(n)} decisive votes" if isinstance(n, int) and n > 0 else "your votes"
            if isinstance(agree, int | float):
                lines.append(f"Reward model <b>{ver}</b> agrees with <b>{100 * float(agree):.0f}%</b> of {of}")
            else:
                lines.append(f"Reward model <b>{ver}</b>")
        else:
            lines.append("<span style='color:gray'>No reward model yet"
                         + (" — Train reward model fits one on your votes" if "prefs.train-reward" in self.registry
                            else "") + ".</span>")
        self.stats_label.setText("<br>".join(lines))
        self.statsLoaded.emit(s)

    # export / import / learning ------------------------------------------------------------------------
    def export(self, fmt: str, out: str) -> Job | None:
        """``prefs.export`` to ``out`` in ``fmt`` (``trl``, ``bundle`` or ``csv``); shown in the jobs dock."""
        self.error.hide()
        return self._submit("prefs.export", {"format": fmt, "out": out}, f"Export preferences ({fmt})",
                            visible=True, what="Export",
                            on_done=lambda r: self.statusMessage.emit(r.message or f"Exported to {out}"))

    def export_dialog(self) -> ExportDialog:
        dlg = ExportDialog(self.client.home.exports, self)
        dlg.accepted.connect(lambda: self.export(dlg.fmt, dlg.params()["out"]))
        dlg.open()
        return dlg

    def import_bundle(self, bundle: str) -> Job | None:
        """``prefs.import``: merge a bundle; duplicates are skipped."""
        self.error.hide()

        def done(result: Result) -> None:
            d = result.data if isinstance(result.data, dict) else {}
            self.statusMessage.emit(result.message or f"Imported {d.get('added', 0)} pairs "
                                                      f"({d.get('duplicates', 0)} already here)")
            self.refresh()

        return self._submit("prefs.import", {"bundle": bundle}, f"Import {Path(bundle).name}", visible=True,
                            on_done=done, what="Import")

    def import_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Import a preference bundle: its .zip, or any file in its folder", str(self.client.home.exports),
            "Preference bundles (*.zip manifest.json pairs.jsonl);;All files (*)")
        if path:
            self.import_bundle(path if path.lower().endswith(".zip") else str(Path(path).parent))

    def train_reward(self) -> Job | None:
        """``prefs.train-reward`` with its defaults; the statistics show the new agreement when done."""
        self.error.hide()

        def done(result: Result) -> None:
            self.statusMessage.emit((result.message or "Reward model trained").splitlines()[0])
            self.load_stats()

        self.train_job = self._submit("prefs.train-reward", {}, "Train the reward model", visible=True,
                                      on_done=done, what="Training the reward model")
        return self.train_job

    def finetune(self) -> Job | None:
        """``prefs.finetune`` with its defaults: a new generator version (select / revert: ``prefs.models``)."""
        self.error.hide()
        self.finetune_job = self._submit(
            "prefs.finetune", {}, "Fine-tune the generator on your votes", visible=True, what="Fine-tuning",
            on_done=lambda r: self.statusMessage.emit((r.message or "Fine-tuned: a new model version").splitlines()[0]))
        return self.finetune_job

    def shutdown(self) -> None:
        self.player.unload()
        self.peaks.wait(2000)


__all__ = ["CompareWorkspace", "ExportDialog", "SidePanel", "controls_text"]
