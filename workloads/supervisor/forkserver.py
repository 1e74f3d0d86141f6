"""A fork server for shims: a small single-threaded process started before launches are needed.

The agent is threaded, so it must never fork and run Python in the child (architecture idiom 11).
Instead it starts this process once with subprocess (no preexec_fn); this process has already
imported the shim and the runtime, so each launch is one fork of a small process instead of a new
interpreter. Protocol on stdin/stdout, one JSON object per line:

    -> {"dir": "/var/lib/pystats/workloads/web", "run": 1}
    <- {"pid": 1234}            or   {"error": "..."}

EOF on stdin (the agent went away) ends the server; the shims it forked live on in their own
sessions, re-parented to init.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from typing import IO, Any

from workloads.supervisor import shim


def _serve(inp: IO[str], out: IO[str]) -> int:
    # Shims are not waited for here: let the kernel reap them.
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for line in inp:
        try:
            req = json.loads(line)
            wdir, run = str(req["dir"]), int(req["run"])
        except (ValueError, KeyError, TypeError) as e:
            out.write(json.dumps({"error": f"bad request: {e}"}) + "\n")
            out.flush()
            continue
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = shim.run_shim(wdir, run)
            except BaseException as e:  # the shim's own log is stderr by now
                print(f"shim failed: {e!r}", file=sys.stderr)
            finally:
                os._exit(code)
        out.write(json.dumps({"pid": pid}) + "\n")
        out.flush()
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
            proc.stdin.write(json.dumps({"dir": wdir, "run": run}) + "\n")
            proc.stdin.flush()
            reply: dict[str, Any] = json.loads(proc.stdout.readline() or "{}")
        if "pid" not in reply:
            raise RuntimeError(f"fork server: {reply.get('error', 'no answer')}")
        return int(reply["pid"])

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


def main() -> int:
    return _serve(sys.stdin, sys.stdout)


if __name__ == "__main__":
    sys.exit(main())
