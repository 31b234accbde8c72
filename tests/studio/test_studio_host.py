"""The engine host's JSON-lines protocol, driven as the GUI drives it (no Qt)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest


def start_host(home) -> subprocess.Popen:
    env = dict(os.environ)
    return subprocess.Popen(
        [sys.executable, "-m", "engines.core.host", "--home", str(home), "--isolated", "--plugin", "cue_test_plugin"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, bufsize=1)


def send(proc, **msg) -> None:
    proc.stdin.write(json.dumps(msg) + "\n")
    proc.stdin.flush()


def read_until(proc, pred, timeout=15.0) -> list[dict]:
    events = []
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        line = proc.stdout.readline()
        if not line:
            break
        ev = json.loads(line)  # every stdout line is protocol JSON
        events.append(ev)
        if pred(ev):
            return events
    raise AssertionError(f"no matching event; got {events}")


@pytest.fixture
def host(studio_home):
    proc = start_host(studio_home)
    yield proc
    if proc.poll() is None:
        proc.kill()
    proc.wait(5)
    for f in (proc.stdin, proc.stdout, proc.stderr):
        f.close()


def test_ready_ping_run_cancel_errors_and_clean_stdout(host):
    ready = read_until(host, lambda e: e["event"] == "ready")[-1]
    assert "test.sleep" in ready["commands"] and ready["pid"] == host.pid
    send(host, op="ping")
    assert read_until(host, lambda e: e["event"] == "pong")[-1]["pid"] == host.pid

    # stray prints and raw writes to fd 1 do not reach the protocol stream
    send(host, op="run", job="n", command="test.noisy", params={})
    evs = read_until(host, lambda e: e.get("job") == "n" and e["event"] in ("result", "error"))
    assert evs[-1]["event"] == "result" and evs[-1]["result"]["message"] == "noisy done"

    # engines may fork workers while the host waits on stdin (no deadlock in the children)
    send(host, op="run", job="k", command="test.fork", params={})
    evs = read_until(host, lambda e: e.get("job") == "k" and e["event"] in ("result", "error"))
    assert evs[-1]["event"] == "result" and evs[-1]["result"]["data"] == [1, 2, 3]

    send(host, op="run", job="s", command="test.sleep", params={"seconds": 30, "steps": 300})
    read_until(host, lambda e: e.get("job") == "s" and e["event"] == "progress")
    send(host, op="cancel", job="s")
    err = read_until(host, lambda e: e.get("job") == "s" and e["event"] == "error")[-1]["error"]
    assert err["kind"] == "cancelled"

    send(host, op="run", job="b", command="test.boom", params={})
    err = read_until(host, lambda e: e.get("job") == "b" and e["event"] == "error")[-1]["error"]
    assert err["kind"] == "internal_error" and "RuntimeError: kaboom" in err["message"]

    send(host, op="run", job="p", command="test.files", params={"count": 99})
    err = read_until(host, lambda e: e.get("job") == "p" and e["event"] == "error")[-1]["error"]
    assert err["kind"] == "parameter_error"

    send(host, op="run", job="f", command="test.files", params={"count": 2})
    res = read_until(host, lambda e: e.get("job") == "f" and e["event"] == "result")[-1]["result"]
    assert len(res["files"]) == 2 and all(os.path.isfile(f) for f in res["files"])

    send(host, op="shutdown")
    assert host.wait(10) == 0
