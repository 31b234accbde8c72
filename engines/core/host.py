"""The engine host: a persistent process that runs commands for the GUI.

``python -m engines.core.host --home DIR [--plugin MODULE ...] [--isolated]``

The GUI writes one JSON object per line on the host's stdin::

    {"op": "run", "job": "7", "command": "library.add", "params": {"paths": ["~/Music"]}}
    {"op": "cancel", "job": "7"}
    {"op": "ping"}
    {"op": "shutdown"}

and reads one JSON object per line from its stdout::

    {"event": "ready", "pid": 1234, "commands": ["library.add", ...]}
    {"event": "started", "job": "7", "command": "library.add"}
    {"event": "progress", "job": "7", "fraction": 0.25, "message": "scanning ..."}
    {"event": "result", "job": "7", "result": {"data": ..., "files": [...], "message": "..."}}
    {"event": "error", "job": "7", "error": {"kind": "not_found", "message": "...", ...}}
    {"event": "pong"}

Each job runs in its own thread with its own :class:`~engines.core.jobs.JobContext`
and :class:`~engines.core.jobs.CancelToken`. The process's stdout is reserved for the
protocol: file descriptor 1 is pointed at stderr at start-up, so stray ``print`` calls
and native libraries writing to stdout cannot corrupt it. Exceptions that are not
:class:`~engines.core.errors.EngineError` are reported as ``{"kind": "internal_error"}``
with the last line of their traceback.

Extra plugin modules (tests, development) come from ``--plugin MODULE`` and from the
environment variable ``STUDIO_EXTRA_PLUGINS`` (module names separated by commas or
``os.pathsep``). ``--isolated`` loads only those, not the installed entry points.

This module is Qt-free: the GUI talks to it through a pipe, so a crash in native code
here (even a segfault) never takes the GUI down.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import sys
import threading
import traceback
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TextIO

from engines.core.errors import EngineError
from engines.core.home import DataHome
from engines.core.jobs import CancelToken, JobContext
from engines.core.plugins import default_registry, load_plugins
from engines.core.registry import Registry

ENV_EXTRA_PLUGINS = "STUDIO_EXTRA_PLUGINS"
PROTOCOL_VERSION = 1

log = logging.getLogger("engines.core.host")


def extra_plugins_from_env(environ: dict[str, str] | None = None) -> tuple[str, ...]:
    """Module names listed in ``$STUDIO_EXTRA_PLUGINS``."""
    raw = (environ if environ is not None else os.environ).get(ENV_EXTRA_PLUGINS, "")
    parts = raw.replace(os.pathsep, ",").split(",")
    return tuple(p.strip() for p in parts if p.strip())


def internal_error(exc: BaseException) -> dict[str, Any]:
    """An error dict for an exception that is not an :class:`EngineError`."""
    lines = traceback.format_exception(exc)
    last = lines[-1].strip() if lines else f"{type(exc).__name__}: {exc}"
    return {
        "kind": "internal_error",
        "message": f"internal error: {last}",
        "path": None,
        "problem": last,
        "traceback": "".join(lines),
    }


class Host:
    """Runs jobs from a line-oriented JSON protocol.

    Parameters
    ----------
    registry : Registry
        The commands the host can run.
    home : DataHome
        Given to every job's :class:`JobContext`.
    out : text stream
        Where protocol events are written (one JSON object per line).
    """

    def __init__(self, registry: Registry, home: DataHome, out: TextIO) -> None:
        self.registry = registry
        self.home = home
        self._out = out
        self._lock = threading.Lock()
        self._jobs: dict[str, tuple[threading.Thread, CancelToken]] = {}
        self._jobs_lock = threading.Lock()

    # output ----------------------------------------------------------------
    def emit(self, event: str, **fields: Any) -> None:
        line = json.dumps({"event": event, **fields}, default=str)
        with self._lock:
            try:
                self._out.write(line + "\n")
                self._out.flush()
            except (BrokenPipeError, ValueError, OSError):
                pass  # the GUI went away; nothing to report to

    # jobs ------------------------------------------------------------------
    def run_job(self, job: str, command_id: str, params: dict[str, Any]) -> None:
        token = CancelToken()

        def progress(fraction: float, message: str) -> None:
            self.emit("progress", job=job, fraction=round(float(fraction), 4), message=str(message))

        def work() -> None:
            ctx = JobContext(home=self.home, on_progress=progress, cancel=token)
            self.emit("started", job=job, command=command_id)
            try:
                result = self.registry.run(command_id, ctx, params)
                payload = json.loads(json.dumps(result.to_dict(), default=str))
            except EngineError as exc:
                self.emit("error", job=job, error=exc.to_dict())
            except BaseException as exc:  # noqa: BLE001 - report everything, keep serving
                log.error("job %s (%s) failed:\n%s", job, command_id, "".join(traceback.format_exception(exc)))
                self.emit("error", job=job, error=internal_error(exc))
            else:
                self.emit("result", job=job, result=payload)
            finally:
                with self._jobs_lock:
                    self._jobs.pop(job, None)

        thread = threading.Thread(target=work, name=f"job-{job}-{command_id}", daemon=True)
        with self._jobs_lock:
            if job in self._jobs:
                self.emit("error", job=job, error={
                    "kind": "parameter_error", "message": f"job id {job!r} is already running",
                    "path": None, "problem": "duplicate job id"})
                return
            self._jobs[job] = (thread, token)
        thread.start()

    def cancel(self, job: str) -> bool:
        with self._jobs_lock:
            entry = self._jobs.get(job)
        if entry is None:
            return False
        entry[1].cancel()
        return True

    def cancel_all(self) -> None:
        with self._jobs_lock:
            entries = list(self._jobs.values())
        for _, token in entries:
            token.cancel()

    def wait(self, timeout: float = 5.0) -> None:
        with self._jobs_lock:
            threads = [t for t, _ in self._jobs.values()]
        for t in threads:
            t.join(timeout)

    # protocol --------------------------------------------------------------
    def handle(self, line: str) -> bool:
        """Handle one request line; returns False when the host should stop."""
        line = line.strip()
        if not line:
            return True
        try:
            msg = json.loads(line)
            if not isinstance(msg, dict):
                raise ValueError("a request must be a JSON object")
        except ValueError as exc:
            self.emit("error", job=None, error={"kind": "protocol_error", "message": f"bad request: {exc}",
                                                "path": None, "problem": str(exc)})
            return True
        op = msg.get("op")
        if op == "run":
            job = str(msg.get("job", ""))
            params = msg.get("params") or {}
            if not job or not isinstance(params, dict):
                self.emit("error", job=job or None, error={
                    "kind": "protocol_error", "message": "run needs a job id and a params object",
                    "path": None, "problem": "bad run request"})
                return True
            self.run_job(job, str(msg.get("command", "")), params)
        elif op == "cancel":
            self.cancel(str(msg.get("job", "")))
        elif op == "ping":
            self.emit("pong", pid=os.getpid())
        elif op == "shutdown":
            return False
        else:
            self.emit("error", job=msg.get("job"), error={
                "kind": "protocol_error", "message": f"unknown op {op!r}", "path": None,
                "problem": "unknown op"})
        return True

    def serve(self, lines: Iterable[str]) -> None:
        self.emit("ready", pid=os.getpid(), protocol=PROTOCOL_VERSION,
                  commands=[c.id for c in self.registry.all()], home=str(self.home.root))
        for line in lines:
            if not self.handle(line):
                break
        # shutdown or the GUI closed our stdin: stop what runs, give it a moment
        self.cancel_all()
        self.wait(timeout=3.0)


def _request_lines() -> Iterator[str]:
    """Lines from the real stdin, read from a raw file descriptor.

    ``sys.stdin`` is pointed at ``/dev/null`` first. Engines may fork worker processes
    (``multiprocessing`` with ``fork``) while the main thread waits here; a forked child
    closes ``sys.stdin``, and if that were the buffered stream this thread is blocked in,
    the child would deadlock on its lock. A raw ``os.read`` holds no such lock.
    """
    fd = os.dup(0)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    sys.stdin = open(os.devnull, encoding="utf-8")  # noqa: SIM115 - lives as long as the process
    buf = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except InterruptedError:
            continue
        if not chunk:
            break
        buf += chunk
        *done, buf = buf.split(b"\n")
        for raw in done:
            yield raw.decode("utf-8", "replace")
    if buf.strip():
        yield buf.decode("utf-8", "replace")


def _protocol_stream() -> TextIO:
    """Keep the real stdout for the protocol; send everything else written to fd 1 to stderr."""
    sys.stdout.flush()
    proto_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return io.TextIOWrapper(os.fdopen(proto_fd, "wb", buffering=0), encoding="utf-8",
                            line_buffering=True, write_through=True)


def build_registry(plugins: Sequence[str], *, isolated: bool) -> Registry:
    """The host's registry: installed plugins (unless ``isolated``) plus ``plugins``."""
    if isolated:
        return load_plugins(Registry(), extra_modules=tuple(plugins), installed=False)
    if not plugins:
        return default_registry()
    return load_plugins(Registry(), extra_modules=tuple(plugins))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engines.core.host",
                                     description="Cue Studio engine host (JSON lines on stdin/stdout)")
    parser.add_argument("--home", metavar="DIR", help="data home (default: $STUDIO_HOME or the platform's)")
    parser.add_argument("--plugin", action="append", default=[], metavar="MODULE",
                        help="also enable this plugin module (repeatable)")
    parser.add_argument("--isolated", action="store_true",
                        help="enable only --plugin / $STUDIO_EXTRA_PLUGINS modules, not installed plugins")
    ns = parser.parse_args(argv)

    out = _protocol_stream()
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="[host %(process)d] %(levelname)s %(name)s: %(message)s")
    try:
        import faulthandler

        faulthandler.enable(file=sys.stderr)
    except (ImportError, RuntimeError, ValueError):
        pass
    plugins = [*ns.plugin, *extra_plugins_from_env()]
    registry = build_registry(plugins, isolated=ns.isolated)
    home = DataHome(ns.home) if ns.home else DataHome()
    host = Host(registry, home, out)
    host.serve(_request_lines())
    out.flush()
    # daemon job threads that ignore cancellation must not keep the process alive
    os._exit(0)


if __name__ == "__main__":
    raise SystemExit(main())
