"""Job protocol: progress reporting and cooperative cancellation.

A handler receives a :class:`JobContext`. It calls ``ctx.progress(fraction, message)``
as it goes and ``ctx.check()`` between steps; ``check`` raises
:class:`~engines.core.errors.CancelledError` once the user cancelled.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from engines.core.errors import CancelledError

if TYPE_CHECKING:
    from engines.core.home import DataHome

ProgressFn = Callable[[float, str], None]


class CancelToken:
    """Thread-safe cancellation flag shared between a job and whoever may cancel it."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise CancelledError()


def _no_progress(fraction: float, message: str) -> None:  # noqa: ARG001
    return None


@dataclass
class JobContext:
    """What a command handler gets besides its parameters.

    Attributes
    ----------
    home : DataHome
        The user's data home (library database, settings, exports).
    on_progress : callable
        ``on_progress(fraction in [0, 1], message)``; called at most every 50 ms.
    cancel : CancelToken
        Checked by :meth:`check`.
    """

    home: DataHome
    on_progress: ProgressFn = _no_progress
    cancel: CancelToken = field(default_factory=CancelToken)
    _last: float = 0.0

    def progress(self, fraction: float, message: str = "", *, force: bool = False) -> None:
        now = time.monotonic()
        if force or fraction >= 1.0 or now - self._last >= 0.05:
            self._last = now
            self.on_progress(min(1.0, max(0.0, float(fraction))), message)

    def check(self) -> None:
        self.cancel.raise_if_cancelled()

    def sub(self, start: float, stop: float) -> JobContext:
        """A context whose progress 0..1 maps onto ``start..stop`` of this one."""
        parent = self

        def forward(fraction: float, message: str) -> None:
            parent.progress(start + (stop - start) * fraction, message)

        return JobContext(home=self.home, on_progress=forward, cancel=self.cancel)

    @property
    def exports(self) -> Path:
        return self.home.exports
