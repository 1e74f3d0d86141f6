"""The shim's side of interactive work: the workload's -i/-t stdio, `attach` and `exec`.

The shim owns everything here, so it all outlives the agent:

- with -t, a pty: the workload gets the slave (its controlling terminal, workloads.runtime.stdio),
  the shim reads the master into the log (``pystats logs`` still has the output) and relays it;
- with -i, the workload's stdin: a pipe (or the pty) that attached clients write to;
- ``stdio.sock`` (workloads.runtime.stdio_proto): the agent connects for a client that passed
  its access check; a session is an attach to the workload's stdio, or an exec: a new process
  forked here that enters the workload (workloads.runtime.exec), its stdio relayed the same way
  and its exit code sent at the end. An exec'd process is the shim's child, so it never runs
  under the agent and ends with the workload at the latest (its PID namespace's init).

Everything runs in the shim's one select loop (its ``_pump``): each fd here is registered with a
callback. Writes to clients block for at most CLIENT_TIMEOUT_S; a client that stalls longer is
dropped rather than stalling the workload's log.
"""

from __future__ import annotations

import contextlib
import errno
import os
import selectors
import socket
import time
from collections.abc import Callable
from typing import Final

from cgroupfs.paths import CgroupRoot
from workloads.runtime import exec as rexec
from workloads.runtime import stdio
from workloads.runtime import stdio_proto as proto
from workloads.runtime.init import EXIT_SETUP
from workloads.runtime.spec import WorkloadSpec

CLIENT_TIMEOUT_S: Final = 5.0
REPLAY_BYTES: Final = 64 * 1024  # output kept for the first attach (`run -it` attaches late)
ATTACH_WAIT_S: Final = 30.0  # how long the output of `run` without -d waits for its client
MAX_PENDING: Final = 1 << 20  # stdin not yet read by its process
READ: Final = selectors.EVENT_READ


def read_some(fd: int) -> bytes | None:
    """os.read, with a pty master's EIO (every slave closed) as the EOF it means; None when
    there is nothing to read after all (a pty master is non-blocking: see Feeder)."""
    try:
        return os.read(fd, 65536)
    except BlockingIOError:
        return None
    except OSError as e:
        if e.errno == errno.EIO:
            return b""
        raise


class Feeder:
    """The stdin of the workload or of an exec'd process (a pipe, or a dup of its pty master),
    written without ever blocking the shim: what the process has not read yet waits here, up
    to MAX_PENDING (more is dropped: a stalled reader must not stall the log of the workload).
    Non-blocking mode is shared with the pty master's reader, hence read_some's None."""

    def __init__(self, console: Console, fd: int) -> None:
        self.console = console
        self.fd = fd
        os.set_blocking(fd, False)
        self.pending = bytearray()
        self.watched = False
        self.eof = False
        self.closed = False

    def write(self, data: bytes) -> None:
        if not (self.closed or self.eof):
            self.pending += data[: max(0, MAX_PENDING - len(self.pending))]
            self._flush()

    def finish(self) -> None:
        """Close once what is pending is written: the reader sees EOF."""
        self.eof = True
        self._flush()

    def _flush(self) -> None:
        if self.closed:
            return
        try:
            while self.pending:
                del self.pending[: os.write(self.fd, self.pending)]
        except BlockingIOError:
            pass
        except OSError:  # its reader is gone
            self.pending.clear()
            self.eof = True
        if self.pending and not self.watched:
            self.console.watch(self.fd, self._flush, selectors.EVENT_WRITE)
            self.watched = True
        elif not self.pending:
            if self.watched:
                self.console._unregister(self.fd)
                self.watched = False
            if self.eof:
                self.close()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if self.watched:
                self.console._unregister(self.fd)
            os.close(self.fd)


class Client:
    """One connection from the agent: frames in, frames out."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.reader = proto.FrameReader()
        self.closed = False
        sock.settimeout(CLIENT_TIMEOUT_S)

    def send(self, kind: bytes, payload: bytes = b"") -> bool:
        if self.closed:
            return False
        try:
            view = memoryview(payload)
            while True:  # frames of at most MAX_FRAME
                part, view = view[: proto.MAX_FRAME], view[proto.MAX_FRAME :]
                self.sock.sendall(proto.encode(kind, bytes(part)))
                if not view:
                    return True
        except OSError:
            self.close()
            return False

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.sock.close()


class Console:
    """The workload's stdio and the stdio socket of one run."""

    def __init__(
        self, wdir: str, spec: WorkloadSpec, root: CgroupRoot, rel: str, first_run: bool = True
    ) -> None:
        self.wdir = wdir
        self.spec = spec
        self.opts = spec.stdio
        self.root = root
        self.rel = rel
        self.pid: int | None = None  # the workload's PID 1 (host PID), once forked
        self._sel: selectors.BaseSelector | None = None
        self._listener: socket.socket | None = None
        self._stdin: Feeder | None = None  # the workload's (a pipe, or a dup of the pty master)
        self._master: int | None = None
        self._slave = -1
        self._child_fds: list[int] = []
        self._attached: list[Client] = []
        self._replay: bytearray | None = bytearray() if self.opts.console else None
        self._sessions: list[ExecSession] = []
        self._wait_for_client = self.opts.attach and first_run  # not a restart's or start's
        self._held: dict[int, str] = {}  # output fds (-> stream) not read yet: read_output
        self._hold_until = 0.0
        self.released_at = 0.0  # when held output was let go (the shim's drain counts from it)

    # ---- the workload's own stdio ---------------------------------------------------------

    def workload_stdio(self) -> tuple[int, int, int | None]:
        """(read end for the log, the workload's stdout+stderr, its stdin or None for
        /dev/null). The shim closes the middle one after the fork; ``forked`` the rest."""
        if self.opts.tty:
            master, slave = os.openpty()
            stdio.set_winsize(master, 24, 80)
            self._master, self._slave = master, slave
            self._stdin = Feeder(self, os.dup(master))
            return master, slave, slave
        out_r, out_w = os.pipe2(os.O_CLOEXEC)
        if not self.opts.interactive:
            return out_r, out_w, None
        in_r, in_w = os.pipe2(os.O_CLOEXEC)
        self._stdin = Feeder(self, in_w)
        self._child_fds.append(in_r)
        return out_r, out_w, in_r

    def stderr_pipe(self) -> tuple[int, int]:
        """The workload's stderr pipe (read end, write end). With -t its stderr is the pty too
        (one stream, as docker's): the write end is the slave again, the read end at EOF."""
        r, w = os.pipe2(os.O_CLOEXEC)
        if not self.opts.tty:
            return r, w
        os.close(w)
        return r, os.dup(self._slave)

    def forked(self, pid: int) -> None:
        """The workload is forked: drop its ends (the pty slave is closed by the shim as its
        stdout), and listen for sessions."""
        self.pid = pid
        for fd in self._child_fds:
            os.close(fd)
        self._child_fds = []
        self._listen()

    def _listen(self) -> None:
        path = proto.socket_path(self.wdir)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        dir_fd = os.open(self.wdir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        old = os.umask(0o177)  # 0600: root's, and only the agent connects (see stdio_proto)
        try:
            sock.bind(proto.short_path(path, dir_fd))
        finally:
            os.umask(old)
            os.close(dir_fd)
        sock.listen(8)
        sock.setblocking(False)
        self._listener = sock

    def register(self, sel: selectors.BaseSelector) -> None:
        """Join the shim's select loop: its keys carry a callable as their data."""
        self._sel = sel
        if self._listener is not None:
            sel.register(self._listener, READ, self._accept)

    def read_output(self, outs: dict[int, str]) -> None:
        """Watch the workload's output fds (fd -> stream) in the select loop: now, or, for the
        first run of a `pystats run` without -d (stdio.attach), once its client has attached,
        as docker's run attaches before it starts. A quick command's output, and so its exit
        (read after the output) and a --rm removal, then wait for the client; at most
        ATTACH_WAIT_S, for a client that never comes."""
        self._held = dict(outs)
        if self._wait_for_client:
            self._hold_until = time.monotonic() + ATTACH_WAIT_S
        else:
            self.release()

    def hold_left(self) -> float | None:
        """Seconds the output still waits for the run's client; None when it does not."""
        if not (self._held and self._wait_for_client):
            return None
        return max(0.0, self._hold_until - time.monotonic())

    def release(self) -> None:
        """Read the workload's output from now on (its client attached, or will not)."""
        held, self._held = self._held, {}
        if self._wait_for_client:
            self._wait_for_client = False
            self.released_at = time.monotonic()
        for fd, stream in held.items():
            assert self._sel is not None
            self._sel.register(fd, READ, stream)

    def output(self, chunk: bytes, stderr: bool = False) -> None:
        """The workload's output (already in the log): to every attached client."""
        kind = proto.STDERR if stderr else proto.STDOUT
        if self._replay is not None and not stderr:
            self._replay += chunk
            del self._replay[: max(0, len(self._replay) - REPLAY_BYTES)]
        for c in list(self._attached):
            if not c.send(kind, chunk):
                self._drop(c)

    def finish(self, exit_code: int) -> None:
        """The workload has exited (its log is complete): tell attached clients, stop serving."""
        for c in self._attached:
            c.send(proto.EXIT, proto.ExitReport(exit_code=exit_code).encode())
            c.close()
        self._attached = []
        for s in list(self._sessions):
            s.abandon()
        if self._listener is not None:
            self._unregister(self._listener)
            self._listener.close()
            self._listener = None
            with contextlib.suppress(OSError):
                os.unlink(proto.socket_path(self.wdir))
        for fd in self._child_fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        if self._stdin is not None:
            self._stdin.close()
            self._stdin = None

    # ---- sessions -------------------------------------------------------------------------

    def _unregister(self, obj: socket.socket | int) -> None:
        if self._sel is not None:
            with contextlib.suppress(KeyError, ValueError):
                self._sel.unregister(obj)

    def watch(
        self, fd: socket.socket | int, callback: Callable[[], None], events: int = READ
    ) -> None:
        assert self._sel is not None
        self._sel.register(fd, events, callback)

    def _accept(self) -> None:
        assert self._listener is not None
        try:
            sock, _ = self._listener.accept()
        except BlockingIOError:
            return
        client = Client(sock)
        self.watch(sock, lambda: self._first_frame(client))

    def _drop(self, c: Client) -> None:
        self._unregister(c.sock)
        c.close()
        if c in self._attached:
            self._attached.remove(c)

    def _recv(self, c: Client) -> list[tuple[bytes, bytes]] | None:
        """The frames that arrived, None when the client is gone (or broke the protocol)."""
        try:
            data = c.sock.recv(65536)
        except OSError:
            data = b""
        if not data:
            return None
        try:
            return c.reader.feed(data)
        except proto.FrameError:
            return None

    def _first_frame(self, c: Client) -> None:
        frames = self._recv(c)
        if frames is None:
            self._drop(c)
            return
        if not frames:
            return
        (kind, payload), rest = frames[0], frames[1:]
        try:
            if kind != proto.REQUEST:
                raise proto.FrameError("the first frame must be a session request")
            req = proto.SessionRequest.decode(payload)
        except proto.FrameError as e:
            c.send(proto.EXIT, proto.ExitReport(error=f"bad request: {e}").encode())
            self._drop(c)
            return
        self._unregister(c.sock)
        if req.kind == "attach":
            self._attach(c, req, rest)
        else:
            self._exec(c, req)

    def _attach(
        self, c: Client, req: proto.SessionRequest, rest: list[tuple[bytes, bytes]]
    ) -> None:
        self.release()  # the run's client came (read in later turns of the loop, after this)
        hello = proto.Hello(tty=self.opts.tty, interactive=self.opts.interactive)
        if not c.send(proto.HELLO, hello.encode()):
            return
        if self._master is not None and req.rows and req.cols:
            self._resize(req.rows, req.cols)
        if self._replay is not None:  # the first attach gets what it missed (`run -it`)
            replay, self._replay = bytes(self._replay), None
            if replay and not c.send(proto.STDOUT, replay):
                return
        self._attached.append(c)
        self.watch(c.sock, lambda: self._from_attached(c))
        self._input(rest)

    def _from_attached(self, c: Client) -> None:
        frames = self._recv(c)
        if frames is None:
            self._drop(c)
            return
        self._input(frames)

    def _input(self, frames: list[tuple[bytes, bytes]]) -> None:
        for kind, payload in frames:
            if kind == proto.STDIN and self._stdin is not None:
                self._stdin.write(payload)
            elif kind == proto.STDIN_EOF and not self.opts.tty:
                self._close_stdin()
            elif kind == proto.WINSIZE and self._master is not None:
                with contextlib.suppress(proto.FrameError, OSError):
                    self._resize(*proto.unpack_winsize(payload))

    def _close_stdin(self) -> None:
        if self._stdin is not None and self._master is None:
            self._stdin.finish()
            self._stdin = None

    def _resize(self, rows: int, cols: int) -> None:
        assert self._master is not None
        stdio.set_winsize(self._master, rows, cols)

    def _exec(self, c: Client, req: proto.SessionRequest) -> None:
        error = None
        try:
            if self.pid is None or rexec.same_ns(self.pid, "mnt"):  # not yet in its namespaces
                error = "the workload is not running"
        except OSError:
            error = "the workload is not running"
        if req.user is not None and req.uid is None:
            error = f"user {req.user!r} was not resolved to ids by the agent"
        if error is not None:
            c.send(proto.EXIT, proto.ExitReport(error=error).encode())
            c.close()
            return
        session = ExecSession(self, c, req)
        self._sessions.append(session)
        session.start()

    def ended(self, session: ExecSession) -> None:
        if session in self._sessions:
            self._sessions.remove(session)


class ExecSession:
    """One `pystats exec`: its process (a child of the shim), its stdio, its client."""

    def __init__(self, console: Console, client: Client, req: proto.SessionRequest) -> None:
        self.console = console
        self.client = client
        self.req = req
        self.pid = 0
        self._pidfd = -1
        self._outs: dict[int, bytes] = {}  # our read ends: fd -> frame type
        self._stdin: Feeder | None = None
        self._master: int | None = None

    def start(self) -> None:
        req, con = self.req, self.console
        theirs: list[int] = []
        if req.tty:
            master, slave = os.openpty()
            stdio.set_winsize(master, req.rows or 24, req.cols or 80)
            self._master = master
            self._outs[master] = proto.STDOUT
            self._stdin = Feeder(con, os.dup(master)) if req.interactive else None
            child_fds = (slave, slave, slave)
            theirs = [slave]
        else:
            out_r, out_w = os.pipe2(os.O_CLOEXEC)
            err_r, err_w = os.pipe2(os.O_CLOEXEC)
            self._outs = {out_r: proto.STDOUT, err_r: proto.STDERR}
            if req.interactive:
                in_r, in_w = os.pipe2(os.O_CLOEXEC)
                self._stdin = Feeder(con, in_w)
            else:
                in_r = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
            child_fds = (in_r, out_w, err_w)
            theirs = [in_r, out_w, err_w]
        if req.detach:  # exec -d: output goes nowhere, as docker's
            null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
            child_fds = (null, null, null)
            theirs.append(null)
        assert con.pid is not None
        opts = rexec.ExecOpts(
            argv=req.argv,
            env=req.env,
            workdir=req.workdir,
            uid=req.uid,
            gid=req.gid,
            groups=req.groups,
            tty=req.tty and not req.detach,
        )
        pid = os.fork()
        if pid == 0:
            try:
                for i, fd in enumerate(child_fds):
                    os.dup2(fd, i)
                os.closerange(3, max(os.sysconf("SC_OPEN_MAX"), 1 << 16))
                rexec.enter_and_exec(con.spec, opts, con.pid, con.root, con.rel)
            finally:
                os._exit(EXIT_SETUP)
        self.pid = pid
        for fd in theirs:
            os.close(fd)
        self._pidfd = os.pidfd_open(pid)
        con.watch(self._pidfd, self._exited)
        if req.detach:
            self._close_ours()
            self.client.send(proto.HELLO, proto.Hello(tty=False, interactive=False).encode())
            self.client.send(proto.EXIT, proto.ExitReport(exit_code=0).encode())
            self.client.close()
            return
        self.client.send(proto.HELLO, proto.Hello(req.tty, req.interactive).encode())
        for fd in self._outs:
            con.watch(fd, self._reader(fd))
        con.watch(self.client.sock, self._from_client)

    def _reader(self, fd: int) -> Callable[[], None]:
        return lambda: self._output(fd)

    def _output(self, fd: int) -> None:
        data = read_some(fd)
        if data is None:
            return
        if not data:
            self._close_out(fd)
            return
        if not self.client.send(self._outs[fd], data):
            self._client_gone()

    def _close_out(self, fd: int) -> None:
        if fd in self._outs:
            self.console._unregister(fd)
            del self._outs[fd]
            os.close(fd)

    def _from_client(self) -> None:
        frames = self.console._recv(self.client)
        if frames is None:
            self._client_gone()
            return
        for kind, payload in frames:
            if kind == proto.STDIN and self._stdin is not None:
                self._stdin.write(payload)
            elif kind == proto.STDIN_EOF and self._master is None:
                self._close_stdin()
            elif kind == proto.WINSIZE and self._master is not None:
                with contextlib.suppress(proto.FrameError, OSError):
                    stdio.set_winsize(self._master, *proto.unpack_winsize(payload))

    def _close_stdin(self) -> None:
        if self._stdin is not None:
            self._stdin.finish()
            self._stdin = None

    def _client_gone(self) -> None:
        """Its client left: the process loses its terminal (SIGHUP) or its pipes; the session
        lives on until it exits, to reap it."""
        self.console._unregister(self.client.sock)
        self.client.close()
        self._close_ours()

    def _close_ours(self) -> None:
        self._close_stdin()
        for fd in list(self._outs):
            self._close_out(fd)

    def _exited(self) -> None:
        _, status = os.waitpid(self.pid, 0)
        self.console._unregister(self._pidfd)
        os.close(self._pidfd)
        self._pidfd = -1
        code = os.waitstatus_to_exitcode(status)
        code = 128 - code if code < 0 else code
        for fd in list(self._outs):  # what is left in the pipes: the process has exited
            os.set_blocking(fd, False)
            while True:
                data = read_some(fd)
                if not data:
                    break
                self.client.send(self._outs[fd], data)
        self._close_ours()
        if not self.client.closed:
            self.console._unregister(self.client.sock)
            self.client.send(proto.EXIT, proto.ExitReport(exit_code=code).encode())
            self.client.close()
        self.console.ended(self)

    def abandon(self) -> None:
        """The workload has ended (its PID namespace with it): tell the client, let go."""
        if not self.client.closed:
            self.client.send(proto.EXIT, proto.ExitReport(error="the workload exited").encode())
        self._client_gone()
