"""One workspace per job the user does.

The Library workspace is always there. The others are listed here and shown only when
their module exists in this installation and the engine command they need is registered
(so nothing appears that does not work).
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkspaceSpec:
    """A workspace tab: ``factory`` is ``"module:Class"``; the class takes
    ``(client, registry, state)`` and may have a ``statusMessage(str)`` signal."""

    key: str
    title: str
    factory: str
    requires: str


WORKSPACES: tuple[WorkspaceSpec, ...] = (
    WorkspaceSpec("video", "Video → Music", "studio.workspaces.video:VideoWorkspace", "video.match"),
    WorkspaceSpec("instruments", "Instruments", "studio.workspaces.instruments:InstrumentsWorkspace",
                  "instruments.find"),
    WorkspaceSpec("sheet", "Sheet Music", "studio.workspaces.sheet:SheetWorkspace", "sheet.find"),
    WorkspaceSpec("generate", "Generate", "studio.workspaces.generate:GenerateWorkspace", "generate.music"),
    WorkspaceSpec("compare", "Compare", "studio.workspaces.compare:CompareWorkspace", "prefs.queue"),
)


def load_workspace_class(spec: WorkspaceSpec) -> type | None:
    """The workspace class, or None when this installation does not have it."""
    module_name, _, attr = spec.factory.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            return None
        raise
    return getattr(module, attr)
