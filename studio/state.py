"""Small GUI state kept in the data home (``gui.json``): recent commands, banner choices."""

from __future__ import annotations

import json
from typing import Any

from engines.core.atomic import atomic_write_text
from engines.core.home import DataHome

MAX_RECENT = 12


class GuiState:
    def __init__(self, home: DataHome) -> None:
        self.path = home.root / "gui.json"
        try:
            data = json.loads(self.path.read_text("utf-8"))
            self.data: dict[str, Any] = data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            self.data = {}

    def save(self) -> None:
        try:
            atomic_write_text(self.path, json.dumps(self.data, indent=2) + "\n")
        except OSError:
            pass  # GUI conveniences never stop the app

    @property
    def recent(self) -> list[str]:
        return [str(c) for c in self.data.get("recent_commands", [])]

    def push_recent(self, command_id: str) -> None:
        recent = [command_id] + [c for c in self.recent if c != command_id]
        self.data["recent_commands"] = recent[:MAX_RECENT]
        self.save()

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def set(self, key: str, value: Any) -> None:
        self.data[key] = value
        self.save()
