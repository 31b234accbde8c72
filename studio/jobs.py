"""The engine-host client: runs commands as jobs and reports on them through Qt signals.

Commands run in a persistent engine-host process (``python -m engines.core.host``)
started with :class:`~PySide6.QtCore.QProcess`; requests and events are JSON lines (see
:mod:`engines.core.host`). If the host dies — killed, out of memory, a segfault in
native code — the jobs it was running are reported failed with a message a user can
understand, the host is restarted, and jobs not yet sent are sent to the new one. The
GUI's state is untouched.

Commands registered with ``runs_in="local"`` are cheap and run in-process on a
:class:`~PySide6.QtCore.QThreadPool`.
"""

from __future__ import annotations

import collections
import itertools
import json
import os
import signal
import sys
import time
from collections.abc import Mapping
from typing import Any

from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, QRunnable, Qt, QThreadPool, Signal, Slot

from engines.core.errors import EngineError
from engines.core.home import DataHome
from engines.core.host import ENV_EXTRA_PLUGINS, internal_error
from engines.core.jobs import CancelToken, JobContext
from engines.core.registry import Registry, Result

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"

#: the host is not restarted again if it died this many times within RESTART_WINDOW_S
MAX_RESTARTS = 5
RESTART_WINDOW_S = 60.0


def _signal_name(num: int) -> str:
    try:
        return f"signal {num}, {signal.Signals(num).name}"
    except ValueError:
        return f"signal {num}"


class Job(QObject):
    """One run of a command. Signals are emitted in the GUI thread."""

    started = Signal()
    progress = Signal(float, str)
    finished = Signal(object)  # Result
    failed = Signal(object)  # error dict: kind, message, ...
    changed = Signal()  # any state / progress change

    def __init__(self, job_id: str, command_id: str, title: str, params: dict[str, Any], *,
                 visible: bool, local: bool, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.id = job_id
        self.command_id = command_id
        self.title = title
        self.params = params
        self.visible = visible
        self.local = local
        self.state = QUEUED
        self.fraction = 0.0
        self.message = "waiting…"
        self.result: Result | None = None
        self.error: dict[str, Any] | None = None
        self.created = time.monotonic()
        self.started_at: float | None = None
        self.ended_at: float | None = None
        self.token = CancelToken()

    @property
    def done(self) -> bool:
        return self.state in (DONE, FAILED, CANCELLED)

    @property
    def elapsed(self) -> float:
        if self.started_at is None:
            return 0.0
        return (self.ended_at or time.monotonic()) - self.started_at

    @property
    def error_message(self) -> str:
        return "" if self.error is None else str(self.error.get("message") or self.error.get("kind"))

    # transitions (called by the client, in the GUI thread) --------------------
    def _start(self) -> None:
        if self.done:
            return
        self.state = RUNNING
        self.started_at = time.monotonic()
        self.message = "started"
        self.started.emit()
        self.changed.emit()

    def _progress(self, fraction: float, message: str) -> None:
        if self.done:
            return
        if self.state == QUEUED:
            self._start()
        self.fraction = fraction
        self.message = message
        self.progress.emit(fraction, message)
        self.changed.emit()

    def _finish(self, result: Result) -> None:
        if self.done:
            return
        self.state = DONE
        self.fraction = 1.0
        self.result = result
        self.message = result.message or "done"
        self.ended_at = time.monotonic()
        if self.started_at is None:
            self.started_at = self.ended_at
        self.finished.emit(result)
        self.changed.emit()

    def _fail(self, error: Mapping[str, Any]) -> None:
        if self.done:
            return
        self.error = dict(error)
        self.state = CANCELLED if self.error.get("kind") == "cancelled" else FAILED
        self.message = "cancelled" if self.state == CANCELLED else self.error_message
        self.ended_at = time.monotonic()
        if self.started_at is None:
            self.started_at = self.ended_at
        self.failed.emit(self.error)
        self.changed.emit()


class _LocalRunnable(QRunnable):
    def __init__(self, client: JobClient, job: Job) -> None:
        super().__init__()
        self.client = client
        self.job = job

    def run(self) -> None:
        job, emit = self.job, self.client._local_event.emit

        def progress(fraction: float, message: str) -> None:
            emit(job.id, "progress", {"fraction": fraction, "message": message})

        ctx = JobContext(home=self.client.home, on_progress=progress, cancel=job.token)
        emit(job.id, "started", {})
        try:
            result = self.client.registry.run(job.command_id, ctx, job.params)
        except EngineError as exc:
            emit(job.id, "error", {"error": exc.to_dict()})
        except Exception as exc:  # noqa: BLE001 - a bug in a command must not kill the GUI
            emit(job.id, "error", {"error": internal_error(exc)})
        else:
            emit(job.id, "result", {"result": result.to_dict()})


class JobClient(QObject):
    """Starts the engine host and runs commands as :class:`Job` objects.

    Parameters
    ----------
    home : DataHome
        The data home given to the host (``--home``) and to local jobs.
    registry : Registry
        The GUI's view of the commands (titles, parameters, ``runs_in``).
    plugins : sequence of str
        Extra plugin modules the host enables (``--plugin``).
    isolated : bool
        The host enables only ``plugins``, not the installed entry points (tests).
    """

    jobAdded = Signal(object)  # Job
    hostReady = Signal(int)  # pid
    hostDied = Signal(str)  # message for people
    _local_event = Signal(str, str, object)

    def __init__(self, home: DataHome, registry: Registry, *, plugins: tuple[str, ...] = (),
                 isolated: bool = False, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.home = home
        self.registry = registry
        self.plugins = tuple(plugins)
        self.isolated = isolated
        self.jobs: dict[str, Job] = {}
        self._ids = itertools.count(1)
        self._pending: list[Job] = []  # waiting for the host to be ready
        self._inflight: dict[str, Job] = {}  # sent to the current host
        self._buffer = b""
        self._ready = False
        self._closing = False
        self._deaths: collections.deque[float] = collections.deque(maxlen=MAX_RESTARTS)
        self._stderr_tail: collections.deque[str] = collections.deque(maxlen=50)
        self.restarts = 0
        self.gave_up = False
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(max(2, os.cpu_count() or 2))
        self._local_event.connect(self._on_local_event, Qt.ConnectionType.QueuedConnection)
        self.process: QProcess | None = None

    # host lifecycle ----------------------------------------------------------
    @property
    def host_pid(self) -> int:
        if self.process is None or self.process.state() == QProcess.ProcessState.NotRunning:
            return 0
        return int(self.process.processId())

    @property
    def ready(self) -> bool:
        return self._ready

    def start(self) -> None:
        """Start the engine host (called lazily by :meth:`submit`)."""
        if self.process is not None and self.process.state() != QProcess.ProcessState.NotRunning:
            return
        self._closing = False
        self._ready = False
        self._buffer = b""
        proc = QProcess(self)
        env = QProcessEnvironment.systemEnvironment()
        env.insert("PYTHONUNBUFFERED", "1")
        if self.isolated:
            env.remove(ENV_EXTRA_PLUGINS)
        proc.setProcessEnvironment(env)
        args = ["-m", "engines.core.host", "--home", str(self.home.root)]
        for p in self.plugins:
            args += ["--plugin", p]
        if self.isolated:
            args.append("--isolated")
        proc.readyReadStandardOutput.connect(self._on_stdout)
        proc.readyReadStandardError.connect(self._on_stderr)
        proc.finished.connect(self._on_finished)
        proc.errorOccurred.connect(self._on_error)
        self.process = proc
        proc.start(sys.executable, args)

    def shutdown(self, timeout_ms: int = 3000) -> None:
        """Stop the host (jobs in flight are cancelled) and wait for local jobs."""
        self._closing = True
        for job in list(self._inflight.values()) + self._pending:
            job.token.cancel()
        proc = self.process
        if proc is not None and proc.state() != QProcess.ProcessState.NotRunning:
            proc.write(b'{"op": "shutdown"}\n')
            proc.closeWriteChannel()
            if not proc.waitForFinished(timeout_ms):
                proc.kill()
                proc.waitForFinished(1000)
        for job in self.jobs.values():
            job.token.cancel()
        self.pool.waitForDone(timeout_ms)

    def _on_error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart and not self._closing:
            msg = f"The engine host could not be started ({sys.executable} -m engines.core.host)."
            self.gave_up = True
            self._fail_all(msg)
            self.hostDied.emit(msg)

    def _on_finished(self, exit_code: int, status: QProcess.ExitStatus) -> None:
        self._ready = False
        if self._closing:
            return
        self._on_stdout()  # events written just before the end still count
        if status == QProcess.ExitStatus.CrashExit:
            how = _signal_name(exit_code)
        else:
            how = f"exit code {exit_code}"
        running = list(self._inflight.values())
        what = ", ".join(f"'{j.command_id}'" for j in running)
        now = time.monotonic()
        self._deaths.append(now)
        give_up = len(self._deaths) == MAX_RESTARTS and now - self._deaths[0] < RESTART_WINDOW_S
        tail = "it keeps stopping, so it was not restarted: see the log" if give_up else "it was restarted"
        if running:
            msg = (f"The engine host stopped ({how}) while running {what}; {tail}. "
                   "Your library and settings are safe.")
        else:
            msg = f"The engine host stopped ({how}); {tail}. Your library and settings are safe."
        err = {"kind": "host_crashed", "message": msg, "path": None, "problem": how,
               "log": "".join(self._stderr_tail)[-4000:]}
        for job in running:
            job._fail(err)
        self._inflight.clear()
        self.process = None
        if give_up:
            self.gave_up = True
            for job in self._pending:
                job._fail(err)
            self._pending.clear()
        else:
            self.restarts += 1
            self.start()
        self.hostDied.emit(msg)

    def _fail_all(self, msg: str) -> None:
        err = {"kind": "host_crashed", "message": msg, "path": None, "problem": msg}
        for job in list(self._inflight.values()) + self._pending:
            job._fail(err)
        self._inflight.clear()
        self._pending.clear()

    def _on_stderr(self) -> None:
        if self.process is None:
            return
        text = bytes(self.process.readAllStandardError().data()).decode("utf-8", "replace")
        self._stderr_tail.append(text)
        sys.stderr.write(text)

    def _on_stdout(self) -> None:
        proc = self.process
        if proc is None:
            return
        self._buffer += bytes(proc.readAllStandardOutput().data())
        *lines, self._buffer = self._buffer.split(b"\n")
        for raw in lines:
            if not raw.strip():
                continue
            try:
                event = json.loads(raw)
            except ValueError:
                self._stderr_tail.append(f"[bad host line] {raw[:200]!r}\n")
                continue
            self._dispatch(event)

    def _dispatch(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == "ready":
            self._ready = True
            self.hostReady.emit(int(event.get("pid") or 0))
            pending, self._pending = self._pending, []
            for job in pending:
                self._send(job)
            return
        job = self._inflight.get(str(event.get("job")))
        if job is None:
            return
        if kind == "started":
            job._start()
        elif kind == "progress":
            job._progress(float(event.get("fraction") or 0.0), str(event.get("message") or ""))
        elif kind == "result":
            self._inflight.pop(job.id, None)
            job._finish(Result.from_dict(event.get("result") or {}))
        elif kind == "error":
            self._inflight.pop(job.id, None)
            job._fail(event.get("error") or {"kind": "internal_error", "message": "unknown error"})

    def _send(self, job: Job) -> None:
        if job.done:
            return
        assert self.process is not None
        self._inflight[job.id] = job
        line = json.dumps({"op": "run", "job": job.id, "command": job.command_id, "params": job.params})
        self.process.write(line.encode("utf-8") + b"\n")

    # jobs ----------------------------------------------------------------------
    def submit(self, command_id: str, params: Mapping[str, Any] | None = None, *,
               title: str | None = None, visible: bool = True) -> Job:
        """Run ``command_id`` with ``params``; returns the :class:`Job` at once.

        Parameters are validated here first, so a mistake is reported without a round
        trip; ``visible=False`` keeps quick housekeeping jobs out of the jobs dock.
        """
        params = dict(params or {})
        command = self.registry.get(command_id) if command_id in self.registry else None
        local = command is not None and command.runs_in == "local"
        job = Job(str(next(self._ids)), command_id, title or (command.title if command else command_id),
                  params, visible=visible, local=local, parent=self)
        self.jobs[job.id] = job
        self.jobAdded.emit(job)
        if command is not None:
            try:
                job.params = json.loads(json.dumps(command.bind(params), default=str))
            except EngineError as exc:
                job._fail(exc.to_dict())
                return job
        if local:
            self.pool.start(_LocalRunnable(self, job))
        elif self.gave_up:
            job._fail({"kind": "host_crashed", "message": "The engine host is not running; restart the app.",
                       "path": None, "problem": "host down"})
        elif self._ready and self.process is not None:
            self._send(job)
        else:
            self._pending.append(job)
            self.start()
        return job

    def cancel(self, job: Job) -> None:
        if job.done:
            return
        job.token.cancel()
        if job in self._pending:
            self._pending.remove(job)
            job._fail({"kind": "cancelled", "message": "cancelled by the user", "path": None,
                       "problem": "cancelled"})
        elif job.id in self._inflight and self.process is not None:
            self.process.write(json.dumps({"op": "cancel", "job": job.id}).encode() + b"\n")

    def ping(self) -> None:
        if self.process is not None and self._ready:
            self.process.write(b'{"op": "ping"}\n')

    @Slot(str, str, object)
    def _on_local_event(self, job_id: str, kind: str, payload: dict[str, Any]) -> None:
        job = self.jobs.get(job_id)
        if job is None:
            return
        if kind == "started":
            job._start()
        elif kind == "progress":
            job._progress(float(payload["fraction"]), str(payload["message"]))
        elif kind == "result":
            job._finish(Result.from_dict(payload["result"]))
        elif kind == "error":
            job._fail(payload["error"])

    def active_jobs(self) -> list[Job]:
        return [j for j in self.jobs.values() if not j.done]
