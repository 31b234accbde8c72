"""Shared fixtures: every test gets its own data home; nothing touches the user's."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from engines.core.home import DataHome

    root = tmp_path / "home"
    monkeypatch.setenv("STUDIO_HOME", str(root))
    return DataHome(root)
