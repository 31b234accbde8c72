"""The Generate workspace: text (and/or a MIDI file) in, multi-track MIDI, WAV mix and stems out.

Left: a prompt, *Resolve* (``generate.controls``) filling an editable form, *Generate*
(``generate.music`` with the text and the explicit fields), *Arrange a MIDI…*, and the
history of results. Right: the piano roll of the shown result, its tracks (solo / mute,
regenerate one with ``generate.track``), *Continue* (``generate.continue``), playback and
the files to drag into a DAW. Every result is its own set of files in ``exports/``:
going back in the history never loses anything.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

from PySide6.QtCore import QPoint, Qt, Signal
from PySide6.QtGui import (
    QAction,
    QDragEnterEvent,
    QDropEvent,
    QKeySequence,
    QMouseEvent,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QSplitter,
    QToolButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engines.core.registry import Registry, Result
from studio.dragdrop import drag_files, mime_for_files, paths_from_mime
from studio.jobs import FAILED, Job, JobClient
from studio.state import GuiState
from studio.widgets.pianoroll import PianoRoll, RollTrack, track_color
from studio.widgets.player import Player

EXAMPLE = "melancholic piano and strings in D minor, 70 bpm, 3/4, chords Dm Bb F A, 16 bars"
MODES = ("", "major", "minor", "dorian", "mixolydian", "phrygian", "lydian")
MIDI_SUFFIXES = (".mid", ".midi")
#: the model the generate commands load (tests and screenshots use "debug")
MODEL_ENV = "STUDIO_GENERATE_MODEL"

PATH_ROLE = Qt.ItemDataRole.UserRole + 1
DATA_ROLE = Qt.ItemDataRole.UserRole + 2
COL_NAME, COL_SOLO, COL_MUTE, COL_FILE = range(4)

SOLO_TIP = ("Play only the soloed track(s). Several stems are not mixed live: when more than one track is "
            "soloed (or left unmuted), the first of them is played.")


def _safe(name: str) -> str:  # as the engine names stem files
    keep = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name.strip())
    return keep[:40] or "track"


def _stem_name(path: str) -> str:
    stem = Path(path).stem
    head, _, rest = stem.partition("_")
    return rest if head.isdigit() and rest else stem


class FileChip(QLabel):
    """A file name that drags out as a file URL (the MIDI, the mix WAV)."""

    def __init__(self, icon: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.icon = icon
        self.path = ""
        self._press: QPoint | None = None
        self.setObjectName("fileChip")
        self.setStyleSheet("#fileChip { border: 1px solid palette(mid); border-radius: 5px; padding: 3px 8px; }"
                           "#fileChip:disabled { color: palette(mid); }")
        self.setCursor(Qt.CursorShape.OpenHandCursor)
        self.set_path("")

    def set_path(self, path: str) -> None:
        self.path = path or ""
        self.setText(f"<b>{self.icon}</b>&nbsp; {Path(self.path).name}" if self.path else f"<b>{self.icon}</b>&nbsp; —")
        self.setEnabled(bool(self.path))
        self.setToolTip(f"{self.path}\nDrag into your DAW or file manager" if self.path else "")

    def mime(self) -> Any:
        return mime_for_files([self.path])

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self._press = event.position().toPoint()
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._press is None or not (event.buttons() & Qt.MouseButton.LeftButton):
            return
        if (event.position().toPoint() - self._press).manhattanLength() < QApplication.startDragDistance():
            return
        self._press = None
        mime = self.mime()
        drag_files(self, mime)


class TrackList(QTreeWidget):
    """Tracks of the shown result; dragging rows out hands over their stem WAVs."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setColumnCount(4)
        self.setHeaderLabels(["Track", "Solo", "Mute", "Stem file"])
        self.setRootIsDecorated(False)
        self.setUniformRowHeights(True)
        self.setAlternatingRowColors(True)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setDragEnabled(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        head = self.header()
        head.setStretchLastSection(True)
        head.setSectionResizeMode(COL_NAME, QHeaderView.ResizeMode.ResizeToContents)
        head.setSectionResizeMode(COL_SOLO, QHeaderView.ResizeMode.ResizeToContents)
        head.setSectionResizeMode(COL_MUTE, QHeaderView.ResizeMode.ResizeToContents)
        self.headerItem().setToolTip(COL_SOLO, SOLO_TIP)
        self.headerItem().setToolTip(COL_MUTE, "Leave this track out of playback")

    def mime_for_selection(self) -> Any:
        return mime_for_files([i.data(COL_NAME, PATH_ROLE) or "" for i in self.selectedItems()])

    def startDrag(self, supportedActions: Qt.DropAction) -> None:  # noqa: ARG002
        mime = self.mime_for_selection()
        drag_files(self, mime)


class GenerateWorkspace(QWidget):
    """Text → controls → multi-track music; arrange, regenerate a track, continue; history."""

    statusMessage = Signal(str)
    resultShown = Signal(object)  # the result data dict
    controlsResolved = Signal(object)  # the controls dict

    def __init__(self, client: JobClient, registry: Registry, state: GuiState,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("generateWorkspace")
        self.client = client
        self.registry = registry
        self.state = state
        self.current: dict[str, Any] | None = None
        self.busy: Job | None = None
        self._resolve_job: Job | None = None
        self.setAcceptDrops(True)

        # left: prompt, controls, history ------------------------------------------
        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 6, 0)
        ll.addWidget(QLabel("<b>Describe the music</b>"))
        self.prompt = QPlainTextEdit()
        self.prompt.setObjectName("generatePrompt")
        self.prompt.setPlaceholderText(EXAMPLE)
        self.prompt.setPlainText(str(state.get("generate_prompt") or ""))
        self.prompt.setFixedHeight(64)
        ll.addWidget(self.prompt)
        row = QHBoxLayout()
        self.resolve_button = QPushButton("Resolve ↓")
        self.resolve_button.setToolTip("Read key, tempo, meter, chords, instruments… from the text into the "
                                       "fields below, to check and edit them before generating")
        self.resolve_button.clicked.connect(self.resolve)
        self.arrange_button = QPushButton("Arrange a MIDI…")
        self.arrange_button.setToolTip("Pick (or drop here) a .mid file: its tracks are kept note for note and the "
                                       "missing ones are added. Key, tempo, meter and chords come from the file; "
                                       "instruments, style, density, drums and seed from the fields.")
        self.arrange_button.clicked.connect(self.pick_midi)
        row.addWidget(self.resolve_button)
        row.addStretch(1)
        row.addWidget(self.arrange_button)
        ll.addLayout(row)

        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.key = QLineEdit()
        self.key.setPlaceholderText("auto (e.g. Dm, F#, Bb)")
        self.mode = QComboBox()
        self.mode.addItems([m or "auto" for m in MODES])
        self.tempo = QDoubleSpinBox()
        self.tempo.setRange(19.0, 300.0)
        self.tempo.setDecimals(0)
        self.tempo.setSpecialValueText("auto")
        self.tempo.setSuffix(" bpm")
        self.meter = QLineEdit()
        self.meter.setPlaceholderText("auto (4/4, 3/4, 6/8…)")
        self.bars = QSpinBox()
        self.bars.setRange(0, 256)
        self.bars.setSpecialValueText("auto")
        self.chords = QLineEdit()
        self.chords.setPlaceholderText("auto (one per bar, cycled: Dm Bb F A)")
        self.instruments = QLineEdit()
        self.instruments.setPlaceholderText("auto (piano, strings, bass)")
        self.style = QLineEdit()
        self.style.setPlaceholderText("auto (pop, lofi, jazz, cinematic…)")
        self.density = QDoubleSpinBox()
        self.density.setRange(-0.05, 1.0)
        self.density.setSingleStep(0.05)
        self.density.setSpecialValueText("auto")
        self.density.setToolTip("0 sparse … 1 busy")
        self.drums = QComboBox()
        self.drums.addItems(["auto", "on", "off"])
        seed_row = QHBoxLayout()
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.dice = QToolButton()
        self.dice.setText("⚄ Dice")
        self.dice.setToolTip("A new random seed")
        self.dice.clicked.connect(self.roll_seed)
        seed_row.addWidget(self.seed, 1)
        seed_row.addWidget(self.dice)
        for label, w in (("Key", self.key), ("Mode", self.mode), ("Tempo", self.tempo), ("Meter", self.meter),
                         ("Bars", self.bars), ("Chords", self.chords), ("Instruments", self.instruments),
                         ("Style", self.style), ("Density", self.density), ("Drums", self.drums)):
            form.addRow(label, w)
        form.addRow("Seed", seed_row)
        ll.addLayout(form)

        self.generate_button = QPushButton("Generate  (Ctrl+Enter)")
        self.generate_button.setObjectName("generateButton")
        self.generate_button.setDefault(True)
        self.generate_button.setToolTip("Generate with the text and the fields above (empty fields: auto)")
        self.generate_button.clicked.connect(self.generate)
        ll.addWidget(self.generate_button)
        for seq in ("Ctrl+Return", "Ctrl+Enter"):
            act = QAction("Generate", self)
            act.setShortcut(QKeySequence(seq))
            act.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            act.triggered.connect(self.generate)
            self.addAction(act)

        self.error = QLabel()
        self.error.setObjectName("generateError")
        self.error.setWordWrap(True)
        self.error.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error.setStyleSheet("#generateError { color: #ff6b6b; background: rgba(255, 80, 80, 0.10); "
                                 "border: 1px solid rgba(255, 80, 80, 0.5); border-radius: 5px; padding: 5px; }")
        self.error.hide()
        ll.addWidget(self.error)

        ll.addWidget(QLabel("<b>History</b>"))
        self.history = QListWidget()
        self.history.setObjectName("generateHistory")
        self.history.setToolTip("Every result keeps its own files; click one to go back to it")
        self.history.currentItemChanged.connect(self._on_history)
        ll.addWidget(self.history, 1)

        # right: result ---------------------------------------------------------------
        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(6, 0, 0, 0)
        head = QHBoxLayout()
        self.play_button = QPushButton("▶  Play")
        self.play_button.setObjectName("generatePlay")
        self.play_button.setToolTip("Play / stop the result (Space)")
        self.play_button.clicked.connect(self.toggle_play)
        self.info = QLabel("Describe the music on the left and press Generate.")
        self.info.setWordWrap(True)
        head.addWidget(self.play_button)
        head.addWidget(self.info, 1)
        rl.addLayout(head)

        self.roll = PianoRoll()
        self.roll.setObjectName("pianoRoll")
        rl.addWidget(self.roll, 5)

        files = QHBoxLayout()
        files.addWidget(QLabel("Drag out:"))
        self.midi_chip = FileChip("MIDI")
        self.wav_chip = FileChip("Mix")
        files.addWidget(self.midi_chip)
        files.addWidget(self.wav_chip)
        files.addStretch(1)
        rl.addLayout(files)

        self.tracks = TrackList()
        self.tracks.setObjectName("generateTracks")
        self.tracks.setToolTip("Drag a track out to get its stem WAV")
        self.tracks.itemChanged.connect(self._on_track_check)
        self.tracks.itemSelectionChanged.connect(self._update_buttons)
        self.tracks.setMaximumHeight(170)
        rl.addWidget(self.tracks, 1)

        acts = QHBoxLayout()
        self.regen_button = QPushButton("Regenerate track")
        self.regen_button.setToolTip("A new take of the selected track (new seed); the other tracks are kept")
        self.regen_button.clicked.connect(self.regenerate_track)
        self.continue_bars = QSpinBox()
        self.continue_bars.setRange(1, 64)
        self.continue_bars.setValue(4)
        self.continue_bars.setPrefix("+")
        self.continue_bars.setSuffix(" bars")
        self.continue_button = QPushButton("Continue")
        self.continue_button.setToolTip("Append bars to every track; the existing notes are kept")
        self.continue_button.clicked.connect(self.continue_piece)
        self.playing_label = QLabel()
        self.playing_label.setEnabled(False)
        acts.addWidget(self.regen_button)
        acts.addSpacing(12)
        acts.addWidget(self.continue_button)
        acts.addWidget(self.continue_bars)
        acts.addStretch(1)
        acts.addWidget(self.playing_label)
        rl.addLayout(acts)

        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(right)
        split.setStretchFactor(0, 0)
        split.setStretchFactor(1, 1)
        split.setSizes([330, 900])
        lay = QVBoxLayout(self)
        lay.setContentsMargins(8, 8, 8, 8)
        lay.addWidget(split)

        self.player = Player(self)
        self.player.stateChanged.connect(lambda on: self.play_button.setText("■  Stop" if on else "▶  Play"))
        self.player.positionChanged.connect(self.roll.set_position)
        self.player.notice.connect(self.statusMessage)
        self.roll.seekRequested.connect(self.player.seek)
        play = QAction("Play / stop", self)
        play.setShortcut(QKeySequence(Qt.Key.Key_Space))
        play.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        play.triggered.connect(self.toggle_play)
        right.addAction(play)
        self._update_buttons()

    # parameters ---------------------------------------------------------------------
    def roll_seed(self) -> None:
        self.seed.setValue(random.randrange(0, 1_000_000))

    def fields(self) -> dict[str, Any]:
        """The explicit controls of the form (empty / auto fields are left out)."""
        p: dict[str, Any] = {}
        for name, w in (("key", self.key), ("meter", self.meter), ("chords", self.chords),
                        ("instruments", self.instruments), ("style", self.style)):
            if w.text().strip():
                p[name] = w.text().strip()
        if self.mode.currentIndex() > 0:
            p["mode"] = self.mode.currentText()
        if self.tempo.value() > self.tempo.minimum():
            p["tempo"] = float(self.tempo.value())
        if self.bars.value() > 0:
            p["bars"] = int(self.bars.value())
        if self.density.value() > self.density.minimum():
            p["density"] = round(float(self.density.value()), 3)
        if self.drums.currentIndex() > 0:
            p["drums"] = self.drums.currentText() == "on"
        return p

    def fill(self, controls: dict[str, Any]) -> None:
        """Put resolved (or a result's) controls into the form."""
        def text(v: Any) -> str:
            return " ".join(map(str, v)) if isinstance(v, list | tuple) else ("" if v is None else str(v))
        self.key.setText(text(controls.get("key")))
        mode = str(controls.get("mode") or "")
        self.mode.setCurrentIndex(MODES.index(mode) if mode in MODES else 0)
        self.tempo.setValue(float(controls.get("tempo") or self.tempo.minimum()))
        self.meter.setText(text(controls.get("meter")))
        self.bars.setValue(int(controls.get("bars") or 0))
        self.chords.setText(text(controls.get("chords")))
        inst = controls.get("instruments")
        self.instruments.setText(", ".join(map(str, inst)) if isinstance(inst, list | tuple) else text(inst))
        self.style.setText(text(controls.get("style")))
        dens = controls.get("density")
        self.density.setValue(float(dens) if isinstance(dens, int | float) else self.density.minimum())
        drums = controls.get("drums")
        self.drums.setCurrentIndex(0 if drums is None else (1 if drums else 2))

    def _common(self) -> dict[str, Any]:
        p: dict[str, Any] = {"seed": int(self.seed.value())}
        model = os.environ.get(MODEL_ENV)
        if model:
            p["model"] = model
        return p

    # jobs ------------------------------------------------------------------------------
    def _run(self, command: str, params: dict[str, Any], title: str, *, visible: bool = True,
             on_done: Any = None, what: str = "") -> Job | None:
        if command not in self.registry:
            self._show_error(f"This installation has no '{command}' command.")
            return None
        self.error.hide()
        job = self.client.submit(command, params, title=title, visible=visible)
        what = what or title

        def failed(err: Any) -> None:
            msg = err.get("message") if isinstance(err, dict) else str(err)
            self._show_error(f"{what} failed: {msg or 'unknown error'}")
            self._job_ended(job)

        def finished(result: Result) -> None:
            self._job_ended(job)
            if on_done is not None:
                on_done(result)

        if job.state == FAILED:  # rejected while binding the parameters
            failed(job.error or {})
            return job
        job.finished.connect(finished)
        job.failed.connect(failed)
        if visible:
            self.busy = job
            self._update_buttons()
        return job

    def _job_ended(self, job: Job) -> None:
        if job is self.busy:
            self.busy = None
        self._update_buttons()

    def _show_error(self, message: str) -> None:
        self.error.setText(message)
        self.error.show()
        self.statusMessage.emit(message)

    def resolve(self) -> Job | None:
        """``generate.controls`` on the prompt; fills the form."""
        text = self.prompt.toPlainText().strip()
        self.state.set("generate_prompt", text)
        job = self._run("generate.controls", {"text": text}, "Resolve controls", visible=False,
                        on_done=self._on_resolved, what="Resolving the prompt")
        self._resolve_job = job
        if job is not None and not job.done:
            self.resolve_button.setEnabled(False)
            self.resolve_button.setText("Resolving…")
            job.finished.connect(lambda _r: self._resolve_idle())
            job.failed.connect(lambda _e: self._resolve_idle())
        return job

    def _resolve_idle(self) -> None:
        self.resolve_button.setEnabled(True)
        self.resolve_button.setText("Resolve ↓")

    def _on_resolved(self, result: Result) -> None:
        data = result.data if isinstance(result.data, dict) else {}
        self.fill(data)
        self.controlsResolved.emit(data)
        self.statusMessage.emit("Controls resolved — edit them, then Generate (Ctrl+Enter)")

    def generate(self) -> Job | None:
        """``generate.music`` with the prompt text and the explicit fields."""
        text = self.prompt.toPlainText().strip()
        self.state.set("generate_prompt", text)
        params = {"text": text, **self.fields(), **self._common()}
        short = text if len(text) <= 40 else text[:39] + "…"
        return self._run("generate.music", params, f"Generate “{short}”" if short else "Generate music",
                         on_done=self._on_result, what="Generating")

    def pick_midi(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Arrange a MIDI file", str(Path.home()),
                                              "MIDI files (*.mid *.midi)")
        if path:
            self.arrange(path)

    def arrange(self, midi: str) -> Job | None:
        """``generate.music`` around the tracks of ``midi``."""
        keep = {k: v for k, v in self.fields().items() if k in ("instruments", "style", "density", "drums")}
        params = {"text": self.prompt.toPlainText().strip(), "midi": str(midi), **keep, **self._common()}
        return self._run("generate.music", params, f"Arrange {Path(midi).name}", on_done=self._on_result,
                         what="Arranging")

    def selected_track(self) -> str:
        items = self.tracks.selectedItems() or ([self.tracks.currentItem()] if self.tracks.currentItem() else [])
        return items[0].text(COL_NAME) if items else ""

    def regenerate_track(self) -> Job | None:
        if not self.current or not self.selected_track():
            return None
        name = self.selected_track()
        self.roll_seed()
        params = {"midi": self.current["midi"], "track": name, **self._common()}
        return self._run("generate.track", params, f"Regenerate {name}", on_done=self._on_result,
                         what=f"Regenerating {name!r}")

    def continue_piece(self) -> Job | None:
        if not self.current:
            return None
        n = int(self.continue_bars.value())
        params = {"midi": self.current["midi"], "add_bars": n, **self._common()}
        return self._run("generate.continue", params, f"Continue +{n} bars", on_done=self._on_result,
                         what="Continuing")

    def _on_result(self, result: Result) -> None:
        data = dict(result.data) if isinstance(result.data, dict) else {}
        if not data.get("midi"):
            self._show_error("The job finished without a MIDI file.")
            return
        c = data.get("controls") or {}
        label = Path(data["midi"]).stem
        if c:
            label += f"   · {c.get('bars')} bars"
        item = QListWidgetItem(label)
        item.setData(DATA_ROLE, data)
        item.setToolTip(result.message or data["midi"])
        self.history.addItem(item)
        self.history.setCurrentItem(item)  # shows it
        self.statusMessage.emit(result.message or f"Generated {Path(data['midi']).name}")

    def _on_history(self, item: QListWidgetItem | None, _prev: QListWidgetItem | None = None) -> None:
        if item is not None:
            self.show_result(item.data(DATA_ROLE))

    # showing a result --------------------------------------------------------------------
    def show_result(self, data: dict[str, Any]) -> None:
        from engines.media.midi import read_midi

        self.player.stop()
        self.current = data
        c = data.get("controls") or {}
        try:
            song = read_midi(data["midi"])
        except Exception as exc:  # noqa: BLE001 - a missing/corrupt file is shown, not raised
            self.roll.clear(f"Cannot read {Path(data['midi']).name}: {exc}")
            song = None
        stems = [str(s) for s in data.get("stems") or []]
        by_name = {_stem_name(s): s for s in stems}
        self.tracks.blockSignals(True)
        self.tracks.clear()
        roll_tracks = []
        if song is not None:
            for i, t in enumerate(song.tracks):
                color = track_color(i)
                roll_tracks.append(RollTrack(t.name, color, [(n.pitch, n.start, n.end, n.velocity) for n in t.notes],
                                             is_drum=t.is_drum))
                stem = by_name.get(_safe(t.name)) or (stems[i] if len(stems) == len(song.tracks) else "")
                item = QTreeWidgetItem([t.name, "", "", Path(stem).name if stem else "(no stem)"])
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable | Qt.ItemFlag.ItemIsDragEnabled)
                item.setCheckState(COL_SOLO, Qt.CheckState.Unchecked)
                item.setCheckState(COL_MUTE, Qt.CheckState.Unchecked)
                item.setToolTip(COL_SOLO, SOLO_TIP)
                item.setData(COL_NAME, PATH_ROLE, stem)
                item.setForeground(COL_NAME, color)
                item.setToolTip(COL_NAME, f"{len(t.notes)} notes" + (f"\n{stem}" if stem else ""))
                item.setToolTip(COL_FILE, stem or "This result has no stem for this track")
                self.tracks.addTopLevelItem(item)
            meter = c.get("meter") or f"{song.time_signature[0]}/{song.time_signature[1]}"
            try:
                num, den = (int(x) for x in str(meter).split("/"))
            except ValueError:
                num, den = song.time_signature
            self.roll.set_roll(roll_tracks, tempo=float(c.get("tempo") or song.tempo), meter=(num, den),
                               chords=[str(x) for x in c.get("chords") or []])
        self.tracks.blockSignals(False)
        self.midi_chip.set_path(str(data.get("midi") or ""))
        self.wav_chip.set_path(str(data.get("wav") or ""))
        bits = [f"{c.get('key')}" if c.get("key") else "", f"{float(c['tempo']):g} bpm" if c.get("tempo") else "",
                str(c.get("meter") or ""), f"{c.get('bars')} bars" if c.get("bars") else "",
                str(c.get("style") or "")]
        self.info.setText(f"<b>{Path(data['midi']).stem}</b>&nbsp;&nbsp;<span style='color:gray'>"
                          f"{' · '.join(b for b in bits if b)}</span>")
        self._apply_solo_mute()
        self._update_buttons()
        self.resultShown.emit(data)

    def track_names(self) -> list[str]:
        return [self.tracks.topLevelItem(i).text(COL_NAME) for i in range(self.tracks.topLevelItemCount())]

    def _on_track_check(self, _item: QTreeWidgetItem, column: int) -> None:
        if column in (COL_SOLO, COL_MUTE):
            self._apply_solo_mute()

    def playback_path(self) -> str:
        """What Play plays: the mix, or a stem when solo / mute leave fewer tracks audible."""
        if not self.current:
            return ""
        items = [self.tracks.topLevelItem(i) for i in range(self.tracks.topLevelItemCount())]
        audible = self._audible(items)
        if all(audible) or not any(audible):
            return str(self.current.get("wav") or "")
        first = next(it for it, on in zip(items, audible, strict=True) if on)
        return str(first.data(COL_NAME, PATH_ROLE) or "")

    @staticmethod
    def _audible(items: list[QTreeWidgetItem]) -> list[bool]:
        solo = [it.checkState(COL_SOLO) == Qt.CheckState.Checked for it in items]
        mute = [it.checkState(COL_MUTE) == Qt.CheckState.Checked for it in items]
        if any(solo):
            return solo
        return [not m for m in mute]

    def _apply_solo_mute(self) -> None:
        items = [self.tracks.topLevelItem(i) for i in range(self.tracks.topLevelItemCount())]
        audible = self._audible(items)
        self.roll.set_audible(audible)
        path = self.playback_path()
        was = self.player.playing
        self.player.load(path)
        n_on = sum(audible)
        if not self.current:
            self.playing_label.clear()
        elif all(audible) or not any(audible):
            self.playing_label.setText("plays: the mix")
        else:
            self.playing_label.setText(f"plays: {Path(path).name or 'nothing'}"
                                       + ("  (first audible track only)" if n_on > 1 else ""))
        self.playing_label.setToolTip(SOLO_TIP)
        if was and path:
            self.player.play()

    def toggle_play(self) -> None:
        if not self.current:
            return
        self.player.load(self.playback_path())
        self.player.toggle()

    def _update_buttons(self) -> None:
        have = self.current is not None
        idle = self.busy is None
        self.generate_button.setEnabled(idle)
        self.arrange_button.setEnabled(idle)
        self.play_button.setEnabled(have and bool(self.playback_path()))
        self.regen_button.setEnabled(idle and have and bool(self.selected_track())
                                     and "generate.track" in self.registry)
        self.continue_button.setEnabled(idle and have and "generate.continue" in self.registry)
        self.generate_button.setText("Generating…" if not idle else "Generate  (Ctrl+Enter)")

    # dropping a MIDI file -----------------------------------------------------------------
    def _dropped_midi(self, event: QDragEnterEvent | QDropEvent) -> str:
        mime = event.mimeData()
        return next((p for p in paths_from_mime(mime) if p.lower().endswith(MIDI_SUFFIXES)), "")

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.source() is None and self._dropped_midi(event):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:
        path = self._dropped_midi(event)
        if path:
            event.acceptProposedAction()
            self.arrange(path)
        else:
            event.ignore()


__all__ = ["FileChip", "GenerateWorkspace", "TrackList"]
