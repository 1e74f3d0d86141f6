"""The netlink proc connector: fork, exec, uid and gid events from the kernel, as asyncio.

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

import asyncio
import contextlib
import os
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass

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


class ConnectorUnavailable(Exception):
    """The proc connector cannot be used here; the message says why."""


class ProcConnector:
    """A subscribed proc-connector socket; ``start(loop, callback)`` delivers events."""

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

    def start(
        self, loop: asyncio.AbstractEventLoop, callback: Callable[[list[ProcEvent]], None]
    ) -> None:
        """Call ``callback(events)`` from the event loop whenever datagrams arrive."""

        def ready() -> None:
            try:
                events = self.read_ready()
            except OSError:
                return
            if events:
                callback(events)

        loop.add_reader(self.sock.fileno(), ready)

    def stop(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        if loop is not None:
            with contextlib.suppress(ValueError, OSError):
                loop.remove_reader(self.sock.fileno())
        with contextlib.suppress(OSError):
            self.sock.send(listen_message(PROC_CN_MCAST_IGNORE))
        self.sock.close()
