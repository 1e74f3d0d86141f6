"""Parsing proc-connector datagrams built byte for byte as the kernel lays them out."""

from __future__ import annotations

import struct

from hypothesis import given
from hypothesis import strategies as st

from policies.connector import (
    CN_IDX_PROC,
    CN_VAL_PROC,
    PROC_EVENT_EXEC,
    PROC_EVENT_EXIT,
    PROC_EVENT_FORK,
    PROC_EVENT_UID,
    ProcEvent,
    listen_message,
    parse,
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
