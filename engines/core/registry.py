"""The command registry: every user action is a command.

A :class:`Command` has a stable dotted id (``library.add``), a title, typed
parameters with defaults and validation, a handler and returns a :class:`Result`
listing the files it produced. Menus, the command palette, keyboard shortcuts, the CLI
(``studio GROUP VERB``), user scripts and the engine host all read the same registry.

Handlers are given as ``"package.module:function"`` strings so that registering a
command imports nothing heavy; the module is imported the first time the command runs.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engines.core.errors import NotFoundError, ParameterError
from engines.core.jobs import JobContext

PARAM_KINDS = ("str", "int", "float", "bool", "path", "paths", "choice")

Handler = Callable[..., "Result"]


@dataclass(frozen=True)
class Param:
    """One typed parameter of a command.

    Parameters
    ----------
    name : str
        Python identifier; the CLI flag is ``--name-with-dashes``.
    kind : {"str", "int", "float", "bool", "path", "paths", "choice"}
        ``paths`` is a list of paths (positional ``PATH...`` on the CLI).
    default : optional
        ``None`` with ``required=True`` means the user must give it.
    positional : bool
        On the CLI, given without a flag (in declaration order).
    """

    name: str
    kind: str = "str"
    default: Any = None
    help: str = ""
    required: bool = False
    positional: bool = False
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in PARAM_KINDS:
            raise ValueError(f"parameter {self.name}: unknown kind {self.kind!r}")
        if self.kind == "choice" and not self.choices:
            raise ValueError(f"parameter {self.name}: a choice needs choices")

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def coerce(self, value: Any) -> Any:
        """Convert ``value`` (native or a CLI string) to this parameter's type and check it."""
        if value is None:
            if self.required:
                raise ParameterError(f"missing required parameter {self.name!r}")
            return self.default
        try:
            if self.kind == "int":
                if isinstance(value, bool):
                    raise ValueError
                if isinstance(value, float) and not value.is_integer():
                    raise ValueError
                out: Any = int(value)
            elif self.kind == "float":
                out = float(value)
                if out != out or out in (float("inf"), float("-inf")):
                    raise ValueError
            elif self.kind == "bool":
                if isinstance(value, str):
                    low = value.strip().lower()
                    if low not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                        raise ValueError
                    out = low in ("1", "true", "yes", "on")
                else:
                    out = bool(value)
            elif self.kind == "path":
                out = str(Path(os.fspath(value)).expanduser())
            elif self.kind == "paths":
                items = [value] if isinstance(value, (str, os.PathLike)) else list(value)
                out = [str(Path(os.fspath(v)).expanduser()) for v in items]
                if self.required and not out:
                    raise ParameterError(f"{self.name}: give at least one path")
            elif self.kind == "choice":
                out = str(value)
                if out not in self.choices:
                    raise ParameterError(
                        f"{self.name} must be one of {', '.join(self.choices)}; got {out!r}"
                    )
            else:
                out = str(value)
        except ParameterError:
            raise
        except (TypeError, ValueError):
            raise ParameterError(f"{self.name} must be a {self.kind}; got {value!r}") from None
        if self.kind in ("int", "float"):
            if self.minimum is not None and out < self.minimum:
                raise ParameterError(f"{self.name} must be at least {self.minimum}; got {out}")
            if self.maximum is not None and out > self.maximum:
                raise ParameterError(f"{self.name} must be at most {self.maximum}; got {out}")
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "kind": self.kind, "default": self.default, "help": self.help,
            "required": self.required, "positional": self.positional,
            "choices": list(self.choices), "minimum": self.minimum, "maximum": self.maximum,
        }


@dataclass
class Result:
    """What a command returns.

    Attributes
    ----------
    data : JSON-serialisable
        The machine-readable answer (printed by ``--json``).
    files : list of str
        Absolute paths of files the command produced.
    message : str
        One line for people (status bar, CLI without ``--json``).
    """

    data: Any = None
    files: list[str] = field(default_factory=list)
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"data": self.data, "files": list(self.files), "message": self.message}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Result:
        return cls(data=d.get("data"), files=list(d.get("files") or []), message=d.get("message", ""))


@dataclass(frozen=True)
class Command:
    """A user action.

    Parameters
    ----------
    id : str
        Stable dotted id, ``group.verb`` (``library.search``); the CLI is ``studio group verb``.
    title : str
        Shown in menus and the palette.
    handler : str or callable
        ``"module:function"`` (imported lazily) or a callable
        ``handler(ctx: JobContext, **params) -> Result``.
    shortcut : str
        Qt key sequence (``"Ctrl+Shift+A"``), empty for none.
    runs_in : {"host", "local"}
        ``host`` (default) runs in the engine-host process from the GUI; ``local`` is
        cheap and runs where it is called.
    """

    id: str
    title: str
    handler: str | Handler
    params: tuple[Param, ...] = ()
    description: str = ""
    shortcut: str = ""
    runs_in: str = "host"
    plugin: str = "builtin"

    def __post_init__(self) -> None:
        parts = self.id.split(".")
        if len(parts) < 2 or not all(p.replace("-", "").replace("_", "").isalnum() for p in parts):
            raise ValueError(f"command id must look like 'group.verb', not {self.id!r}")
        names = [p.name for p in self.params]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.id}: duplicate parameter names")

    @property
    def group(self) -> str:
        return self.id.split(".", 1)[0]

    @property
    def verb(self) -> str:
        return self.id.split(".", 1)[1]

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise ParameterError(f"{self.id} has no parameter {name!r}")

    def bind(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Validate and complete ``params`` with defaults."""
        unknown = set(params) - {p.name for p in self.params}
        if unknown:
            raise ParameterError(f"{self.id}: unknown parameter(s) {', '.join(sorted(unknown))}")
        return {p.name: p.coerce(params.get(p.name)) for p in self.params}

    def resolve_handler(self) -> Handler:
        if callable(self.handler):
            return self.handler
        module_name, _, attr = self.handler.partition(":")
        module = importlib.import_module(module_name)
        fn = getattr(module, attr)
        if not callable(fn):
            raise TypeError(f"{self.handler} is not callable")
        return fn

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "title": self.title, "description": self.description,
            "shortcut": self.shortcut, "runs_in": self.runs_in, "plugin": self.plugin,
            "params": [p.to_dict() for p in self.params],
        }


class Registry:
    """All known commands, by id."""

    def __init__(self) -> None:
        self._commands: dict[str, Command] = {}
        self.plugins: list[dict[str, Any]] = []

    def register(self, command: Command) -> Command:
        if command.id in self._commands:
            raise ValueError(f"command {command.id!r} is already registered")
        self._commands[command.id] = command
        return command

    def get(self, command_id: str) -> Command:
        try:
            return self._commands[command_id]
        except KeyError:
            raise NotFoundError(f"no command {command_id!r}") from None

    def __contains__(self, command_id: object) -> bool:
        return command_id in self._commands

    def __iter__(self) -> Iterable[Command]:  # type: ignore[override]
        return iter(sorted(self._commands.values(), key=lambda c: c.id))

    def all(self) -> list[Command]:
        return sorted(self._commands.values(), key=lambda c: c.id)

    def groups(self) -> dict[str, list[Command]]:
        out: dict[str, list[Command]] = {}
        for c in self.all():
            out.setdefault(c.group, []).append(c)
        return out

    def run(self, command_id: str, ctx: JobContext, params: Mapping[str, Any] | None = None) -> Result:
        """Validate ``params``, run the command's handler and return its :class:`Result`."""
        command = self.get(command_id)
        bound = command.bind(params or {})
        handler = command.resolve_handler()
        result = handler(ctx, **bound)
        if not isinstance(result, Result):
            raise TypeError(f"{command.id}: handler returned {type(result).__name__}, not Result")
        return result

