"""The "sources" panel shared by workspaces that search a library of the user's files.

A titled box with a hint, a multi-selection list of what is indexed, Add files… / Add
folder… / Remove buttons and a note line. Everything goes through three commands of one
engine (``<group>.list`` / ``add`` / ``remove``); what differs between workspaces (the
command ids, how a row is labelled, the empty-library note) is a :class:`SourcesSpec`.
Used by the Instruments workspace (SoundFonts and sample folders) and the Sheet Music
workspace (scores).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from engines.core.registry import Registry, Result
from studio.jobs import Job, JobClient

ROW_ROLE = Qt.ItemDataRole.UserRole + 40


def _label_default(row: dict[str, Any]) -> tuple[str, str]:
    path = str(row.get("path") or "")
    return Path(path).name or path, path


@dataclass(frozen=True)
class SourcesSpec:
    """What one workspace's sources panel lists and which commands it runs.

    ``rows`` turns the list command's result data into rows; ``label`` gives a row's text and
    tooltip; ``note`` gives the note under the list from the result data and the rows (empty
    for none). ``id_key`` is the row field holding the id that ``remove_param`` of the remove
    command takes. ``folder_caption`` empty: no "Add folder…" button.
    """

    title: str
    hint: str
    list_command: str
    add_command: str
    remove_command: str
    object_name: str
    rows: Callable[[Any], list[dict[str, Any]]]
    label: Callable[[dict[str, Any]], tuple[str, str]] = _label_default
    note: Callable[[Any, list[dict[str, Any]]], str] = lambda _data, rows: "" if rows else "Nothing added yet."
    id_key: str = "id"
    remove_param: str = "id"
    files_caption: str = "Add files"
    file_filter: str = "All files (*)"
    folder_caption: str = "Add a folder"
    list_title: str = "List sources"
    add_title: str = "Index sources"
    what: str = "sources"  # in error messages: "Could not add the <what>"


class SourcesPanel(QGroupBox):
    """The panel; :meth:`reload` after the workspace is built, :meth:`add` for dropped files."""

    loaded = Signal(int)  # rows shown
    statusMessage = Signal(str)
    errorMessage = Signal(str)  # "" clears
    selectionChanged = Signal()

    def __init__(self, client: JobClient, registry: Registry, spec: SourcesSpec,
                 parent: QWidget | None = None) -> None:
        super().__init__(spec.title, parent)
        self.client = client
        self.registry = registry
        self.spec = spec
        self.rows: list[dict[str, Any]] = []
        self.list_job: Job | None = None

        layout = QVBoxLayout(self)
        hint = QLabel(spec.hint)
        hint.setWordWrap(True)
        hint.setEnabled(False)
        layout.addWidget(hint)
        self.list = QListWidget()
        self.list.setObjectName(spec.object_name)
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.list.setSpacing(3)
        self.list.itemSelectionChanged.connect(self._selection_changed)
        layout.addWidget(self.list, 1)
        buttons = QHBoxLayout()
        self.add_files_button = QPushButton("Add files…" if spec.folder_caption else "Add…")
        self.add_files_button.clicked.connect(self._ask_add_files)
        buttons.addWidget(self.add_files_button)
        self.add_folder_button: QPushButton | None = None
        if spec.folder_caption:
            self.add_folder_button = QPushButton("Add folder…")
            self.add_folder_button.clicked.connect(self._ask_add_folder)
            buttons.addWidget(self.add_folder_button)
        self.remove_button = QPushButton("Remove")
        self.remove_button.clicked.connect(self.remove_selected)
        buttons.addWidget(self.remove_button)
        layout.addLayout(buttons)
        self.note = QLabel()
        self.note.setWordWrap(True)
        layout.addWidget(self.note)
        self.remove_button.setEnabled(False)
        client.jobAdded.connect(self._on_job_added)

    # list -------------------------------------------------------------------------------
    def reload(self) -> Job | None:
        if self.spec.list_command not in self.registry:
            return None
        job = self.client.submit(self.spec.list_command, {}, title=self.spec.list_title, visible=False)
        self.list_job = job
        job.finished.connect(lambda r, j=job: self._on_list(j, r))
        job.failed.connect(self._failed(f"Could not list the {self.spec.what}"))
        return job

    def _on_list(self, job: Job, result: Result) -> None:
        if job is not self.list_job:
            return
        self.rows = [r for r in self.spec.rows(result.data) if isinstance(r, dict)]
        self.list.clear()
        for row in self.rows:
            text, tip = self.spec.label(row)
            item = QListWidgetItem(text)
            item.setToolTip(tip)
            item.setData(ROW_ROLE, row)
            self.list.addItem(item)
        self.note.setText(self.spec.note(result.data, self.rows))
        self._selection_changed()
        self.loaded.emit(len(self.rows))

    def _selection_changed(self) -> None:
        self.remove_button.setEnabled(bool(self.list.selectedItems()))
        self.selectionChanged.emit()

    # add / remove -----------------------------------------------------------------------
    def add(self, paths: list[str]) -> Job | None:
        paths = [p for p in paths if p]
        if not paths or self.spec.add_command not in self.registry:
            return None
        self.errorMessage.emit("")
        self.note.setText("Indexing… (see Jobs)")
        job = self.client.submit(self.spec.add_command, {"paths": paths}, title=self.spec.add_title)
        job.finished.connect(lambda r: self.statusMessage.emit((r.message or "").split("\n", 1)[0]))
        job.finished.connect(self._report_skipped)
        job.failed.connect(self._failed(f"Could not add the {self.spec.what}"))
        return job

    def _report_skipped(self, result: Result) -> None:
        failed = (result.data or {}).get("failed", []) if isinstance(result.data, dict) else []
        lines = [f"Skipped {Path(str(f.get('path', ''))).name}: {f.get('error')}" for f in failed
                 if isinstance(f, dict)]
        if lines:
            self.errorMessage.emit("\n".join(lines))

    def remove_selected(self) -> list[Job]:
        jobs = []
        for item in self.list.selectedItems():
            row = item.data(ROW_ROLE) or {}
            if row.get(self.spec.id_key) is None:
                continue
            name = row.get("title") or Path(str(row.get("path", ""))).name
            job = self.client.submit(self.spec.remove_command,
                                     {self.spec.remove_param: int(row[self.spec.id_key])}, title=f"Remove {name}")
            job.failed.connect(self._failed(f"Could not remove from the {self.spec.what}"))
            jobs.append(job)
        return jobs

    def _ask_add_files(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, self.spec.files_caption, "", self.spec.file_filter)
        self.add(files)

    def _ask_add_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, self.spec.folder_caption)
        if folder:
            self.add([folder])

    def _on_job_added(self, job: Job) -> None:
        if job.command_id in (self.spec.add_command, self.spec.remove_command):
            job.finished.connect(lambda _r: self.reload())

    def _failed(self, what: str) -> Callable[[dict[str, Any]], None]:
        def report(err: dict[str, Any]) -> None:
            if err.get("kind") != "cancelled":
                self.errorMessage.emit(f"{what}: {err.get('message') or err.get('kind')}")
        return report
