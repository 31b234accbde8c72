"""Start the desktop app: ``studio`` (through the ``cue_studio.gui`` entry point) or ``python -m studio``."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QCoreApplication, Qt, QTimer
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication

from engines.core.home import DataHome
from engines.core.host import extra_plugins_from_env
from engines.core.plugins import default_registry, load_plugins
from engines.core.registry import Registry
from studio import theme
from studio.jobs import JobClient
from studio.settings_dialog import APP, DATA_HOME_KEY, ORG, app_settings
from studio.window import MainWindow


def resolve_home(home: str | os.PathLike[str] | None = None) -> DataHome:
    """``--home`` first, then ``$STUDIO_HOME``, then the folder chosen in Settings, then the default."""
    if home:
        return DataHome(home)
    if os.environ.get("STUDIO_HOME"):
        return DataHome()
    chosen = app_settings().value(DATA_HOME_KEY)
    return DataHome(str(chosen)) if chosen else DataHome()


def ensure_app(argv: Sequence[str] | None = None) -> QApplication:
    app = QApplication.instance()
    if isinstance(app, QApplication):
        return app
    QCoreApplication.setOrganizationName(ORG)
    QCoreApplication.setApplicationName(APP)
    # Qt Multimedia lists every optional codec library it could not find; users can't act on it
    os.environ.setdefault("QT_LOGGING_RULES", "qt.multimedia.symbolsresolver=false;qt.multimedia.ffmpeg=false")
    return QApplication(list(argv if argv is not None else sys.argv[:1]))


def create_window(home: DataHome, *, registry: Registry | None = None, plugins: Sequence[str] = (),
                  isolated: bool = False) -> MainWindow:
    """A ready main window (not shown) with its engine-host client; the host starts on ``start()``."""
    app = ensure_app()
    if registry is None:
        extras = tuple(plugins) or extra_plugins_from_env()
        registry = load_plugins(Registry(), extra_modules=extras) if extras else default_registry()
    settings = home.load_settings()
    theme.apply_theme(app, settings.theme)

    def follow_system(_scheme: Qt.ColorScheme) -> None:
        if home.load_settings().theme == "system":
            theme.apply_theme(app, "system")

    QGuiApplication.styleHints().colorSchemeChanged.connect(follow_system)
    client = JobClient(home, registry, plugins=tuple(plugins) or extra_plugins_from_env(), isolated=isolated)
    window = MainWindow(home, registry, client)
    client.setParent(window)
    return window


def main(home: str | None = None) -> int:
    """Open the Cue Studio window; returns the exit status."""
    app = ensure_app()
    data_home = resolve_home(home)
    window = create_window(data_home)
    window.show()
    window.start()
    shown_file = os.environ.get("STUDIO_BENCH_SHOWN_FILE")
    if shown_file:  # bench/startup.py: record when the window is on screen, then quit
        def _record() -> None:
            Path(shown_file).write_text(repr(time.time()))
            app.quit()

        QTimer.singleShot(0, _record)
    return int(app.exec())
