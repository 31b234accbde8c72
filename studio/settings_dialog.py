"""Settings: data home, SoundFont, music sample rate, compute device, theme."""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import QSettings, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from engines.core.errors import EngineError
from engines.core.home import DEVICES, SAMPLE_RATES, THEMES, DataHome, Settings

ORG, APP = "CueStudio", "Cue Studio"
DATA_HOME_KEY = "data_home"


def app_settings() -> QSettings:
    """Per-user GUI preferences that must live outside the data home (the data home itself)."""
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORG, APP)


class SettingsDialog(QDialog):
    """Edits :class:`~engines.core.home.Settings`; saved with :meth:`DataHome.save_settings`."""

    saved = Signal(object)  # Settings

    def __init__(self, home: DataHome, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.home = home
        self.setWindowTitle("Settings")
        self.setObjectName("settingsDialog")
        self.settings = home.load_settings()
        lay = QVBoxLayout(self)
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)

        home_row = QHBoxLayout()
        self.home_edit = QLineEdit(str(home.root))
        self.home_edit.setReadOnly(True)
        self.home_edit.setObjectName("homeEdit")
        change = QPushButton("Change…")
        change.clicked.connect(self._pick_home)
        home_row.addWidget(self.home_edit, 1)
        home_row.addWidget(change)
        form.addRow("Data home", home_row)
        self.home_note = QLabel("Library, exports and settings live here. A change takes effect after a restart.")
        self.home_note.setWordWrap(True)
        self.home_note.setEnabled(False)
        form.addRow("", self.home_note)

        sf_row = QHBoxLayout()
        self.soundfont = QLineEdit(self.settings.soundfont)
        self.soundfont.setObjectName("soundfontEdit")
        self.soundfont.setPlaceholderText("bundled General MIDI SoundFont")
        self.soundfont.setClearButtonEnabled(True)
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._pick_soundfont)
        sf_row.addWidget(self.soundfont, 1)
        sf_row.addWidget(browse)
        form.addRow("SoundFont", sf_row)

        self.sample_rate = QComboBox()
        for sr in SAMPLE_RATES:
            self.sample_rate.addItem(f"{sr / 1000:g} kHz", sr)
        self.sample_rate.setCurrentIndex(max(0, self.sample_rate.findData(self.settings.music_sample_rate)))
        form.addRow("Music sample rate", self.sample_rate)

        self.device = QComboBox()
        labels = {"auto": "Automatic (GPU when available)", "cpu": "CPU", "cuda": "GPU (CUDA)"}
        for d in DEVICES:
            self.device.addItem(labels.get(d, d), d)
        self.device.setCurrentIndex(max(0, self.device.findData(self.settings.compute_device)))
        form.addRow("Compute device", self.device)

        self.theme = QComboBox()
        for t in THEMES:
            self.theme.addItem({"system": "Follow the system"}.get(t, t.capitalize()), t)
        self.theme.setCurrentIndex(max(0, self.theme.findData(self.settings.theme)))
        form.addRow("Theme", self.theme)
        lay.addLayout(form)

        self.error = QLabel()
        self.error.setObjectName("settingsError")
        self.error.setStyleSheet("color: #e0524f;")
        self.error.setWordWrap(True)
        self.error.hide()
        lay.addWidget(self.error)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay.addWidget(buttons)
        self.setMinimumWidth(560)
        self.new_home: str | None = None

    def _pick_home(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Choose the data home", str(self.home.root))
        if path:
            self.set_home(path)

    def set_home(self, path: str) -> None:
        self.new_home = path
        self.home_edit.setText(path)
        if path != str(self.home.root):
            self.home_note.setText("Cue Studio will use this folder after a restart.")

    def _pick_soundfont(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose a SoundFont", "", "SoundFonts (*.sf2 *.sf3);;All files (*)")
        if path:
            self.soundfont.setText(path)

    def edited(self) -> Settings:
        return replace(
            self.settings,
            soundfont=self.soundfont.text().strip(),
            music_sample_rate=int(self.sample_rate.currentData()),
            compute_device=str(self.device.currentData()),
            theme=str(self.theme.currentData()),
        )

    def accept(self) -> None:
        new = self.edited()
        try:
            self.home.save_settings(new)
        except EngineError as exc:
            self.error.setText(f"Not saved: {exc}")
            self.error.show()
            return
        except OSError as exc:
            self.error.setText(f"Not saved: cannot write {self.home.settings_path}: {exc.strerror or exc}")
            self.error.show()
            return
        if self.new_home and self.new_home != str(self.home.root):
            app_settings().setValue(DATA_HOME_KEY, self.new_home)
        self.settings = new
        self.saved.emit(new)
        super().accept()
