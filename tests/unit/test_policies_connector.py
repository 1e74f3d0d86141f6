"""Parsing proc-connector datagrams built byte for byte as the kernel lays them out."""

from __future__ import annotations

import errno
import os
import socket
import struct
import threading
import time

from hypothesis import given
from hypothesis import strategies as st

from policies.connector import (
    CN_IDX_PROC,
    CN_VAL_PROC,
    PROC_CN_MCAST_IGNORE,
    PROC_EVENT_EXEC,
    PROC_EVENT_EXIT,
    PROC_EVENT_FORK,
    PROC_EVENT_GID,
    PROC_EVENT_UID,
    ConnectorThread,
    ProcConnector,
    ProcEvent,
    listen_message,
    parse,
    scan,
)


def datagram(what: int, body: bytes, idx: int = CN_IDX_PROC) -> bytes:
    event = struct.pack("=IIQ", what, 1, 123456) + body
    cn = struct.pack("=IIIIHH", idx, CN_VAL_PROC, 7, 0, len(event), 0)
    total = 16 + len(cn) + len(event)
    return struct.pack("=IHHII", total, 3, 0, 0, 0) + cn + event


def test_exec_fork_uid() -> None:
    assert parse(datagram(PROC_EVENT_EXEC, struct.pack("=II", 42, 42))) == [
        ProcEvent("exec", 42, timestamp_ns=123456)
    ]
    fork = datagram(PROC_EVENT_FORK, struct.pack("=IIII", 10, 10, 43, 43))
    assert parse(fork) == [ProcEvent("fork", 43, parent=10, timestamp_ns=123456)]
    uid = datagram(PROC_EVENT_UID, struct.pack("=IIII", 44, 44, 1000, 1001))
    assert parse(uid) == [ProcEvent("uid", 44, ident=1001, timestamp_ns=123456)]


def test_thread_creation_exit_and_other_idx_are_ignored() -> None:
    thread = datagram(PROC_EVENT_FORK, struct.pack("=IIII", 10, 10, 50, 43))
    ext = datagram(PROC_EVENT_EXIT, struct.pack("=IIII", 43, 43, 0, 17))
    other = datagram(PROC_EVENT_EXEC, struct.pack("=II", 42, 42), idx=CN_IDX_PROC + 1)
    assert parse(thread) == parse(ext) == parse(other) == []


def test_several_messages_in_one_datagram() -> None:
    a = datagram(PROC_EVENT_EXEC, struct.pack("=II", 1, 1))
    b = datagram(PROC_EVENT_EXEC, struct.pack("=II", 2, 2))
    assert [e.pid for e in parse(a + b)] == [1, 2]


def test_listen_message_layout() -> None:
    msg = listen_message()
    length, _type, _flags, _seq, _pid = struct.unpack_from("=IHHII", msg)
    assert length == len(msg) == 16 + 20 + 4
    assert struct.unpack_from("=II", msg, 16) == (CN_IDX_PROC, CN_VAL_PROC)
    assert struct.unpack_from("=I", msg, 36) == (1,)


@given(st.binary(max_size=300))
def test_garbage_never_raises(data: bytes) -> None:
    for ev in parse(data):
        assert ev.kind in ("fork", "exec", "uid", "gid")


# -- scan: the event thread's allocation-free reading of the same datagrams --------------------

_KIND = {"fork": PROC_EVENT_FORK, "exec": PROC_EVENT_EXEC, "uid": PROC_EVENT_UID}
_KIND["gid"] = PROC_EVENT_GID


def _scanned(data: bytes) -> list[tuple[int, int, int]]:
    out: list[tuple[int, int, int]] = []
    n = scan(data, len(data), lambda what, pid, ts: out.append((what, pid, ts)))
    assert n == len(out)
    return out


def _parsed(data: bytes) -> list[tuple[int, int, int]]:
    return [(_KIND[e.kind], e.pid, e.timestamp_ns) for e in parse(data)]


def test_scan_reports_what_parse_does() -> None:
    dgrams = [
        datagram(PROC_EVENT_EXEC, struct.pack("=II", 42, 42)),
        datagram(PROC_EVENT_FORK, struct.pack("=IIII", 10, 10, 43, 43)),
        datagram(PROC_EVENT_FORK, struct.pack("=IIII", 10, 10, 50, 43)),  # a thread: dropped
        datagram(PROC_EVENT_UID, struct.pack("=IIII", 44, 44, 1000, 1001)),
        datagram(PROC_EVENT_GID, struct.pack("=IIII", 45, 45, 1000, 1001)),
        datagram(PROC_EVENT_EXIT, struct.pack("=IIII", 43, 43, 0, 17)),
        datagram(PROC_EVENT_EXEC, struct.pack("=II", 42, 42), idx=CN_IDX_PROC + 1),
    ]
    joined = b"".join(dgrams)
    assert (
        _scanned(joined)
        == _parsed(joined)
        == [
            (PROC_EVENT_EXEC, 42, 123456),
            (PROC_EVENT_FORK, 43, 123456),
            (PROC_EVENT_UID, 44, 123456),
            (PROC_EVENT_GID, 45, 123456),
        ]
    )
    # only the first n bytes of a reused buffer count
    buf = bytearray(4096)
    first = dgrams[0]
    buf[: len(first)] = first
    buf[len(first) : len(first) + len(dgrams[3])] = dgrams[3]  # stale bytes past n
    got: list[int] = []
    scan(buf, len(first), lambda _w, pid, _t: got.append(pid))
    assert got == [42]


@given(
    st.lists(
        st.tuples(
            st.sampled_from([PROC_EVENT_FORK, PROC_EVENT_EXEC, PROC_EVENT_UID, PROC_EVENT_GID]),
            st.integers(1, 2**22),
            st.integers(1, 2**22),
            st.integers(0, 2**63),
        ),
        max_size=5,
    ),
    st.integers(0, 60),
)
def test_scan_equals_parse(events: list[tuple[int, int, int, int]], cut: int) -> None:
    data = b""
    for what, pid, tgid, _ts in events:
        body = struct.pack("=II", pid, tgid) if what == PROC_EVENT_EXEC else b""
        if what != PROC_EVENT_EXEC:
            body = struct.pack("=IIII", 1, 1, pid, tgid)
        data += datagram(what, body)
    assert _scanned(data) == _parsed(data)
    truncated = data[: max(0, len(data) - cut)]
    assert _scanned(truncated) == _parsed(truncated)


@given(st.binary(max_size=300))
def test_scan_never_raises(data: bytes) -> None:
    assert _scanned(data) == _parsed(data)


# -- ConnectorThread, fed through a datagram socketpair instead of the kernel -----------------


def _pair() -> tuple[ProcConnector, socket.socket]:
    mine, kernel = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    return ProcConnector(mine), kernel


def test_thread_delivers_in_order_off_the_main_thread_then_stops() -> None:
    conn, kernel = _pair()
    got: list[tuple[int, int, str]] = []
    done = threading.Event()

    def on_event(what: int, pid: int, _ts: int) -> None:
        got.append((what, pid, threading.current_thread().name))
        if pid == 3:
            done.set()

    t = ConnectorThread(conn, on_event, poll_s=0.05)
    t.start()
    try:
        kernel.send(datagram(PROC_EVENT_EXEC, struct.pack("=II", 1, 1)))
        kernel.send(datagram(PROC_EVENT_EXIT, struct.pack("=IIII", 1, 1, 0, 0)))
        two = datagram(PROC_EVENT_FORK, struct.pack("=IIII", 1, 1, 2, 2))
        kernel.send(two + datagram(PROC_EVENT_EXEC, struct.pack("=II", 3, 3)))
        assert done.wait(5)
    finally:
        t.stop()
    name = "pystats-proc-events"
    assert got == [
        (PROC_EVENT_EXEC, 1, name),
        (PROC_EVENT_FORK, 2, name),
        (PROC_EVENT_EXEC, 3, name),
    ]
    assert conn.received == 3 and not t.is_alive()
    # the thread itself unsubscribed and closed its socket on the way out
    assert kernel.recv(100) == listen_message(PROC_CN_MCAST_IGNORE)
    assert conn.sock.fileno() == -1
    kernel.close()


def test_a_failing_callback_does_not_end_the_thread() -> None:
    conn, kernel = _pair()
    seen: list[int] = []
    ok = threading.Event()

    def on_event(_what: int, pid: int, _ts: int) -> None:
        seen.append(pid)
        if pid == 1:
            raise RuntimeError("a bug")
        ok.set()

    t = ConnectorThread(conn, on_event, poll_s=0.05)
    t.start()
    try:
        kernel.send(datagram(PROC_EVENT_EXEC, struct.pack("=II", 1, 1)))
        kernel.send(datagram(PROC_EVENT_EXEC, struct.pack("=II", 2, 2)))
        assert ok.wait(5)
        assert seen == [1, 2] and t.is_alive()
    finally:
        t.stop()
        kernel.close()


def test_thread_nice_applies_to_that_thread_only() -> None:
    conn, kernel = _pair()
    inside: list[int] = []
    ok = threading.Event()

    def on_event(_what: int, _pid: int, _ts: int) -> None:
        inside.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        ok.set()

    before = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    wanted = min(19, before + 3)  # a higher nice value is always permitted
    t = ConnectorThread(conn, on_event, nice=wanted, poll_s=0.05)
    t.start()
    try:
        assert t.niced
        kernel.send(datagram(PROC_EVENT_EXEC, struct.pack("=II", 1, 1)))
        assert ok.wait(5)
    finally:
        t.stop()
        kernel.close()
    assert inside == [wanted]
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == before


def test_socket_failure_ends_the_thread_and_reports_it() -> None:
    # recv on an unconnected stream socket fails at once (EINVAL): not a timeout, not ENOBUFS
    conn = ProcConnector(socket.socket(socket.AF_UNIX, socket.SOCK_STREAM))
    errors: list[OSError] = []
    t = ConnectorThread(conn, lambda *_: None, poll_s=0.05, on_error=errors.append)
    t.start()
    deadline = time.monotonic() + 5
    while t.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not t.is_alive()
    assert len(errors) == 1 and errors[0].errno not in (errno.EAGAIN, errno.ENOBUFS)
    assert conn.sock.fileno() == -1
    t.stop()  # harmless once ended
