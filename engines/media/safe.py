"""Run native parsers on untrusted files in a child process with time and memory limits.

verovio can segfault or abort on malformed scores and eat gigabytes on zip bombs;
tinysoundfont can segfault on malformed SoundFonts. :func:`run_isolated` runs such work in
a child process so that a crash becomes an :class:`~engines.core.errors.CorruptFileError`
naming the file, and a runaway becomes a :class:`~engines.core.errors.ResourceLimitError`.
"""

from __future__ import annotations

import importlib
import json
import os
import pickle
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any, TypeVar

from engines.core.errors import CorruptFileError, EngineError, ResourceLimitError

T = TypeVar("T")

__all__ = ["run_isolated"]


_BOOT = (
    "import json, os, sys\n"
    "sys.path[:0] = [p for p in json.loads(os.environ.pop('CUE_ISOLATED_PATH', '[]')) if p not in sys.path]\n"
    "from engines.media.safe import _child_main\n"
    "_child_main()\n"
)


def _set_limits(memory_mb: int, timeout: float) -> None:
    try:
        import resource
    except ImportError:  # Windows: no rlimits; the parent's timeout still applies
        return
    # RLIMIT_AS counts address space: allow what the child already maps plus memory_mb.
    base = 0
    try:
        with open("/proc/self/statm") as fh:
            base = int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        base = 256 * 2**20
    limit = base + int(memory_mb) * 2**20
    try:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ValueError, OSError):
        pass
    try:  # a CPU-time backstop in case the parent dies before it can kill us
        cpu = int(timeout) + 5
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
    except (ValueError, OSError):
        pass
    try:  # a crashing parser must not write multi-gigabyte core files
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except (ValueError, OSError):
        pass


def _child_main() -> None:
    """Entry point of the child: read a pickled job on stdin, answer on the original stdout."""
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # stray prints from native code go to stderr, not into the answer
    sys.stdout = sys.stderr
    fn, args, kwargs, memory_mb, timeout = pickle.load(sys.stdin.buffer)
    _set_limits(memory_mb, timeout)
    try:
        result = fn(*args, **kwargs)
        message: tuple = ("ok", result)
    except MemoryError:
        message = ("memory",)
    except EngineError as exc:
        cls = type(exc)
        message = ("engine", cls.__module__, cls.__qualname__, exc.problem, exc.path)
    except BaseException as exc:  # noqa: BLE001 - everything must reach the parent
        message = ("error", type(exc).__name__, str(exc), traceback.format_exc(limit=5))
    try:
        blob = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    except MemoryError:
        blob = pickle.dumps(("memory",))
    except Exception as exc:  # an unpicklable result
        blob = pickle.dumps(("error", type(exc).__name__, f"result could not be returned: {exc}", ""))
    out.write(blob)
    out.flush()
    out.close()


def _rebuild_engine_error(module: str, qualname: str, problem: str, path: str | None) -> EngineError:
    cls: Any = EngineError
    try:
        obj: Any = importlib.import_module(module)
        for part in qualname.split("."):
            obj = getattr(obj, part)
        if isinstance(obj, type) and issubclass(obj, EngineError):
            cls = obj
    except Exception:
        cls = EngineError
    try:
        return cls(problem, path=path)
    except TypeError:
        return cls(problem)


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def run_isolated(
    fn: Callable[..., T],
    *args: Any,
    timeout: float,
    memory_mb: int,
    path_for_errors: str | os.PathLike[str] | None = None,
    **kwargs: Any,
) -> T:
    """Run ``fn(*args, **kwargs)`` in a child process and return its result.

    Parameters
    ----------
    fn : callable
        A picklable, module-level function. Its arguments and result must be picklable.
    *args, **kwargs
        Passed to ``fn``.
    timeout : float
        Wall-clock seconds the child may run before it is killed.
    memory_mb : int
        Address space (MiB) the child may add beyond what it maps at start-up
        (``RLIMIT_AS`` on POSIX).
    path_for_errors : path, optional
        The file the work is about; every error names it.

    Returns
    -------
    object
        Whatever ``fn`` returned.

    Raises
    ------
    CorruptFileError
        The child died from a signal (a crash in native code).
    ResourceLimitError
        The child ran past ``timeout`` or out of memory.
    EngineError
        An ``EngineError`` (or subclass) raised in the child is re-raised with the same
        class and message; any other exception becomes an ``EngineError``.
    """
    if timeout <= 0 or memory_mb <= 0:
        raise ValueError("timeout and memory_mb must be positive")
    path = None if path_for_errors is None else os.fspath(path_for_errors)
    payload = pickle.dumps((fn, args, kwargs, int(memory_mb), float(timeout)),
                           protocol=pickle.HIGHEST_PROTOCOL)
    env = dict(os.environ)
    env["CUE_ISOLATED_PATH"] = json.dumps([p for p in sys.path if p and os.path.isdir(p)])
    # thread pools map large stacks and arenas, which RLIMIT_AS counts: keep the child lean
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        env[var] = "1"
    env["MALLOC_ARENA_MAX"] = "2"
    proc = subprocess.Popen(
        [sys.executable, "-c", _BOOT], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, env=env,
    )
    message: tuple | None = None
    try:
        stdout, stderr = proc.communicate(payload, timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise ResourceLimitError(
            f"gave up after {timeout:g} s: the file takes too long to process", path=path,
        ) from None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if stdout:
        try:
            message = pickle.loads(stdout)
        except Exception:
            message = None
    if message is None:
        code = proc.returncode
        if code is not None and code < 0:
            signum = -code
            if signum == signal.SIGKILL:
                raise ResourceLimitError(
                    "the parser was killed (out of memory or over its limits)", path=path,
                )
            if signum == signal.SIGXCPU:
                raise ResourceLimitError("the parser ran out of CPU time", path=path)
            hint = " (or ran out of its memory limit)" if signum == signal.SIGABRT else ""
            raise CorruptFileError(
                f"the file crashed the parser (signal {signum}, {_signal_name(signum)}){hint}",
                path=path,
            )
        detail = stderr.decode("utf-8", "replace").strip().splitlines()[-1:] if stderr else []
        raise EngineError(
            f"the parser process ended without an answer (exit code {code})"
            + (f": {detail[0][:200]}" if detail else ""), path=path,
        )

    kind = message[0]
    if kind == "ok":
        return message[1]  # type: ignore[no-any-return]
    if kind == "memory":
        raise ResourceLimitError(f"the file needs more than {memory_mb} MB of memory", path=path)
    if kind == "engine":
        raise _rebuild_engine_error(*message[1:])
    _, name, text, _tb = message
    raise EngineError(f"the parser failed: {name}: {text}", path=path)


# --- helpers for tests (module-level so that child processes can import them) ------------

def _crash_for_test() -> None:
    """Kill the current process with SIGSEGV (used by tests of :func:`run_isolated`)."""
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGSEGV)


def _sleep_for_test(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def _allocate_for_test(megabytes: int) -> int:
    block = bytearray(megabytes * 2**20)
    return len(block)


def _raise_for_test(path: str) -> None:
    raise CorruptFileError("bad header", path=path)
