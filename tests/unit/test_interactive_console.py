"""Issue 17.1: the shim's console without namespaces: a -i workload (here `cat`, forked as the
shim forks it) fed by an attached client through stdio.sock, its output relayed and replayed to
the first attach, stdin's EOF passed on, the exit sent, the socket gone afterwards."""

from __future__ import annotations

import contextlib
import os
import selectors
import socket
import subprocess
import time
from pathlib import Path

from cgroupfs.paths import CgroupRoot
from workloads.runtime import stdio_proto as proto
from workloads.runtime.spec import WorkloadSpec
from workloads.runtime.stdio import StdioOpts
from workloads.supervisor.console import Console, read_some


def _pump_until(
    sel: selectors.BaseSelector, console: Console, out_r: int, done: list[bool]
) -> None:
    """The shim's loop in small: callables are the console's, out_r is the workload's output."""
    deadline = time.monotonic() + 10
    while not done[0] and time.monotonic() < deadline:
        for key, _ in sel.select(0.05):
            if callable(key.data):
                key.data()
            elif key.fd == out_r:
                chunk = read_some(out_r)
                if chunk:
                    console.output(chunk)
                elif chunk == b"":
                    sel.unregister(out_r)
                    done[0] = True


def _frames(sock: socket.socket, until: bytes) -> list[tuple[bytes, bytes]]:
    reader, got = proto.FrameReader(), list[tuple[bytes, bytes]]()
    sock.settimeout(10)
    while not any(k == until for k, _ in got):
        data = sock.recv(65536)
        assert data, got
        got += reader.feed(data)
    return got


def test_attach_feeds_stdin_and_relays_output(tmp_path: Path) -> None:
    spec = WorkloadSpec(name="w", argv=["cat"], stdio=StdioOpts(interactive=True))
    console = Console(str(tmp_path), spec, CgroupRoot(str(tmp_path)), "workloads/w")
    out_r, out_w, in_r = console.workload_stdio()
    assert in_r is not None
    os.write(out_w, b"before attach\n")  # output nobody has seen: replayed to the first attach
    child = subprocess.Popen(["cat"], stdin=in_r, stdout=out_w)
    os.close(out_w)
    console.forked(child.pid)
    assert (tmp_path / proto.SOCKET_NAME).stat().st_mode & 0o777 == 0o600
    sel = selectors.DefaultSelector()
    sel.register(out_r, selectors.EVENT_READ)
    console.register(sel)

    client = socket.socket(socket.AF_UNIX)
    client.connect(str(tmp_path / proto.SOCKET_NAME))
    client.sendall(proto.encode(proto.REQUEST, proto.SessionRequest(kind="attach").encode()))
    client.sendall(proto.encode(proto.STDIN, b"typed\n") + proto.encode(proto.STDIN_EOF))
    done = [False]
    _pump_until(sel, console, out_r, done)
    assert done[0], "cat never saw its stdin's EOF"
    assert child.wait(10) == 0
    console.finish(0)
    got = _frames(client, proto.EXIT)
    assert got[0][0] == proto.HELLO
    assert proto.Hello.decode(got[0][1]) == proto.Hello(tty=False, interactive=True)
    out = b"".join(p for k, p in got if k == proto.STDOUT)
    assert out == b"before attach\ntyped\n"
    assert proto.ExitReport.decode(got[-1][1]).exit_code == 0
    assert not (tmp_path / proto.SOCKET_NAME).exists()
    client.close()
    sel.close()


def test_a_bad_first_frame_is_answered_and_dropped(tmp_path: Path) -> None:
    spec = WorkloadSpec(name="w", argv=["true"])
    console = Console(str(tmp_path), spec, CgroupRoot(str(tmp_path)), "workloads/w")
    out_r, out_w, in_r = console.workload_stdio()
    assert in_r is None
    console.forked(os.getpid())
    sel = selectors.DefaultSelector()
    console.register(sel)
    client = socket.socket(socket.AF_UNIX)
    client.connect(str(tmp_path / proto.SOCKET_NAME))
    client.sendall(proto.encode(proto.STDIN, b"no request first"))
    deadline = time.monotonic() + 5
    got: list[tuple[bytes, bytes]] = []
    reader = proto.FrameReader()
    client.setblocking(False)
    while not got and time.monotonic() < deadline:
        for key, _ in sel.select(0.05):
            key.data()
        with contextlib.suppress(BlockingIOError):
            got = reader.feed(client.recv(4096))
    assert got and got[0][0] == proto.EXIT
    assert "session request" in (proto.ExitReport.decode(got[0][1]).error or "")
    console.finish(0)
    for fd in (out_r, out_w):
        os.close(fd)
    client.close()
    sel.close()
