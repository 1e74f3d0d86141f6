"""`pystats run -i/-t`, `attach` to such a workload, and `pystats exec`: a terminal (or pipes)
relayed through the agent's API to the workload's shim (agent.api.stdio_routes).

With -t this terminal is put in raw mode, so every key (^C too) goes to the workload's pty, and
its size follows SIGWINCH. Detach keys (default ctrl-p,ctrl-q, or --detach-keys) leave the
workload running, as docker's. The exit status is the workload's (or the exec'd command's).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from agent.api.socketpath import unreachable
from agent.cli.stdioopts import DEFAULT_DETACH_KEYS, parse_detach_keys
from workloads.runtime import stdio_proto as proto

EXIT_ERROR = 125  # as docker's for a failure of its own


class DetachMatcher:
    """Finds the detach sequence in what is typed; bytes held back while they may start it
    are sent once they turn out not to."""

    def __init__(self, keys: bytes) -> None:
        self.keys = keys
        self._held = b""

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        """(bytes to send on, whether the sequence was typed)."""
        if not self.keys:
            return data, False
        out = bytearray()
        for b in data:
            cand = self._held + bytes([b])
            if self.keys.startswith(cand):
                self._held = cand
                if cand == self.keys:
                    self._held = b""
                    return bytes(out), True
                continue
            out += self._held
            self._held = b""
            if self.keys.startswith(bytes([b])):
                self._held = bytes([b])
            else:
                out.append(b)
        return bytes(out), False


@dataclass
class Outcome:
    exit_code: int | None = None
    error: str | None = None
    detached: bool = False


def _winsize() -> tuple[int, int]:
    try:
        size = os.get_terminal_size(sys.stdout.fileno())
    except OSError:
        return 0, 0
    return size.lines, size.columns


class _Session:
    def __init__(self, ws: Any, hello: proto.Hello, keys: bytes, send_stdin: bool) -> None:
        self.ws = ws
        self.hello = hello
        self.matcher = DetachMatcher(keys)
        self.send_stdin = send_stdin
        self.outcome = Outcome()

    async def send(self, kind: bytes, payload: bytes = b"") -> None:
        with contextlib.suppress(ConnectionError, RuntimeError):
            await self.ws.send_bytes(kind + payload)

    async def run(self) -> Outcome:
        loop = asyncio.get_running_loop()
        done = asyncio.Event()
        if self.hello.tty and os.isatty(sys.stdout.fileno()):
            rows, cols = _winsize()
            await self.send(proto.WINSIZE, proto.pack_winsize(rows, cols))
            loop.add_signal_handler(
                signal.SIGWINCH,
                lambda: loop.create_task(self.send(proto.WINSIZE, proto.pack_winsize(*_winsize()))),
            )
        if self.send_stdin:
            self._start_stdin(loop, done)
        receiver = loop.create_task(self._receive())
        stopper = loop.create_task(done.wait())
        await asyncio.wait({receiver, stopper}, return_when=asyncio.FIRST_COMPLETED)
        for t in (receiver, stopper):
            t.cancel()
        return self.outcome

    def _start_stdin(self, loop: asyncio.AbstractEventLoop, done: asyncio.Event) -> None:
        """A thread reads stdin (a terminal, a pipe or a file alike) and hands it to the loop."""

        def on_data(data: bytes) -> None:
            if not data:
                if not self.hello.tty:
                    loop.create_task(self.send(proto.STDIN_EOF))
                return
            data, detached = self.matcher.feed(data)
            if data:
                loop.create_task(self.send(proto.STDIN, data))
            if detached:
                self.outcome.detached = True
                done.set()

        def reader() -> None:
            while True:
                try:
                    data = os.read(sys.stdin.fileno(), 65536)
                except OSError:
                    data = b""
                loop.call_soon_threadsafe(on_data, data)
                if not data:
                    return

        threading.Thread(target=reader, daemon=True).start()

    async def _receive(self) -> None:
        import aiohttp

        out, err = sys.stdout.buffer, sys.stderr.buffer
        async for msg in self.ws:
            if msg.type != aiohttp.WSMsgType.BINARY or not msg.data:
                break
            kind, payload = msg.data[:1], msg.data[1:]
            if kind == proto.STDOUT:
                out.write(payload)
                out.flush()
            elif kind == proto.STDERR:
                err.write(payload)
                err.flush()
            elif kind == proto.EXIT:
                report = proto.ExitReport.decode(payload)
                self.outcome.exit_code, self.outcome.error = report.exit_code, report.error
                return
        self.outcome.error = self.outcome.error or "the connection to the agent was lost"


@contextlib.contextmanager
def _raw_terminal(on: bool) -> Any:
    """Raw mode on this terminal while relaying a pty (the workload's line discipline echoes)."""
    fd = sys.stdin.fileno()
    if not on or not os.isatty(fd):
        yield
        return
    import termios
    import tty

    saved = termios.tcgetattr(fd)
    tty.setraw(fd, termios.TCSANOW)  # not TCSAFLUSH: what was typed ahead goes to the workload
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


async def _open(socket_path: str, name: str, req: proto.SessionRequest) -> tuple[Any, Any, Any]:
    """(http session, ws, first frame (type, payload)) of a new session."""
    import aiohttp

    from agent.api.client import ApiError

    http = aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=socket_path))
    try:
        ws = await http.ws_connect(
            f"http://localhost/v1/workloads/{quote(name, safe='')}/stdio", max_msg_size=0
        )
    except aiohttp.WSServerHandshakeError as e:
        await http.close()
        if e.status == 403:
            raise ApiError(403, f"permission denied: the pystats API refused {name!r}") from None
        raise ApiError(e.status, f"the agent refused the session: {e.status} {e.message}") from None
    except (aiohttp.ClientError, OSError) as e:
        await http.close()
        raise ApiError(0, unreachable(socket_path, e)) from None
    await ws.send_bytes(proto.REQUEST + req.encode())
    msg = await ws.receive()
    first = (msg.data[:1], msg.data[1:]) if msg.type == aiohttp.WSMsgType.BINARY else (b"", b"")
    return http, ws, first


async def session(
    socket_path: str,
    name: str,
    req: proto.SessionRequest,
    detach_keys: bytes,
    *,
    attach_only_console: bool = False,
    no_stdin: bool = False,
) -> Outcome | None:
    """Run one session; None when ``attach_only_console`` and the workload has neither -i
    nor -t (the caller follows its log instead)."""
    http, ws, (kind, payload) = await _open(socket_path, name, req)
    try:
        if kind == proto.EXIT:
            report = proto.ExitReport.decode(payload)
            return Outcome(exit_code=report.exit_code, error=report.error)
        if kind != proto.HELLO:
            return Outcome(error="the agent answered the session with something unexpected")
        hello = proto.Hello.decode(payload)
        if attach_only_console and not (hello.tty or hello.interactive):
            return None
        send_stdin = (req.interactive if req.kind == "exec" else hello.interactive) and not no_stdin
        with _raw_terminal(hello.tty and send_stdin):
            return await _Session(ws, hello, detach_keys, send_stdin).run()
    finally:
        await ws.close()
        await http.close()


def finish(outcome: Outcome) -> int:
    if outcome.detached:
        print("\r\nread escape sequence", file=sys.stderr)
        return 0
    if outcome.error is not None:
        print(f"pystats: error: {outcome.error}", file=sys.stderr)
        return EXIT_ERROR
    return EXIT_ERROR if outcome.exit_code is None else outcome.exit_code


def run_session(
    socket_path: str, name: str, req: proto.SessionRequest, keys: bytes, **kw: Any
) -> int | None:
    from agent.api.client import ApiError

    try:
        outcome = asyncio.run(session(socket_path, name, req, keys, **kw))
    except ApiError as e:
        print(f"pystats: error: {e}", file=sys.stderr)
        return EXIT_ERROR
    return None if outcome is None else finish(outcome)


# ---- pystats exec ------------------------------------------------------------------------


def exec_command(args: argparse.Namespace) -> int:
    if not args.cmd:
        from agent.cli.common import usage_error

        return usage_error(args, "exec needs a command: pystats exec NAME CMD [ARG...]")
    env: dict[str, str] = {}
    for item in args.env:  # checked by envopts.env_arg; KEY alone: the caller's value
        k, eq, v = item.partition("=")
        if eq or k in os.environ:
            env[k] = v if eq else os.environ[k]
    tty = args.tty and not args.detach
    if args.tty and not os.isatty(sys.stdin.fileno()) and args.interactive:
        print("pystats: error: the input device is not a TTY", file=sys.stderr)
        return 1
    rows, cols = _winsize() if tty else (0, 0)
    req = proto.SessionRequest(
        kind="exec",
        argv=list(args.cmd),
        env=env,
        user=args.user,
        workdir=args.workdir,
        tty=tty,
        interactive=args.interactive and not args.detach,
        detach=args.detach,
        rows=rows,
        cols=cols,
    )
    code = run_session(args.socket, args.name, req, args.detach_keys)
    return EXIT_ERROR if code is None else code


# ---- run -it and attach ------------------------------------------------------------------


def attach_console(args: argparse.Namespace, name: str, *, run: bool = False) -> int | None:
    """Attach to a workload made with -i or -t; None for one without (follow its log).
    ``run``: from `pystats run`, whose -it checks were made before the create (stdio_body)."""
    rows, cols = _winsize()
    req = proto.SessionRequest(kind="attach", rows=rows, cols=cols)
    keys = getattr(args, "detach_keys", parse_detach_keys(DEFAULT_DETACH_KEYS))
    no_stdin = getattr(args, "no_stdin", False)
    kw = {"attach_only_console": True, "no_stdin": no_stdin}
    if not run:
        return run_session(args.socket, name, req, keys, **kw)
    from agent.api.client import ApiError, WorkloadClient

    try:
        outcome = asyncio.run(session(args.socket, name, req, keys, **kw))
        if outcome is not None and outcome.error is not None:
            return _ended_before_attach(args.socket, name, outcome)
    except ApiError as e:
        print(f"pystats: error: {e}", file=sys.stderr)
        return EXIT_ERROR
    if outcome is not None and outcome.exit_code is not None and getattr(args, "rm", False):
        from agent.cli.lifecycle import final_record

        with contextlib.suppress(ApiError):  # as docker's run --rm: back once it is removed
            final_record(WorkloadClient(args.socket), name)
    return None if outcome is None else finish(outcome)


def _ended_before_attach(socket_path: str, name: str, outcome: Outcome) -> int | None:
    """`run -t -- true` whose workload was done before the attach: None (follow its log and
    exit code, as without -t) when it has exited; its exit code when --rm removed it already
    (the agent answers one wait after the removal); else the session's error."""
    from agent.api.client import ApiError, WorkloadClient

    client = WorkloadClient(socket_path)
    try:
        if client.inspect(name).get("state") == "exited":
            return None
    except ApiError as e:
        if e.status != 404:
            return finish(outcome)
        try:
            code = client._json("POST", client._path(name, "/wait")).get("exit_code")
        except ApiError:
            return finish(outcome)
        print(
            f"pystats: {name} ended and was removed (--rm) before its terminal was attached: "
            "its output is gone",
            file=sys.stderr,
        )
        return EXIT_ERROR if code is None else int(code)
    return finish(outcome)
