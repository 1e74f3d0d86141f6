"""Issue 17.1: the stdio channel's frames and records, the CLI's detach keys, -i/-t options."""

from __future__ import annotations

import os

import pytest

from agent.cli.interactive import DetachMatcher
from agent.cli.stdioopts import parse_detach_keys, stdio_body
from workloads.runtime import stdio_proto as proto
from workloads.runtime.errors import SpecError
from workloads.runtime.spec import WorkloadSpec
from workloads.runtime.stdio import StdioOpts, set_winsize


def test_frames_split_across_reads_and_joined_in_one() -> None:
    wire = proto.encode(proto.STDIN, b"abc") + proto.encode(proto.STDIN_EOF)
    r = proto.FrameReader()
    assert r.feed(wire[:2]) == []
    assert r.feed(wire[2:6]) == []
    assert r.feed(wire[6:]) == [(proto.STDIN, b"abc"), (proto.STDIN_EOF, b"")]


def test_an_oversized_frame_is_refused() -> None:
    with pytest.raises(proto.FrameError, match="at most"):
        proto.FrameReader().feed(proto.HEADER.pack(proto.STDIN, proto.MAX_FRAME + 1))


def test_session_request_round_trip_and_checks() -> None:
    req = proto.SessionRequest(
        kind="exec", argv=["sh"], env={"A": "b"}, user="nobody", uid=65534, gid=65534,
        groups=(65534,), workdir="/tmp", tty=True, interactive=True, rows=40, cols=120,
    )  # fmt: skip
    assert proto.SessionRequest.decode(req.encode()) == req
    for body, msg in (
        (b'{"kind": "shell"}', "kind"),
        (b'{"kind": "exec"}', "no command"),
        (b'{"kind": "attach", "tty": 1}', "tty"),
        (b'{"kind": "attach", "rows": 70000}', "rows"),
        (b'{"kind": "exec", "argv": ["x"], "uid": -1}', "uid"),
        (b'{"kind": "exec", "argv": ["x"], "env": {"A": 1}}', "env"),
        (b"[]", "object"),
        (b"nope", "JSON"),
    ):
        with pytest.raises(proto.FrameError, match=msg):
            proto.SessionRequest.decode(body)


def test_exit_report_and_hello_round_trip() -> None:
    assert proto.ExitReport.decode(proto.ExitReport(exit_code=7).encode()).exit_code == 7
    assert proto.ExitReport.decode(proto.ExitReport(error="gone").encode()).error == "gone"
    with pytest.raises(proto.FrameError):
        proto.ExitReport.decode(b'{"exit_code": "7"}')
    hello = proto.Hello(tty=True, interactive=False)
    assert proto.Hello.decode(hello.encode()) == hello
    assert proto.unpack_winsize(proto.pack_winsize(50, 132)) == (50, 132)
    assert proto.unpack_winsize(proto.pack_winsize(-3, 10**6)) == (0, 0xFFFF)


def test_a_deep_socket_path_goes_through_proc_self_fd() -> None:
    assert proto.short_path("/run/w/stdio.sock", 7) == "/run/w/stdio.sock"
    deep = "/" + "d" * 120 + "/stdio.sock"
    assert proto.short_path(deep, 7) == "/proc/self/fd/7/stdio.sock"


def test_detach_keys_as_docker_writes_them() -> None:
    assert parse_detach_keys("ctrl-p,ctrl-q") == b"\x10\x11"
    assert parse_detach_keys("ctrl-@,a,ctrl-[") == b"\x00a\x1b"
    assert parse_detach_keys("") == b""
    for bad in ("ctrl-1", "foo"):
        with pytest.raises(ValueError, match="invalid detach key"):
            parse_detach_keys(bad)


def test_detach_matcher_holds_a_prefix_and_releases_it() -> None:
    m = DetachMatcher(b"\x10\x11")
    assert m.feed(b"ab\x10") == (b"ab", False)
    assert m.feed(b"x") == (b"\x10x", False)  # not the sequence: the held ctrl-p goes on
    assert m.feed(b"\x10\x10") == (b"\x10", False)
    assert m.feed(b"\x11rest") == (b"", True)
    assert DetachMatcher(b"").feed(b"\x10\x11") == (b"\x10\x11", False)


def test_stdio_opts_in_the_spec() -> None:
    opts = StdioOpts.from_json({"interactive": True, "tty": True})
    assert opts.console and StdioOpts.from_json(None) == StdioOpts()
    spec = WorkloadSpec(name="w", argv=["sh"], stdio=opts)
    assert WorkloadSpec.from_json(spec.to_json()).stdio == opts
    assert WorkloadSpec.from_json({"name": "w", "argv": ["sh"]}).stdio == StdioOpts()
    for bad, msg in (({"tty": "yes"}, "tty"), ({"pty": True}, "unknown"), ([], "object")):
        with pytest.raises(SpecError, match=msg):
            StdioOpts.from_json(bad)


def test_stdio_body_of_run_flags() -> None:
    import argparse

    detached = argparse.Namespace(interactive=True, tty=True, detach=True)
    assert stdio_body(detached) == {"stdio": {"interactive": True, "tty": True}}
    assert stdio_body(argparse.Namespace(interactive=False, tty=False)) == {}
    # attached (run without -d): the shim holds the output for this CLI (stdio.attach)
    attached = {"stdio": {"tty": True, "attach": True}}
    assert stdio_body(argparse.Namespace(interactive=False, tty=True)) == attached
    assert stdio_body(argparse.Namespace(interactive=False, tty=False, rm=True)) == {
        "stdio": {"attach": True}
    }
    assert stdio_body(argparse.Namespace(interactive=False, tty=False, rm=True, detach=True)) == {}
    r, w = os.pipe()  # -it from a pipe: refused before anything is created
    saved = os.dup(0)
    try:
        os.dup2(r, 0)
        with pytest.raises(ValueError, match="not a TTY"):
            stdio_body(argparse.Namespace(interactive=True, tty=True))
    finally:
        os.dup2(saved, 0)
        for fd in (r, w, saved):
            os.close(fd)


def test_winsize_reaches_the_slave() -> None:
    import fcntl
    import struct
    import termios

    master, slave = os.openpty()
    try:
        set_winsize(master, 33, 101)
        raw = fcntl.ioctl(slave, termios.TIOCGWINSZ, b"\0" * 8)
        assert struct.unpack("HHHH", raw)[:2] == (33, 101)
    finally:
        os.close(master)
        os.close(slave)
