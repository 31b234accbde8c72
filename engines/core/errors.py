"""One exception root for everything an engine reports to a user.

Messages are written for the person at the keyboard: they name the file (when there is
one) and the problem, and where possible what to do about it.
"""

from __future__ import annotations

from os import PathLike


class EngineError(Exception):
    """Root of every error an engine raises on purpose.

    Parameters
    ----------
    message : str
        What went wrong, in words a user can act on.
    path : str or PathLike, optional
        The file the problem is about; it is prefixed to the message.
    """

    #: short machine-readable kind, used by the CLI's JSON errors and the engine host
    kind = "engine_error"

    def __init__(self, message: str, *, path: str | PathLike[str] | None = None) -> None:
        self.problem = message
        self.path = None if path is None else str(path)
        super().__init__(f"{self.path}: {message}" if self.path else message)

    def to_dict(self) -> dict[str, str | None]:
        return {"kind": self.kind, "message": str(self), "path": self.path, "problem": self.problem}


class InputError(EngineError):
    """The input (a file or a parameter) cannot be used."""

    kind = "input_error"


class ParameterError(InputError):
    """A parameter value is impossible (0 bars, a negative range, an unknown choice)."""

    kind = "parameter_error"


class CorruptFileError(InputError):
    """A file exists but is corrupt, truncated or empty."""

    kind = "corrupt_file"


class UnsupportedFormatError(InputError):
    """A file is of a kind this operation does not read (or is mislabelled)."""

    kind = "unsupported_format"


class NotFoundError(EngineError):
    """A file, track, command or other named thing does not exist."""

    kind = "not_found"


class CancelledError(EngineError):
    """The user cancelled the job."""

    kind = "cancelled"

    def __init__(self, message: str = "cancelled by the user") -> None:
        super().__init__(message)


class ResourceLimitError(InputError):
    """An input would need more time or memory than allowed (zip bombs, absurd sizes)."""

    kind = "resource_limit"


class ModelError(EngineError):
    """A model is missing, incompatible or failed to load."""

    kind = "model_error"
