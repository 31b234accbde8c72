"""The main window: workspaces, menus built from the registry, jobs dock, status bar."""

from __future__ import annotations

import html
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QTabWidget,
    QWidget,
)

from engines import __version__
from engines.core.home import DataHome, Settings
from engines.core.registry import Command, Registry, Result
from studio import theme
from studio.dragdrop import paths_from_mime
from studio.jobs import Job, JobClient
from studio.palette import CommandPalette, ParamForm
from studio.settings_dialog import SettingsDialog
from studio.state import GuiState
from studio.widgets.jobs_dock import JobsDock
from studio.workspaces import WORKSPACES, load_workspace_class
from studio.workspaces.library import LibraryWorkspace

#: shortcuts the window itself uses; a command asking for one of these does not get it
RESERVED_SHORTCUTS = {"Ctrl+Shift+P", "Ctrl+K", "Ctrl+,", "Ctrl+Q", "Ctrl+O", "Ctrl+Shift+O", "Space", "Ctrl+J"}


class MainWindow(QMainWindow):
    """Cue Studio's window. It owns the :class:`JobClient` (and so the engine host)."""

    jobSubmitted = Signal(object)  # Job started from the UI (menus, palette, drops)

    def __init__(self, home: DataHome, registry: Registry, client: JobClient,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.home = home
        self.registry = registry
        self.client = client
        self.state = GuiState(home)
        self.setWindowTitle("Cue Studio")
        self.setObjectName("mainWindow")
        self.resize(1200, 760)
        self.setAcceptDrops(True)
        self.param_form: ParamForm | None = None
        self.settings_dialog: SettingsDialog | None = None

        self.workspaces = QTabWidget()
        self.workspaces.setDocumentMode(True)
        self.library = LibraryWorkspace(client, registry, self.state)
        self.workspaces.addTab(self.library, "Library")
        self.extra_workspaces: dict[str, QWidget] = {}
        for spec in WORKSPACES:
            cls = load_workspace_class(spec) if spec.requires in registry else None
            if cls is None:
                continue
            ws = cls(client, registry, self.state)
            ws.setObjectName(f"workspace_{spec.key}")
            self.extra_workspaces[spec.key] = ws
            self.workspaces.addTab(ws, spec.title)
            if hasattr(ws, "statusMessage"):
                ws.statusMessage.connect(lambda m: self.statusBar().showMessage(m, 8000))
        self.setCentralWidget(self.workspaces)

        self.jobs_dock = JobsDock(client, self)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.jobs_dock)

        self.palette = CommandPalette(registry, lambda: self.state.recent, self)
        self.palette.commandChosen.connect(lambda cid: self.run_command(cid))

        self.host_label = QLabel("Engine host: starting…")
        self.statusBar().addPermanentWidget(self.host_label)
        self.library.statusMessage.connect(lambda m: self.statusBar().showMessage(m, 8000))
        self.library.rowsLoaded.connect(lambda n: self.statusBar().showMessage(
            f"{n} track{'s' if n != 1 else ''} in the library", 4000))
        client.hostReady.connect(self._on_host_ready)
        client.hostDied.connect(self._on_host_died)

        self.command_actions: dict[str, QAction] = {}
        self._build_menus()

    # menus -------------------------------------------------------------------
    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        self.add_folder_action = file_menu.addAction("Add folder…", self.add_folder)
        self.add_folder_action.setShortcut(QKeySequence("Ctrl+O"))
        self.add_files_action = file_menu.addAction("Add files…", self.add_files)
        self.add_files_action.setShortcut(QKeySequence("Ctrl+Shift+O"))
        can_add = "library.add" in self.registry
        self.add_folder_action.setEnabled(can_add)
        self.add_files_action.setEnabled(can_add)
        file_menu.addSeparator()
        settings = file_menu.addAction("Settings…", self.open_settings)
        settings.setShortcut(QKeySequence("Ctrl+,"))
        settings.setMenuRole(QAction.MenuRole.PreferencesRole)
        file_menu.addSeparator()
        quit_action = file_menu.addAction("Quit", self.close)
        quit_action.setShortcut(QKeySequence("Ctrl+Q"))
        quit_action.setMenuRole(QAction.MenuRole.QuitRole)

        for group, commands in self.registry.groups().items():
            menu = bar.addMenu(group.replace("_", " ").capitalize())
            menu.setObjectName(f"menu_{group}")
            for c in commands:
                self.command_actions[c.id] = self._command_action(c, menu)

        view = bar.addMenu("&View")
        self.palette_action = view.addAction("Command palette…", self.open_palette)
        self.palette_action.setShortcuts([QKeySequence("Ctrl+Shift+P"), QKeySequence("Ctrl+K")])
        jobs = self.jobs_dock.toggleViewAction()
        jobs.setShortcut(QKeySequence("Ctrl+J"))
        view.addAction(jobs)

        help_menu = bar.addMenu("&Help")
        help_menu.addAction("About Cue Studio", self.about).setMenuRole(QAction.MenuRole.AboutRole)

    def _command_action(self, command: Command, menu: QMenu) -> QAction:
        action = menu.addAction(command.title + ("…" if command.params else ""))
        action.setToolTip(command.description or command.id)
        action.setStatusTip(f"{command.id} — {command.description or command.title}")
        action.setData(command.id)
        if command.shortcut and command.shortcut not in RESERVED_SHORTCUTS:
            action.setShortcut(QKeySequence(command.shortcut))
        action.triggered.connect(lambda _checked=False, cid=command.id: self.run_command(cid))
        return action

    # running commands ----------------------------------------------------------
    def run_command(self, command_id: str, params: dict[str, Any] | None = None) -> Job | None:
        """Run a command as a job; with no ``params`` a command that has parameters asks for them first."""
        command = self.registry.get(command_id)
        self.state.push_recent(command_id)
        if params is None and command.params:
            self.param_form = form = ParamForm(command, self)
            form.accepted.connect(lambda: self.submit(command_id, form.params))
            form.open()
            return None
        return self.submit(command_id, params or {})

    def submit(self, command_id: str, params: dict[str, Any], *, title: str | None = None) -> Job:
        job = self.client.submit(command_id, params, title=title)
        job.finished.connect(lambda result, j=job: self._on_job_finished(j, result))
        job.failed.connect(lambda err, j=job: self._on_job_failed(j, err))
        self.statusBar().showMessage(f"Started: {job.title}", 3000)
        self.jobSubmitted.emit(job)
        return job

    def _on_job_finished(self, job: Job, result: Result) -> None:
        msg = result.message or f"{job.title}: done"
        if result.files:
            msg += f" — {len(result.files)} file{'s' if len(result.files) != 1 else ''} (see Jobs)"
        self.statusBar().showMessage(msg, 10000)

    def _on_job_failed(self, job: Job, error: dict[str, Any]) -> None:
        if error.get("kind") == "cancelled":
            self.statusBar().showMessage(f"{job.title}: cancelled", 5000)
        else:
            self.statusBar().showMessage(f"{job.title} failed: {error.get('message')}", 15000)

    def add_paths(self, paths: list[str]) -> Job | None:
        if not paths:
            return None
        if "library.add" not in self.registry:
            self.statusBar().showMessage("The library engine is not available: cannot add files.", 8000)
            return None
        n = len(paths)
        title = f"Add {n} item{'s' if n != 1 else ''} to the library"
        return self.submit("library.add", {"paths": paths}, title=title)

    def add_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Add a folder of music")
        if path:
            self.add_paths([path])

    def add_files(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(
            self, "Add music files", "", "Audio (*.wav *.flac *.mp3 *.ogg *.aiff *.aif *.m4a);;All files (*)")
        self.add_paths(paths)

    # drop files anywhere -------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.source() is None and paths_from_mime(event.mimeData()):
            event.setDropAction(Qt.DropAction.CopyAction)
            event.accept()
        else:
            event.ignore()

    def dragMoveEvent(self, event: Any) -> None:
        if event.source() is None and event.mimeData().hasUrls():
            event.setDropAction(Qt.DropAction.CopyAction)
            event.accept()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = paths_from_mime(event.mimeData())
        if event.source() is None and paths:
            event.setDropAction(Qt.DropAction.CopyAction)
            event.accept()
            self.add_paths(paths)
        else:
            event.ignore()

    # dialogs -------------------------------------------------------------------
    def open_palette(self) -> None:
        self.palette.open_palette()

    def open_settings(self) -> SettingsDialog:
        self.settings_dialog = dlg = SettingsDialog(self.home, self)
        dlg.saved.connect(self._on_settings_saved)
        dlg.open()
        return dlg

    def _on_settings_saved(self, settings: Settings) -> None:
        app = QApplication.instance()
        if isinstance(app, QApplication):
            theme.apply_theme(app, settings.theme)
        self.statusBar().showMessage("Settings saved", 4000)

    def about(self) -> None:
        plugins = self.registry.plugins
        lines = []
        for p in plugins:
            name = html.escape(str(p.get("name") or p.get("entry_point")))
            if p.get("ok"):
                lines.append(f"✓ {name} {html.escape(str(p.get('version', '')))}")
            else:
                lines.append(f"✗ {name}: {html.escape(str(p.get('error', 'failed')))}")
        QMessageBox.about(
            self, "About Cue Studio",
            f"<h3>Cue Studio {__version__}</h3>"
            "<p>An offline-first studio for music producers and video editors.</p>"
            f"<p>Data home: <code>{html.escape(str(self.home.root))}</code><br>"
            f"{len(self.registry.all())} commands.</p>"
            + ("<p><b>Plugins</b><br>" + "<br>".join(lines) + "</p>" if lines else ""))

    # host state -----------------------------------------------------------------
    def _on_host_ready(self, pid: int) -> None:
        self.host_label.setText(f"Engine host ready · pid {pid}")
        self.host_label.setToolTip("Engine jobs run in this separate process")

    def _on_host_died(self, message: str) -> None:
        self.host_label.setText("Engine host restarting…" if not self.client.gave_up else "Engine host stopped")
        self.statusBar().showMessage(message, 20000)

    # lifecycle -------------------------------------------------------------------
    def start(self) -> None:
        """Start the engine host and load the library."""
        self.client.start()
        QTimer.singleShot(0, self.library.reload)

    def closeEvent(self, event: QCloseEvent) -> None:
        self.library.player.stop()
        self.client.shutdown()
        super().closeEvent(event)
