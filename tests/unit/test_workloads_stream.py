"""`pystats logs -f` when its reader goes away: a quiet exit for the client, no error in the agent,
and no stream left open in the agent.

A recorded workload that looks running (its "shim" is this test process) served on a real Unix
socket; the client is the real `pystats` command in a subprocess.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web

from agent.api.server import make_app, serve_unix
from cgroupfs.paths import CgroupRoot
from tests.servers import until_no_connections
from workloads.lifecycle.manager import WorkloadManager
from workloads.runtime.spec import WorkloadSpec
from workloads.supervisor import procs, state

REPO = Path(__file__).resolve().parents[2]
BIG_LOG = b"y\n" * (2 << 20)  # 4 MiB: far more than the socket and pipe buffers hold


def _record_running(st: Path, log: bytes) -> None:
    wdir = st / "workloads" / "chatty"
    wdir.mkdir(parents=True)
    spec = WorkloadSpec(name="chatty", argv=["yes"])
    state.write_json_atomic(
        str(wdir / "config.json"),
        {
            "spec": spec.to_json(),
            "root": "/x",
            "created_at": time.time(),
            "log_max_bytes": 2 * len(log) + 1,
            "log_keep": 1,
        },
    )
    me, ticks = os.getpid(), procs.start_ticks(os.getpid())
    state.write_json_atomic(
        str(wdir / "status.json"),
        {
            "run": 1,
            "state": "running",
            "shim_pid": me,
            "shim_start": ticks,
            "pid": me,
            "pid_start": ticks,
        },
    )
    (wdir / "output.log").write_bytes(log)


async def _serve(tmp_path: Path, log: bytes) -> tuple[WorkloadManager, web.AppRunner, str]:
    (tmp_path / "cg").mkdir()
    _record_running(tmp_path / "st", log)
    m = WorkloadManager(
        CgroupRoot(str(tmp_path / "cg")), str(tmp_path / "st"), use_fork_server=False
    )
    await m.start()
    assert m.inspect("chatty")["state"] == "running"
    sock = str(tmp_path / "api.sock")
    runner = await serve_unix(make_app(m, allowed_uids=[os.getuid()]), sock, mode=0o600)
    return m, runner, sock


async def _follower(sock: str, stdout: int) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "agent.cli",
        "logs",
        "-f",
        "chatty",
        "--socket",
        sock,
        cwd=REPO,
        stdout=stdout,
        stderr=asyncio.subprocess.PIPE,
    )


async def _reap(proc: asyncio.subprocess.Process | None) -> None:
    """A client a failed assertion left running is not left behind."""
    if proc is not None and proc.returncode is None:
        proc.kill()
        await proc.wait()


def _no_errors(caplog: pytest.LogCaptureFixture) -> None:
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []


async def test_follow_into_a_closed_pipe_exits_141_quietly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    m, runner, sock = await _serve(tmp_path, BIG_LOG)
    caplog.set_level(logging.DEBUG)
    proc = None
    try:
        rd, wr = os.pipe()
        proc = await _follower(sock, wr)
        os.close(wr)
        assert proc.stderr is not None
        assert await asyncio.wait_for(asyncio.to_thread(os.read, rd, 4), 60) == b"y\ny\n"
        os.close(rd)  # what `| head` does: stop reading while output keeps coming
        err = await asyncio.wait_for(proc.stderr.read(), 60)
        assert await asyncio.wait_for(proc.wait(), 60) == 141, err
        assert b"Traceback" not in err and b"BrokenPipe" not in err, err
        await until_no_connections(runner, "a reader that left")
        _no_errors(caplog)
    finally:
        await _reap(proc)
        await runner.cleanup()
        await m.close()


@pytest.fixture
def sigint_as_on_a_terminal() -> Iterator[None]:
    """Children start with SIGINT at its default, as a command typed in a shell does.

    A process started by a non-interactive shell with `&` (a CI runner may be one) has SIGINT
    ignored, its children inherit that, and then Python raises no KeyboardInterrupt: Ctrl-C would
    do nothing. A Python handler here becomes SIG_DFL in the child at exec.
    """
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)


@pytest.mark.usefixtures("sigint_as_on_a_terminal")
async def test_interrupted_follower_of_a_quiet_workload_is_let_go(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    m, runner, sock = await _serve(tmp_path, b"hello\n")
    caplog.set_level(logging.DEBUG)
    proc = None
    try:
        rd, wr = os.pipe()
        proc = await _follower(sock, wr)
        os.close(wr)
        assert proc.stderr is not None
        got = await asyncio.wait_for(asyncio.to_thread(os.read, rd, 6), 60)
        assert got == b"hello\n"  # it follows: nothing more comes, the workload runs on
        proc.send_signal(signal.SIGINT)  # Ctrl-C
        err = await asyncio.wait_for(proc.stderr.read(), 60)
        assert await asyncio.wait_for(proc.wait(), 60) == 130, err
        assert b"Traceback" not in err, err
        os.close(rd)
        # Nothing is ever written again to that stream: the agent must notice on its own.
        await until_no_connections(runner, "a reader that left")
        _no_errors(caplog)
        assert m.inspect("chatty")["state"] == "running"
    finally:
        await _reap(proc)
        await runner.cleanup()
        await m.close()
