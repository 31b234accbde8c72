"""``studio``: the command line.

``studio`` with no arguments opens the GUI. ``studio GROUP VERB ...`` runs any
registered command headless (``studio library search "calm piano" --json``).
``studio script FILE.py [ARGS]`` runs a user script against the public API.
``studio commands`` lists every command.

Results go to stdout (``--json`` for machine-readable output), progress to stderr.
Exit codes: 0 ok, 1 the command failed, 2 usage error.

The GUI is found through the ``cue_studio.gui`` entry point, so this module never
imports the Qt application.
"""

from __future__ import annotations

import argparse
import json
import os
import runpy
import sys
import time
from collections.abc import Sequence
from typing import Any

from engines import __version__
from engines.core.errors import EngineError, ParameterError
from engines.core.home import DataHome
from engines.core.jobs import JobContext
from engines.core.registry import Command, Param, Registry

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


def _add_param(parser: argparse.ArgumentParser, p: Param) -> None:
    help_ = p.help or p.name
    if p.default not in (None, "", [], ()):
        help_ += f" (default: {p.default})"
    if p.choices:
        help_ += f" [{'|'.join(p.choices)}]"
    if p.positional:
        nargs: Any = ("+" if p.required else "*") if p.kind == "paths" else (None if p.required else "?")
        parser.add_argument(p.name, nargs=nargs, help=help_, metavar=p.name.upper())
    elif p.kind == "bool":
        parser.add_argument(p.flag, dest=p.name, action=argparse.BooleanOptionalAction,
                            default=None, help=help_)
    elif p.kind == "paths":
        parser.add_argument(p.flag, dest=p.name, nargs="+", help=help_)
    else:
        parser.add_argument(p.flag, dest=p.name, help=help_, metavar=p.kind.upper())


def build_parser(registry: Registry) -> _Parser:
    parser = _Parser(
        prog="studio",
        description="Cue Studio: run with no arguments to open the app, or run a command.",
        epilog="Examples: studio library add ~/Music --json | studio library search 'calm piano' --top 5",
    )
    parser.add_argument("--home", metavar="DIR", help="data home (default: $STUDIO_HOME or the platform's)")
    parser.add_argument("--version", action="version", version=f"Cue Studio {__version__}")
    groups = parser.add_subparsers(dest="group", metavar="GROUP")
    cmds = groups.add_parser("commands", help="list every command")
    cmds.add_argument("--json", action="store_true")
    script = groups.add_parser("script", help="run a Python script that uses the public API")
    script.add_argument("file")
    script.add_argument("args", nargs=argparse.REMAINDER)
    groups.add_parser("gui", help="open the app (same as no arguments)")
    for group, commands in registry.groups().items():
        gp = groups.add_parser(group, help=", ".join(c.verb for c in commands))
        verbs = gp.add_subparsers(dest="verb", metavar="VERB", required=True)
        for c in commands:
            vp = verbs.add_parser(c.verb, help=c.title, description=c.description or c.title)
            for p in c.params:
                _add_param(vp, p)
            vp.add_argument("--json", action="store_true", help="print the result as JSON")
            vp.set_defaults(_command=c)
    return parser


class _Progress:
    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.last_step = -1
        self.t0 = time.monotonic()

    def __call__(self, fraction: float, message: str) -> None:
        if self.tty:
            sys.stderr.write(f"\r[{fraction * 100:5.1f}%] {message[:90]:<90}")
            if fraction >= 1.0:
                sys.stderr.write("\n")
        else:
            step = int(fraction * 10)
            if step == self.last_step and fraction < 1.0:
                return
            self.last_step = step
            sys.stderr.write(f"[{fraction * 100:5.1f}%] {message}\n")
        sys.stderr.flush()


def _print_human(data: Any, message: str) -> None:
    if message:
        print(message)
    if isinstance(data, list) and data and isinstance(data[0], dict):
        keys = [k for k in ("track_id", "title", "artist", "score", "tempo", "key", "duration", "path")
                if k in data[0]] or list(data[0])[:6]
        for row in data:
            print("  ".join(_fmt(row.get(k)) for k in keys))
    elif isinstance(data, dict) and not message:
        print(json.dumps(data, indent=2, default=str))


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"
    return "" if v is None else str(v)


def _launch_gui(home: str | None) -> int:
    from importlib.metadata import entry_points

    eps = list(entry_points(group="cue_studio.gui"))
    if not eps:
        sys.stderr.write("studio: the desktop app is not installed (no cue_studio.gui entry point)\n")
        return EXIT_FAILED
    main = eps[0].load()
    return int(main(home=home) or 0)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # fast path: the GUI without building the command parser
    if not argv or argv == ["gui"] or (len(argv) == 2 and argv[0] == "--home"):
        return _launch_gui(argv[1] if len(argv) == 2 else None)
    from engines.core.plugins import default_registry

    registry = default_registry()
    parser = build_parser(registry)
    try:
        ns = parser.parse_args(argv)
    except UsageError as exc:
        sys.stderr.write(f"{exc}\nTry 'studio --help'.\n")
        return EXIT_USAGE
    if ns.group in (None, "gui"):
        return _launch_gui(ns.home)
    home = DataHome(ns.home) if ns.home else DataHome()
    if ns.group == "commands":
        cmds = registry.all()
        if ns.json:
            print(json.dumps([c.to_dict() for c in cmds], indent=2))
        else:
            for c in cmds:
                print(f"{c.id:<24} {c.title}")
        return EXIT_OK
    if ns.group == "script":
        return _run_script(ns.file, ns.args, home)
    command: Command = ns._command
    params = {p.name: getattr(ns, p.name) for p in command.params if getattr(ns, p.name) is not None}
    ctx = JobContext(home=home, on_progress=_Progress())
    try:
        result = registry.run(command.id, ctx, params)
    except ParameterError as exc:
        _report(exc, ns.json)
        return EXIT_USAGE
    except EngineError as exc:
        _report(exc, ns.json)
        return EXIT_FAILED
    except KeyboardInterrupt:
        sys.stderr.write("studio: interrupted\n")
        return EXIT_FAILED
    if ns.json:
        print(json.dumps(result.data if result.data is not None else result.to_dict(), indent=2, default=str))
    else:
        _print_human(result.data, result.message)
    return EXIT_OK


def _report(exc: EngineError, as_json: bool) -> None:
    sys.stderr.write(f"studio: error: {exc}\n")
    if as_json:
        print(json.dumps({"error": exc.to_dict()}))


def _run_script(file: str, args: list[str], home: DataHome) -> int:
    if not os.path.isfile(file):
        sys.stderr.write(f"studio: error: {file}: no such script\n")
        return EXIT_USAGE
    os.environ["STUDIO_HOME"] = str(home.root)
    old_argv = sys.argv
    sys.argv = [file, *args]
    try:
        runpy.run_path(file, run_name="__main__")
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else EXIT_FAILED
    except EngineError as exc:
        sys.stderr.write(f"studio: error: {exc}\n")
        return EXIT_FAILED
    finally:
        sys.argv = old_argv
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
