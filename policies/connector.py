"""The netlink proc connector: fork, exec, uid and gid events from the kernel.

``ConnectorThread`` receives them in a dedicated thread (blocking recv into one reused buffer,
no event loop in between) and hands each process event to a callback there: the engine's event
path runs off the asyncio loop, so a busy loop does not delay a placement, and the thread may
run at a higher priority than the rest of the daemon.

socket(AF_NETLINK, SOCK_DGRAM, NETLINK_CONNECTOR), bound to the CN_IDX_PROC multicast group, then
PROC_CN_MCAST_LISTEN. Needs CAP_NET_ADMIN and a kernel with CONFIG_PROC_EVENTS; inside a PID or
network namespace other than the initial one the kernel sends nothing (it only reports to the
initial namespaces), which ``ProcConnector.open`` cannot tell: the engine's periodic reconcile
covers that case too.

Layout (include/uapi/linux/connector.h, cn_proc.h):
  nlmsghdr  u32 len, u16 type, u16 flags, u32 seq, u32 pid           16 bytes
  cn_msg    u32 idx, u32 val, u32 seq, u32 ack, u16 len, u16 flags   20 bytes
  proc_event u32 what, u32 cpu, u64 timestamp_ns, then the event's data
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

NETLINK_CONNECTOR = 11
CN_IDX_PROC = 1
CN_VAL_PROC = 1
NLMSG_DONE = 3
PROC_CN_MCAST_LISTEN = 1
PROC_CN_MCAST_IGNORE = 2

PROC_EVENT_NONE = 0
PROC_EVENT_FORK = 0x1
PROC_EVENT_EXEC = 0x2
PROC_EVENT_UID = 0x4
PROC_EVENT_GID = 0x40
PROC_EVENT_EXIT = 0x80000000

_NLMSGHDR = struct.Struct("=IHHII")
_CN_MSG = struct.Struct("=IIIIHH")
_EVENT_HEAD = struct.Struct("=IIQ")
_HEAD = _NLMSGHDR.size + _CN_MSG.size
_FORK = struct.Struct("=IIII")  # parent pid, parent tgid, child pid, child tgid
_EXEC = struct.Struct("=II")  # pid, tgid
_ID = struct.Struct("=IIII")  # pid, tgid, real id, effective id

# nlmsghdr + cn_msg + proc_event head in one unpack: (len, type, flags, seq, pid, idx, val, seq,
# ack, len, flags, what, cpu, timestamp)
_ALL_HEAD = struct.Struct("=IHHIIIIIIHHIIQ")
_U32 = struct.Struct("=I")

NAMES = {PROC_EVENT_FORK: "fork", PROC_EVENT_EXEC: "exec", PROC_EVENT_UID: "uid"}
NAMES[PROC_EVENT_GID] = "gid"


@dataclass(frozen=True, slots=True)
class ProcEvent:
    """One event about a process (thread-group leader): ``pid`` is its tgid. For fork,
    ``parent`` is the parent's tgid; for uid/gid, ``ident`` is the new effective id."""

    kind: str  # "fork" | "exec" | "uid" | "gid"
    pid: int
    parent: int = 0
    ident: int = -1
    timestamp_ns: int = 0


def listen_message(op: int = PROC_CN_MCAST_LISTEN) -> bytes:
    payload = struct.pack("=I", op)
    cn = _CN_MSG.pack(CN_IDX_PROC, CN_VAL_PROC, 0, 0, len(payload), 0)
    total = _NLMSGHDR.size + len(cn) + len(payload)
    return _NLMSGHDR.pack(total, NLMSG_DONE, 0, 0, os.getpid()) + cn + payload


def parse(data: bytes) -> list[ProcEvent]:
    """The events in one datagram (possibly several netlink messages); others are ignored.

    Thread creation (fork of a thread, child pid != tgid) is dropped: threads share their
    process's cgroup. Malformed input yields no events, never an exception.
    """
    out: list[ProcEvent] = []
    off = 0
    while off + _HEAD + _EVENT_HEAD.size <= len(data):
        length = _NLMSGHDR.unpack_from(data, off)[0]
        if length < _HEAD:
            break
        idx, val = _CN_MSG.unpack_from(data, off + _NLMSGHDR.size)[:2]
        if idx == CN_IDX_PROC and val == CN_VAL_PROC:
            ev = _event(data, off + _HEAD, min(len(data), off + length))
            if ev is not None:
                out.append(ev)
        off += (length + 3) & ~3
    return out


def _event(data: bytes, start: int, end: int) -> ProcEvent | None:
    what, _cpu, ts = _EVENT_HEAD.unpack_from(data, start)
    body = start + _EVENT_HEAD.size
    try:
        if what == PROC_EVENT_FORK and body + _FORK.size <= end:
            _ppid, ptgid, cpid, ctgid = _FORK.unpack_from(data, body)
            if cpid != ctgid:
                return None
            return ProcEvent("fork", ctgid, parent=ptgid, timestamp_ns=ts)
        if what == PROC_EVENT_EXEC and body + _EXEC.size <= end:
            _pid, tgid = _EXEC.unpack_from(data, body)
            return ProcEvent("exec", tgid, timestamp_ns=ts)
        if what in (PROC_EVENT_UID, PROC_EVENT_GID) and body + _ID.size <= end:
            _pid, tgid, _real, eff = _ID.unpack_from(data, body)
            return ProcEvent(NAMES[what], tgid, ident=eff, timestamp_ns=ts)
    except struct.error:  # pragma: no cover - lengths are checked above
        return None
    return None


OnEvent = Callable[[int, int, int], None]


def scan(data: bytes | bytearray | memoryview, n: int, on_event: OnEvent) -> int:
    """``parse`` without the objects, for the hot path: calls ``on_event(what, tgid,
    timestamp_ns)`` for each fork (of a process, not a thread), exec, uid and gid event in the
    first ``n`` bytes of ``data``; returns how many. Malformed input is skipped, never raised."""
    count = 0
    off = 0
    while off + _ALL_HEAD.size <= n:
        length, _t, _f, _s, _p, idx, val, _s2, _a, _l, _f2, what, _cpu, ts = _ALL_HEAD.unpack_from(
            data, off
        )
        if length < _HEAD:
            break
        end = min(n, off + length)
        body = off + _ALL_HEAD.size
        if idx == CN_IDX_PROC and val == CN_VAL_PROC:
            if what == PROC_EVENT_EXEC and body + _EXEC.size <= end:
                on_event(what, _U32.unpack_from(data, body + 4)[0], ts)
                count += 1
            elif what == PROC_EVENT_FORK and body + _FORK.size <= end:
                _pp, _pt, cpid, ctgid = _FORK.unpack_from(data, body)
                if cpid == ctgid:
                    on_event(what, ctgid, ts)
                    count += 1
            elif what in (PROC_EVENT_UID, PROC_EVENT_GID) and body + _ID.size <= end:
                on_event(what, _U32.unpack_from(data, body + 4)[0], ts)
                count += 1
        off += (length + 3) & ~3
    return count


class ConnectorUnavailable(Exception):
    """The proc connector cannot be used here; the message says why."""


class ProcConnector:
    """A subscribed proc-connector socket (non-blocking): ``read_ready()`` for a caller's own
    loop, or ``ConnectorThread(conn, callback)`` to have events delivered in a thread."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.received = 0
        self.lost = 0  # datagrams dropped by the kernel (ENOBUFS): reconcile catches up

    @classmethod
    def open(cls, rcvbuf: int = 4 << 20) -> ProcConnector:
        try:
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_CONNECTOR)
        except (OSError, AttributeError) as e:
            raise ConnectorUnavailable(f"cannot open a NETLINK_CONNECTOR socket: {e}") from None
        try:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            sock.bind((0, CN_IDX_PROC))
            sock.send(listen_message())
            sock.setblocking(False)
        except OSError as e:
            sock.close()
            hint = " (needs CAP_NET_ADMIN)" if e.errno in (1, 13) else ""
            raise ConnectorUnavailable(f"proc connector subscription failed: {e}{hint}") from None
        return cls(sock)

    def read_ready(self) -> list[ProcEvent]:
        """Every datagram waiting now, parsed (non-blocking)."""
        out: list[ProcEvent] = []
        while True:
            try:
                data = self.sock.recv(65536)
            except BlockingIOError:
                return out
            except OSError as e:
                if e.errno == 105:  # ENOBUFS: the kernel dropped events
                    self.lost += 1
                    continue
                raise
            self.received += 1
            out.extend(parse(data))

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.send(listen_message(PROC_CN_MCAST_IGNORE))
        self.sock.close()


class ConnectorThread:
    """Owns ``conn`` from ``start()``: a daemon thread blocks in recv and calls ``on_event(what,
    tgid, timestamp_ns)`` (see ``scan``) in that thread for every process event, in order.

    ``nice``: the thread's nice value (Linux applies setpriority to one thread by its TID),
    set when permitted: lowering it needs CAP_SYS_NICE (root); otherwise the thread keeps the
    process's and says so in the log. ``stop()`` returns within ``poll_s`` plus the callback in
    progress; the socket is closed by the thread itself, so no other thread can ever receive
    from a reused descriptor. ``on_error`` (in the thread) when the socket fails for good.
    """

    def __init__(
        self,
        conn: ProcConnector,
        on_event: OnEvent,
        *,
        nice: int | None = None,
        poll_s: float = 0.25,
        on_error: Callable[[OSError], None] | None = None,
    ) -> None:
        self.conn = conn
        self.on_event = on_event
        self.nice = nice
        self.poll_s = poll_s
        self.on_error = on_error
        self.niced = False  # whether ``nice`` was applied
        self._stopping = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pystats-proc-events", daemon=True)

    def start(self) -> None:
        # blocking recv, woken at least every poll_s to notice stop(): SO_RCVTIMEO makes the
        # kernel return EAGAIN, so each datagram costs one recv and no poll/select
        sec = int(self.poll_s)
        usec = int((self.poll_s - sec) * 1e6)
        self.conn.sock.setsockopt(
            socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("=qq", sec, usec)
        )
        self.conn.sock.setblocking(True)
        self._thread.start()
        self._ready.wait(2.0)  # so that ``niced`` is known on return

    def stop(self, timeout: float = 2.0) -> None:
        self._stopping.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def _set_nice(self) -> None:
        if self.nice is None:
            return
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), self.nice)
            self.niced = True
        except OSError as e:
            log.info("proc events thread keeps the process's priority (nice %d: %s)", self.nice, e)

    def _run(self) -> None:
        self._set_nice()
        self._ready.set()
        conn, on_event, stopping = self.conn, self.on_event, self._stopping
        buf = bytearray(65536)
        recv_into = conn.sock.recv_into
        try:
            while not stopping.is_set():
                try:
                    n = recv_into(buf)
                except (BlockingIOError, InterruptedError):
                    continue  # SO_RCVTIMEO expired: look at the stop flag
                except OSError as e:
                    if e.errno == errno.ENOBUFS:  # the kernel dropped events
                        conn.lost += 1
                        continue
                    log.error("proc connector failed: %s; new processes wait for reconciles", e)
                    if self.on_error is not None:
                        self.on_error(e)
                    return
                conn.received += 1
                try:
                    scan(buf, n, on_event)
                except Exception:  # a bug in the callback must not end event placement
                    log.exception("proc event handling failed")
        finally:
            conn.stop()
