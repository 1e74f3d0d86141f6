"""procs.takes_signal: a signal is acted on (blocked: pending; caught: handled) or would be
dropped by a namespace's init (neither); read from /proc/<pid>/status."""

from __future__ import annotations

import os
import signal
import time

from workloads.supervisor import procs


def _child(setup: str) -> int:
    """A child with SIGUSR1 blocked, caught or at its default; returns once it is set."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        if setup == "block":
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
        elif setup == "catch":
            signal.signal(signal.SIGUSR1, lambda *_: None)
        else:
            signal.signal(signal.SIGUSR1, signal.SIG_DFL)
        os.write(w, b"x")
        time.sleep(30)
        os._exit(0)
    os.close(w)
    os.read(r, 1)
    os.close(r)
    return pid


def test_blocked_caught_and_default() -> None:
    pids = {s: _child(s) for s in ("block", "catch", "default")}
    try:
        assert procs.takes_signal(pids["block"], signal.SIGUSR1) is True
        assert procs.takes_signal(pids["catch"], signal.SIGUSR1) is True
        assert procs.takes_signal(pids["default"], signal.SIGUSR1) is False
        assert procs.takes_signal(pids["default"], signal.SIGUSR2) is False
    finally:
        for pid in pids.values():
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    assert procs.takes_signal(pids["block"], signal.SIGUSR1) is None  # gone
