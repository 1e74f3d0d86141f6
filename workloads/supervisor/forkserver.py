"""A fork server for shims: a small single-threaded process started before launches are needed.

The agent is threaded, so it must never fork and run Python in the child (architecture idiom 11).
Instead it starts this process once with subprocess (no preexec_fn); this process has already
imported the shim and the runtime, so each launch is one fork of a small process instead of a new
interpreter. Protocol on stdin/stdout, one typed message per line (as runc's parent and child
exchange typed sync messages), each with the protocol version:

    -> SpawnRequest  {"v": 2, "dir": "/var/lib/pystats/workloads/web", "run": 1}
    <- SpawnReply    {"v": 2, "pid": 1234}     or   {"v": 2, "error": "..."}

Version 1 was the same without "v"; both ends come from one installation, so a version other
than ours is refused with a reply that says so.

EOF on stdin (the agent went away) ends the server; the shims it forked live on in their own
sessions, re-parented to init.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

PROTOCOL = 2


class ProtocolError(ValueError):
    pass


def _decode(line: str) -> dict[str, Any]:
    try:
        msg = json.loads(line)
    except ValueError as e:
        raise ProtocolError(f"not JSON: {e}") from None
    if not isinstance(msg, dict):
        raise ProtocolError("not a JSON object")
    if msg.get("v") != PROTOCOL:
        raise ProtocolError(f"protocol version {msg.get('v')!r}, this end speaks {PROTOCOL}")
    return msg


@dataclass(frozen=True)
class SpawnRequest:
    """Start a shim for run ``run`` of the workload whose state directory is ``wdir``."""

    wdir: str
    run: int

    def encode(self) -> str:
        return json.dumps({"v": PROTOCOL, "dir": self.wdir, "run": self.run}) + "\n"

    @classmethod
    def decode(cls, line: str) -> SpawnRequest:
        msg = _decode(line)
        wdir, run = msg.get("dir"), msg.get("run")
        if not isinstance(wdir, str) or not wdir:
            raise ProtocolError(f"dir: expected a path, got {wdir!r}")
        if not isinstance(run, int) or isinstance(run, bool) or run < 1:
            raise ProtocolError(f"run: expected a positive int, got {run!r}")
        return cls(wdir, run)


@dataclass(frozen=True)
class SpawnReply:
    """The shim's PID, or why there is none."""

    pid: int | None = None
    error: str | None = None

    def encode(self) -> str:
        body: dict[str, Any] = {"v": PROTOCOL}
        if self.pid is not None:
            body["pid"] = self.pid
        else:
            body["error"] = self.error or "no reason given"
        return json.dumps(body) + "\n"

    @classmethod
    def decode(cls, line: str) -> SpawnReply:
        if not line:
            raise ProtocolError("no answer (the fork server exited)")
        msg = _decode(line)
        pid, error = msg.get("pid"), msg.get("error")
        if isinstance(pid, int) and not isinstance(pid, bool) and pid > 0:
            return cls(pid=pid)
        if isinstance(error, str):
            return cls(error=error)
        raise ProtocolError(f"neither a pid nor an error: {line.strip()!r}")


def _serve(
    inp: IO[str],
    out: IO[str],
    run_shim: Callable[[str, int], int],
    warm: Callable[[str], None] | None = None,
) -> int:
    # Shims are not waited for here: let the kernel reap them.
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for line in inp:
        try:
            req = SpawnRequest.decode(line)
        except ProtocolError as e:
            out.write(SpawnReply(error=f"bad request: {e}").encode())
            out.flush()
            continue
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = run_shim(req.wdir, req.run)
            except BaseException as e:  # the shim's own log is stderr by now
                print(f"shim failed: {e!r}", file=sys.stderr)
            finally:
                os._exit(code)
        out.write(SpawnReply(pid=pid).encode())
        out.flush()
        if warm is not None:  # after the reply: off this launch's path, on the next one's
            warm(req.wdir)
    return 0


class ForkServerClient:
    """The agent's handle on its fork server. Thread-safe; calls block (use a worker thread)."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen[str] | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        pkg_parent = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (pkg_parent, env.get("PYTHONPATH")) if p)
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "workloads.supervisor.forkserver"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            close_fds=True,
        )

    def spawn(self, wdir: str, run: int) -> int:
        with self._lock:
            proc = self._proc
            if proc is None or proc.poll() is not None:
                self.start()
                proc = self._proc
            assert proc is not None and proc.stdin is not None and proc.stdout is not None
            proc.stdin.write(SpawnRequest(wdir, run).encode())
            proc.stdin.flush()
            answer = proc.stdout.readline()
        try:
            reply = SpawnReply.decode(answer)
        except ProtocolError as e:
            raise RuntimeError(f"fork server: {e}") from None
        if reply.pid is None:
            raise RuntimeError(f"fork server: {reply.error}")
        return reply.pid

    def close(self) -> None:
        with self._lock:
            proc, self._proc = self._proc, None
        if proc is not None:
            assert proc.stdin is not None
            proc.stdin.close()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()


def _trim_heap() -> None:
    """Give the heap's free pages back (what importing left): every shim forked inherits them."""
    import ctypes  # loaded already, by the runtime

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).malloc_trim(0)


def main() -> int:
    # Imported here, not at the top: the manager imports this module for the client only and
    # must not load the shim and the runtime; the server loads them once, before any fork.
    from workloads.supervisor import shim

    _trim_heap()
    return _serve(sys.stdin, sys.stdout, shim.run_shim, shim.warm)


if __name__ == "__main__":
    sys.exit(main())
