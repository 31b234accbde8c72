"""Engine core: command registry, jobs, errors, data home, plugins.

This package imports nothing heavy (no torch, no numpy at import time) so the GUI and
``studio --help`` stay fast.
"""

from engines.core.errors import (
    CancelledError,
    CorruptFileError,
    EngineError,
    InputError,
    NotFoundError,
    ParameterError,
    UnsupportedFormatError,
)
from engines.core.jobs import CancelToken, JobContext
from engines.core.registry import Command, Param, Registry, Result

__all__ = [
    "CancelToken",
    "CancelledError",
    "Command",
    "CorruptFileError",
    "EngineError",
    "InputError",
    "JobContext",
    "NotFoundError",
    "Param",
    "ParameterError",
    "Registry",
    "Result",
    "UnsupportedFormatError",
]
