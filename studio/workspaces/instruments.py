"""The Instruments workspace: which of my presets and samples sound like the instruments of this song?

Everything runs as commands: ``instruments.list`` / ``add`` / ``remove`` (the sources panel),
``instruments.find`` (one group per detected instrument with its closest matches),
``instruments.render`` (a preset's audition phrase as a WAV in exports/, played and dragged
out) and ``instruments.similar`` ("More like this").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QMimeData, QSize, Qt, QUrl, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QGuiApplication
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDoubleSpinBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSplitter,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engines.core.registry import Registry, Result
from studio.dragdrop import drag_files, mime_for_files, paths_from_mime
from studio.jobs import Job, JobClient
from studio.state import GuiState
from studio.widgets.player import Player
from studio.widgets.sources import SourcesPanel, SourcesSpec

HONEST_NOTE = ("Matches are approximate: well above chance on unseen SoundFonts, weaker on real "
               "recordings (see BENCHMARKS.md).")
SOUNDFONT_EXTENSIONS = (".sf2", ".sf3")
SONG_FILTER = "Audio (*.wav *.flac *.mp3 *.ogg *.aiff *.aif *.m4a);;All files (*)"
NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")

MATCH_ROLE = Qt.ItemDataRole.UserRole + 20
SLOT_ROLE = Qt.ItemDataRole.UserRole + 21


def note_name(note: Any) -> str:
    try:
        n = int(note)
    except (TypeError, ValueError):
        return "?"
    return f"{NOTE_NAMES[n % 12]}{n // 12 - 1}"


def slot_title(slot: dict[str, Any]) -> str:
    presence = slot.get("presence")
    pres = f", present {float(presence):.2f}" if isinstance(presence, int | float) else ""
    return f"Instrument {int(slot.get('index', 0)) + 1} — around {note_name(slot.get('note'))}{pres}"


def is_source_path(path: str) -> bool:
    p = Path(path)
    return p.is_dir() or p.suffix.lower() in SOUNDFONT_EXTENSIONS


def _source_rows(data: Any) -> list[dict[str, Any]]:
    return list((data if isinstance(data, dict) else {}).get("sources") or [])


def _source_label(s: dict[str, Any]) -> tuple[str, str]:
    path = str(s.get("path") or "")
    errors = f", {s['errors']} bad file(s)" if s.get("errors") else ""
    return f"{Path(path).name or path}\n{s.get('kind', '')} · {s.get('instruments', 0)} instruments{errors}", path


def _sources_note(data: Any, rows: list[dict[str, Any]]) -> str:
    stale = (data if isinstance(data, dict) else {}).get("stale") or []
    if stale:
        return f"{len(stale)} source(s) were indexed with another model: add them again."
    return "" if rows else "No sources yet: add a SoundFont or a folder of samples."


class MatchTree(QTreeWidget):
    """Slots and their matches; dragging a match hands over its audio file (sample or rendered WAV)."""

    def __init__(self, workspace: InstrumentsWorkspace) -> None:
        super().__init__()
        self.workspace = workspace

    def startDrag(self, supportedActions: Qt.DropAction) -> None:  # noqa: ARG002
        item = self.currentItem()
        mime = self.workspace.mime_for_item(item) if item is not None else None
        if mime is None:
            if item is not None and item.data(0, MATCH_ROLE):
                self.workspace.statusMessage.emit("Rendering the preset — drag it again in a moment.")
            return
        drag_files(self, mime)


class InstrumentsWorkspace(QWidget):
    """Sources on the left; a song, its detected instruments and their matches on the right."""

    statusMessage = Signal(str)
    sourcesLoaded = Signal(int)
    resultsShown = Signal(int)  # number of slots
    auditionReady = Signal(str)  # path of the WAV / sample being auditioned

    def __init__(self, client: JobClient, registry: Registry, state: GuiState,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.client = client
        self.registry = registry
        self.state = state
        self.song = ""
        self.slots: list[dict[str, Any]] = []
        self.rendered: dict[tuple[int, int | None], str] = {}
        self.current_match: dict[str, Any] | None = None
        self.current_note: int | None = None
        self.audition_path = ""
        self.find_job: Job | None = None
        self._render_job: Job | None = None
        self.setAcceptDrops(True)

        root = QHBoxLayout(self)
        root.setContentsMargins(8, 8, 8, 8)
        split = QSplitter(Qt.Orientation.Horizontal)
        root.addWidget(split)

        # sources -------------------------------------------------------------
        self.sources_panel = SourcesPanel(client, registry, SourcesSpec(
            title="Your instruments",
            hint="SoundFonts (.sf2/.sf3) and sample folders to search. Drop them here.",
            list_command="instruments.list", add_command="instruments.add", remove_command="instruments.remove",
            object_name="instrumentSources", rows=_source_rows, label=_source_label, note=_sources_note,
            files_caption="Add SoundFonts or samples",
            file_filter="SoundFonts and samples (*.sf2 *.sf3 *.wav *.flac *.aif *.aiff *.ogg);;All files (*)",
            folder_caption="Add a folder of samples or SoundFonts",
            list_title="List instrument sources", add_title="Index instruments", what="instrument sources"))
        self.sources_box = self.sources_panel
        self.source_list = self.sources_panel.list
        self.sources_panel.loaded.connect(self.sourcesLoaded)
        self.sources_panel.statusMessage.connect(self.statusMessage)
        self.sources_panel.errorMessage.connect(self.show_error)
        split.addWidget(self.sources_panel)

        # song + results ---------------------------------------------------------
        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(4, 0, 0, 0)
        song_row = QHBoxLayout()
        self.song_label = QLabel("Drop a song here (or Open…) to find the instruments playing in it.")
        self.song_label.setObjectName("instrumentsSong")
        self.song_label.setWordWrap(True)
        self.open_button = QPushButton("Open…")
        self.open_button.clicked.connect(self._ask_song)
        song_row.addWidget(self.song_label, 1)
        song_row.addWidget(self.open_button)
        rl.addLayout(song_row)

        region = QHBoxLayout()
        self.start_spin = self._time_spin("from the start")
        self.end_spin = self._time_spin("to the end")
        self.find_button = QPushButton("Find instruments")
        self.find_button.setObjectName("instrumentsFind")
        self.find_button.setDefault(True)
        self.find_button.clicked.connect(lambda: self.find())
        region.addWidget(QLabel("Region:"))
        region.addWidget(self.start_spin)
        region.addWidget(QLabel("–"))
        region.addWidget(self.end_spin)
        region.addStretch(1)
        region.addWidget(self.find_button)
        rl.addLayout(region)

        self.error_label = QLabel()
        self.error_label.setObjectName("instrumentsError")
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet("color: #e0554d;")
        self.error_label.hide()
        rl.addWidget(self.error_label)

        self.tree = MatchTree(self)
        self.tree.setObjectName("instrumentMatches")
        self.tree.setColumnCount(4)
        self.tree.setHeaderLabels(["Match", "Kind", "Bank / program", "Score"])
        self.tree.setAlternatingRowColors(True)
        self.tree.setDragEnabled(True)
        self.tree.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        header = self.tree.header()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setStretchLastSection(False)
        for col, width in ((1, 70), (2, 110), (3, 60)):
            self.tree.setColumnWidth(col, width)
        self.tree.currentItemChanged.connect(self._on_current)
        self.tree.itemDoubleClicked.connect(lambda _i, _c: self.player.toggle())
        self.tree.setToolTip("Select a match to hear it; drag it into your DAW")
        rl.addWidget(self.tree, 1)

        actions = QHBoxLayout()
        self.play_button = QPushButton("▶  Play match")
        self.play_button.clicked.connect(self.player_toggle)
        self.ab_button = QPushButton("A/B: song ⇄ match")
        self.ab_button.setCheckable(True)
        self.ab_button.setToolTip("Switch between the song's region (A) and the selected match (B)")
        self.ab_button.toggled.connect(self._on_ab)
        self.similar_button = QPushButton("More like this")
        self.similar_button.clicked.connect(lambda: self.more_like_this())
        self.copy_button = QPushButton("Copy file + bank/program")
        self.copy_button.clicked.connect(self.copy_match)
        for b in (self.play_button, self.ab_button, self.similar_button, self.copy_button):
            actions.addWidget(b)
        actions.addStretch(1)
        rl.addLayout(actions)
        self.audition_label = QLabel("Select a match to audition it.")
        self.audition_label.setEnabled(False)
        rl.addWidget(self.audition_label)
        note = QLabel(HONEST_NOTE)
        note.setObjectName("instrumentsNote")
        note.setEnabled(False)
        note.setWordWrap(True)
        rl.addWidget(note)
        split.addWidget(right)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 3)
        split.setSizes([280, 760])

        self.player = Player(self)
        self.player.notice.connect(self.statusMessage)
        self.player.stateChanged.connect(self._on_playing)

        self._update_buttons()
        self.reload_sources()

    @staticmethod
    def _time_spin(special: str) -> QDoubleSpinBox:
        spin = QDoubleSpinBox()
        spin.setRange(0.0, 24 * 3600.0)
        spin.setDecimals(1)
        spin.setSingleStep(1.0)
        spin.setSuffix(" s")
        spin.setSpecialValueText(special)
        spin.setMinimumWidth(110)
        return spin

    # errors / state -----------------------------------------------------------
    def show_error(self, text: str) -> None:
        self.error_label.setText(text)
        self.error_label.setVisible(bool(text))

    def _failed(self, what: str) -> Any:
        def report(err: dict[str, Any]) -> None:
            if err.get("kind") == "cancelled":
                return
            self.show_error(f"{what}: {err.get('message') or err.get('kind')}")
        return report

    def _update_buttons(self) -> None:
        match = self.current_match
        self.find_button.setEnabled(bool(self.song))
        self.play_button.setEnabled(bool(self.audition_path))
        self.ab_button.setEnabled(bool(self.song and self.audition_path))
        self.similar_button.setEnabled(match is not None and "instruments.similar" in self.registry)
        self.copy_button.setEnabled(match is not None)

    # sources (the shared panel) ------------------------------------------------
    @property
    def sources(self) -> list[dict[str, Any]]:
        return self.sources_panel.rows

    @property
    def list_job(self) -> Job | None:
        return self.sources_panel.list_job

    def reload_sources(self) -> Job | None:
        return self.sources_panel.reload()

    def add_sources(self, paths: list[str]) -> Job | None:
        return self.sources_panel.add(paths)

    def remove_selected_sources(self) -> None:
        self.sources_panel.remove_selected()

    # drops --------------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if paths_from_mime(event.mimeData()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = paths_from_mime(event.mimeData())
        pos = self.sources_box.mapFrom(self, event.position().toPoint())
        on_sources = self.sources_box.rect().contains(pos)
        self.handle_dropped(paths, on_sources=on_sources)
        event.acceptProposedAction()

    def handle_dropped(self, paths: list[str], *, on_sources: bool = False) -> None:
        """SoundFonts and folders (anything, when dropped on the sources) are added; a song is loaded."""
        sources = [p for p in paths if on_sources or is_source_path(p)]
        songs = [p for p in paths if p not in sources and Path(p).is_file()]
        if sources:
            self.add_sources(sources)
        if songs:
            self.set_song(songs[0])

    # song + find ----------------------------------------------------------------
    def _ask_song(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a song", "", SONG_FILTER)
        if path:
            self.set_song(path)

    def set_song(self, path: str) -> None:
        self.song = str(path)
        self.song_label.setText(f"<b>{_esc(Path(path).name)}</b> &nbsp;<span style='color:gray'>"
                                f"{_esc(Path(path).parent)}</span>")
        self.song_label.setToolTip(str(path))
        self.show_error("")
        self._update_buttons()

    def find(self) -> Job | None:
        if not self.song:
            self.show_error("Drop a song first (or Open…).")
            return None
        params: dict[str, Any] = {"audio": self.song}
        start, end = self.start_spin.value(), self.end_spin.value()
        if start > 0:
            params["start"] = start
        if end > 0:
            if end <= start:
                self.show_error("The region's end must come after its start.")
                return None
            params["end"] = end
        self.show_error("")
        self.tree.clear()
        self.find_button.setEnabled(False)
        self.find_button.setText("Listening…")
        job = self.client.submit("instruments.find", params, title=f"Find instruments in {Path(self.song).name}")
        self.find_job = job
        job.finished.connect(lambda r, j=job: self._on_found(j, r))
        job.failed.connect(self._failed("Could not find the instruments"))
        job.changed.connect(lambda j=job: self._find_done() if j.done else None)
        return job

    def _find_done(self) -> None:
        self.find_button.setText("Find instruments")
        self._update_buttons()

    def _on_found(self, job: Job, result: Result) -> None:
        if job is not self.find_job:
            return
        data = result.data if isinstance(result.data, dict) else {}
        self.slots = [s for s in data.get("slots") or [] if isinstance(s, dict)]
        self.tree.clear()
        for slot in self.slots:
            self._add_group(slot_title(slot), slot, slot.get("matches") or [])
        warnings = [str(w) for w in data.get("warnings") or []]
        if not self.slots:
            warnings.insert(0, "No instrument was detected in this region.")
        self.show_error("\n".join(warnings))
        self.tree.expandAll()
        self.resultsShown.emit(len(self.slots))
        self.statusMessage.emit(f"{len(self.slots)} instrument(s) found")

    def _add_group(self, title: str, slot: dict[str, Any], matches: list[dict[str, Any]]) -> QTreeWidgetItem:
        group = QTreeWidgetItem([title])
        group.setSizeHint(0, QSize(0, 28))
        group.setData(0, SLOT_ROLE, slot)
        font = group.font(0)
        font.setBold(True)
        group.setFont(0, font)
        group.setFirstColumnSpanned(False)
        group.setFlags(Qt.ItemFlag.ItemIsEnabled)
        self.tree.addTopLevelItem(group)
        if not matches:
            empty = QTreeWidgetItem(["no match in your instruments"])
            empty.setFlags(Qt.ItemFlag.ItemIsEnabled)
            group.addChild(empty)
        for m in matches:
            if not isinstance(m, dict):
                continue
            bank, program = m.get("bank"), m.get("program")
            bp = f"{bank} / {program}" if bank is not None and program is not None else "—"
            score = m.get("score")
            item = QTreeWidgetItem([str(m.get("name") or ""), str(m.get("kind") or ""), bp,
                                    f"{float(score):.2f}" if isinstance(score, int | float) else ""])
            item.setData(0, MATCH_ROLE, m)
            item.setSizeHint(0, QSize(0, 24))
            item.setData(0, SLOT_ROLE, slot)
            item.setToolTip(0, str(m.get("sample_path") or m.get("source_path") or ""))
            item.setTextAlignment(3, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsDragEnabled)
            group.addChild(item)
        group.setExpanded(True)
        return group

    def match_items(self) -> list[QTreeWidgetItem]:
        out = []
        for i in range(self.tree.topLevelItemCount()):
            g = self.tree.topLevelItem(i)
            out += [g.child(j) for j in range(g.childCount()) if g.child(j).data(0, MATCH_ROLE)]
        return out

    # audition -----------------------------------------------------------------------
    def _on_current(self, item: QTreeWidgetItem | None, _prev: QTreeWidgetItem | None) -> None:
        match = item.data(0, MATCH_ROLE) if item is not None else None
        self.current_match = match
        slot = item.data(0, SLOT_ROLE) if item is not None else None
        self.current_note = int(slot["note"]) if isinstance(slot, dict) and slot.get("note") is not None else None
        self.audition_path = ""
        self._update_buttons()
        if match:
            self.audition(match, self.current_note)

    def audition_file(self, match: dict[str, Any], note: int | None) -> str:
        """The file a match sounds like (the sample, or its rendered WAV), or "" when not rendered yet."""
        if match.get("kind") == "sample" and match.get("sample_path") and Path(match["sample_path"]).is_file():
            return str(match["sample_path"])
        path = self.rendered.get((int(match["instrument_id"]), note), "")
        return path if path and Path(path).is_file() else ""

    def audition(self, match: dict[str, Any], note: int | None) -> Job | None:
        path = self.audition_file(match, note)
        if path:
            self._ready(match, path)
            return None
        params: dict[str, Any] = {"id": int(match["instrument_id"])}
        if note is not None and match.get("kind") == "preset":
            params["note"] = int(note)
        self.audition_label.setText(f"Rendering {match.get('name')}…")
        job = self.client.submit("instruments.render", params, title=f"Render {match.get('name')}", visible=False)
        self._render_job = job
        key = (int(match["instrument_id"]), note)
        job.finished.connect(lambda r, j=job, m=match, k=key: self._on_rendered(j, m, k, r))
        job.failed.connect(self._failed(f"Could not render {match.get('name')}"))
        return job

    def _on_rendered(self, job: Job, match: dict[str, Any], key: tuple[int, int | None], result: Result) -> None:
        data = result.data if isinstance(result.data, dict) else {}
        path = str(data.get("path") or (result.files[0] if result.files else ""))
        if path:
            self.rendered[key] = path
        if job is self._render_job and match is self.current_match and path:
            self._ready(match, path)

    def _ready(self, match: dict[str, Any], path: str) -> None:
        self.audition_path = path
        self.audition_label.setText(f"{match.get('name')} — {Path(path).name}  (drag the match into your DAW)")
        self._update_buttons()
        if self.ab_button.isChecked():
            self.ab_button.setChecked(False)  # back to B = the match
        self.player.load(path)
        self.player.play()
        self.auditionReady.emit(path)

    def player_toggle(self) -> None:
        if not self.player.playing and self.audition_path and not self.ab_button.isChecked():
            self.player.load(self.audition_path)
        self.player.toggle()

    def _on_ab(self, song_side: bool) -> None:
        """Checked: A = the song's region; unchecked: B = the match."""
        if song_side and self.song:
            self.player.load(self.song)
            self.player.play()
            if self.start_spin.value() > 0:
                self.player.seek(self.start_spin.value())
            self.audition_label.setText(f"A: {Path(self.song).name} (from {self.start_spin.value():.1f} s)")
        elif self.audition_path:
            self.player.load(self.audition_path)
            self.player.play()
            self.audition_label.setText(f"B: {Path(self.audition_path).name}")

    def _on_playing(self, playing: bool) -> None:
        self.play_button.setText("■  Stop" if playing else "▶  Play match")

    # drag out / copy / similar -------------------------------------------------------
    def mime_for_item(self, item: QTreeWidgetItem) -> QMimeData | None:
        match = item.data(0, MATCH_ROLE)
        if not match:
            return None
        slot = item.data(0, SLOT_ROLE)
        note = int(slot["note"]) if isinstance(slot, dict) and slot.get("note") is not None else None
        path = self.audition_file(match, note)
        return mime_for_files([path]) if path else None

    def copy_match(self) -> str:
        match = self.current_match
        if not match:
            return ""
        path = self.audition_file(match, self.current_note)
        if match.get("kind") == "preset":
            text = (f"{match.get('source_path')} — bank {match.get('bank')}, program {match.get('program')} "
                    f"({match.get('name')})")
        else:
            text = str(match.get("sample_path") or "")
        if path and path != match.get("sample_path"):
            text += f"\nrendered: {path}"
        mime = QMimeData()
        mime.setText(text)
        files = [f for f in (path, match.get("sample_path") or match.get("source_path")) if f and Path(f).is_file()]
        if files:
            mime.setUrls([QUrl.fromLocalFile(str(Path(files[0]).resolve()))])
        QGuiApplication.clipboard().setMimeData(mime)
        self.statusMessage.emit("Copied: " + text.split("\n", 1)[0])
        return text

    def more_like_this(self) -> Job | None:
        match = self.current_match
        if not match or "instruments.similar" not in self.registry:
            return None
        job = self.client.submit("instruments.similar", {"id": int(match["instrument_id"])},
                                 title=f"More like {match.get('name')}", visible=False)
        note = self.current_note
        job.finished.connect(lambda r, m=match, n=note: self._on_similar(m, n, r))
        job.failed.connect(self._failed("“More like this” failed"))
        return job

    def _on_similar(self, match: dict[str, Any], note: int | None, result: Result) -> None:
        data = result.data if isinstance(result.data, dict) else {}
        rows = [r for r in data.get("matches") or [] if isinstance(r, dict)]
        group = self._add_group(f"More like {match.get('name')}", {"note": note}, rows)
        self.tree.scrollToItem(group)
        self.statusMessage.emit(f"{len(rows)} instrument(s) like {match.get('name')}")


def _esc(text: Any) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
