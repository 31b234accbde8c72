"""GUI tests run offscreen, on a temporary data home, against the real engine host.

The host is started isolated with the ``cue_test_plugin`` module (this folder is put
on PYTHONPATH), so the tests do not depend on the real engines' speed or presence.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_LOGGING_RULES", "qt.multimedia.*=false;qt.qpa.*=false")
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))
os.environ["PYTHONPATH"] = os.pathsep.join([str(HERE), *filter(None, [os.environ.get("PYTHONPATH")])])

TEST_PLUGIN = "cue_test_plugin"


@pytest.fixture(autouse=True)
def studio_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("STUDIO_HOME", str(home))
    monkeypatch.delenv("STUDIO_EXTRA_PLUGINS", raising=False)
    return home


@pytest.fixture(autouse=True, scope="session")
def _qsettings_sandbox(tmp_path_factory: pytest.TempPathFactory) -> None:
    from PySide6.QtCore import QSettings

    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope,
                      str(tmp_path_factory.mktemp("qsettings")))


@pytest.fixture
def registry():
    """A registry with only the test plugin: what the GUI shows and the host runs."""
    import cue_test_plugin

    from engines.core.plugin_api import PluginAPI
    from engines.core.registry import Registry

    reg = Registry()
    cue_test_plugin.enable(PluginAPI(reg, plugin="gui-tests"))
    reg.plugins.append({"entry_point": TEST_PLUGIN, "module": TEST_PLUGIN, "ok": True, **cue_test_plugin.MANIFEST})
    return reg


@pytest.fixture
def make_window(qtbot, registry, studio_home):
    """Build (and later close) a main window whose host runs the test plugin."""
    from engines.core.home import DataHome
    from studio.app import create_window

    made = []

    def make(*, start: bool = True, reg=None):
        window = create_window(DataHome(studio_home), registry=reg or registry, plugins=(TEST_PLUGIN,),
                               isolated=True)
        qtbot.addWidget(window)
        window.show()
        if start:
            window.start()
        made.append(window)
        return window

    yield make
    for w in made:
        w.client.shutdown()


@pytest.fixture
def loaded_window(qtbot, make_window):
    """A window whose (empty) library got the demo on first run and shows it."""
    window = make_window()
    qtbot.waitUntil(lambda: window.library.demo_job is not None and window.library.demo_job.done, timeout=20000)
    assert window.library.demo_job.state == "done", window.library.demo_job.error
    qtbot.waitUntil(lambda: window.library.model.rowCount() == 30, timeout=10000)
    return window
