"""The public scripting API: run any registered command from Python.

Example (``studio script my_script.py`` or plain ``python``)::

    from engines.core.api import Studio

    studio = Studio()                       # default data home (or Studio(home="..."))
    hits = studio.run("library.search", text="calm piano, slow", top=5)
    for row in hits.data:
        print(row["title"], row["tempo"], row["path"])
"""

from __future__ import annotations

import os
import sys
from typing import Any

from engines.core.home import DataHome
from engines.core.jobs import CancelToken, JobContext, ProgressFn
from engines.core.plugins import default_registry
from engines.core.registry import Command, Registry, Result


def _stderr_progress(fraction: float, message: str) -> None:
    sys.stderr.write(f"\r[{fraction * 100:5.1f}%] {message[:100]:<100}")
    if fraction >= 1.0:
        sys.stderr.write("\n")
    sys.stderr.flush()


class Studio:
    """A handle on one data home and the command registry."""

    def __init__(
        self,
        home: str | os.PathLike[str] | DataHome | None = None,
        *,
        registry: Registry | None = None,
        progress: ProgressFn | None = None,
    ) -> None:
        self.home = home if isinstance(home, DataHome) else DataHome(home)
        self.registry = registry or default_registry()
        self.progress = progress

    def commands(self) -> list[Command]:
        return self.registry.all()

    def run(self, command_id: str, *, cancel: CancelToken | None = None, **params: Any) -> Result:
        """Run ``command_id`` with keyword parameters; returns its :class:`Result`."""
        ctx = JobContext(home=self.home, cancel=cancel or CancelToken())
        if self.progress is not None:
            ctx.on_progress = self.progress
        return self.registry.run(command_id, ctx, params)
