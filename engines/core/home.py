"""The user's data home: one folder holding everything the app keeps.

Resolution order: an explicit ``--home DIR``, then ``$STUDIO_HOME``, then the
platformdirs user-data folder for "CueStudio".

Layout::

    settings.json      persisted settings (atomic writes)
    library.db         SQLite (WAL) catalog of tracks
    index/             vector indexes
    exports/           files handed to DAWs/NLEs (they reference them in place)
    models/            user checkpoints (optional)
    cache/             derived data that can be rebuilt
"""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from engines.core.atomic import atomic_write_text
from engines.core.errors import ParameterError

APP_NAME = "CueStudio"

SAMPLE_RATES = (44100, 48000)
DEVICES = ("auto", "cpu", "cuda")
THEMES = ("system", "dark", "light")


@dataclass
class Settings:
    """Persisted user settings (``settings.json`` in the data home)."""

    #: SoundFont used to render MIDI; empty means the GM SoundFont bundled with pretty_midi
    soundfont: str = ""
    #: sample rate of rendered music (44.1 kHz) — video work uses 48 kHz regardless
    music_sample_rate: int = 44100
    #: "auto" uses a GPU when torch sees one
    compute_device: str = "auto"
    #: "system" follows the desktop's dark/light scheme
    theme: str = "system"
    #: bits per sample of WAV files the app writes
    wav_bits: int = 24

    def validate(self) -> None:
        if self.music_sample_rate not in SAMPLE_RATES:
            raise ParameterError(
                f"sample rate must be one of {SAMPLE_RATES}, not {self.music_sample_rate}"
            )
        if self.compute_device not in DEVICES:
            raise ParameterError(f"compute device must be one of {DEVICES}, not {self.compute_device!r}")
        if self.theme not in THEMES:
            raise ParameterError(f"theme must be one of {THEMES}, not {self.theme!r}")
        if self.wav_bits not in (16, 24):
            raise ParameterError(f"WAV bits must be 16 or 24, not {self.wav_bits}")
        if self.soundfont and not Path(self.soundfont).is_file():
            raise ParameterError("SoundFont file not found", path=self.soundfont)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Settings:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def default_home() -> Path:
    env = os.environ.get("STUDIO_HOME")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


class DataHome:
    """Access to the folders and files of one data home."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root).expanduser().resolve() if root else default_home().resolve()
        for sub in ("index", "exports", "models", "cache"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)

    # folders -------------------------------------------------------------
    @property
    def exports(self) -> Path:
        return self.root / "exports"

    @property
    def index_dir(self) -> Path:
        return self.root / "index"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def cache(self) -> Path:
        return self.root / "cache"

    @property
    def library_db(self) -> Path:
        return self.root / "library.db"

    # settings ------------------------------------------------------------
    @property
    def settings_path(self) -> Path:
        return self.root / "settings.json"

    def load_settings(self) -> Settings:
        try:
            data = json.loads(self.settings_path.read_text("utf-8"))
        except FileNotFoundError:
            return Settings()
        except (OSError, ValueError):
            # a damaged settings file must not stop the app: keep a copy, use defaults
            self.settings_path.replace(self.settings_path.with_suffix(".json.damaged"))
            return Settings()
        return Settings.from_dict(data if isinstance(data, dict) else {})

    def save_settings(self, settings: Settings) -> None:
        settings.validate()
        atomic_write_text(self.settings_path, json.dumps(asdict(settings), indent=2) + "\n")

    # database ------------------------------------------------------------
    def connect(self, path: Path | None = None) -> sqlite3.Connection:
        """Open an SQLite database in WAL mode with sane defaults."""
        con = sqlite3.connect(str(path or self.library_db), timeout=30.0, isolation_level=None)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=NORMAL")
        con.execute("PRAGMA foreign_keys=ON")
        con.row_factory = sqlite3.Row
        return con

    def __repr__(self) -> str:
        return f"DataHome({str(self.root)!r})"
