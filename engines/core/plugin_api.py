"""The facade plugins use to reach the app (and nothing else).

A plugin imports only this module. It is versioned: :data:`API_VERSION` grows when
something is added; a plugin declares the version it needs in its ``MANIFEST``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from engines.core.atomic import atomic_path, atomic_write_text
from engines.core.errors import (
    CancelledError,
    CorruptFileError,
    EngineError,
    InputError,
    NotFoundError,
    ParameterError,
)
from engines.core.jobs import JobContext
from engines.core.registry import Command, Handler, Param, Registry, Result

API_VERSION = 1

__all__ = [
    "API_VERSION",
    "atomic_path",
    "atomic_write_text",
    "CancelledError",
    "CorruptFileError",
    "EngineError",
    "InputError",
    "JobContext",
    "NotFoundError",
    "Param",
    "ParameterError",
    "PluginAPI",
    "Result",
]


class PluginAPI:
    """What ``enable(api)`` receives."""

    version = API_VERSION

    def __init__(self, registry: Registry, *, plugin: str) -> None:
        self._registry = registry
        self.plugin = plugin

    def register_command(
        self,
        *,
        id: str,
        title: str,
        handler: str | Handler,
        params: Sequence[Param] = (),
        description: str = "",
        shortcut: str = "",
        runs_in: str = "host",
    ) -> Command:
        return self._registry.register(
            Command(
                id=id, title=title, handler=handler, params=tuple(params),
                description=description, shortcut=shortcut, runs_in=runs_in, plugin=self.plugin,
            )
        )

    def run(self, command_id: str, ctx: JobContext, **params: Any) -> Result:
        """Run another command (a plugin may build on built-in ones)."""
        return self._registry.run(command_id, ctx, params)
