"""The workload API on a real Unix socket: peer credentials, validation errors, 404s, logs."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import pytest

from agent.api.client import ApiError, WorkloadClient
from agent.api.server import make_app, serve_unix, spec_from_body
from cgroupfs.paths import CgroupRoot
from workloads.lifecycle.manager import WorkloadManager
from workloads.runtime.spec import SpecError, WorkloadSpec
from workloads.supervisor import state


async def _serve(tmp_path: Path, allowed: list[int]) -> tuple[WorkloadManager, object, str]:
    (tmp_path / "cg").mkdir()
    m = WorkloadManager(
        CgroupRoot(str(tmp_path / "cg")), str(tmp_path / "st"), use_fork_server=False
    )
    await m.start()
    sock = str(tmp_path / "api.sock")
    runner = await serve_unix(make_app(m, allowed_uids=allowed), sock, mode=0o600)
    return m, runner, sock


async def test_socket_mode_and_peer_credentials(tmp_path: Path) -> None:
    m, runner, sock = await _serve(tmp_path, allowed=[])  # nobody allowed, not even us
    try:
        assert os.stat(sock).st_mode & 0o777 == 0o600
        with pytest.raises(ApiError, match=f"uid {os.getuid()} may not use") as e:
            await asyncio.to_thread(WorkloadClient(sock).listing)
        assert e.value.status == 403
    finally:
        await runner.cleanup()  # type: ignore[attr-defined]
        await m.close()


async def test_errors_are_json_with_http_status(tmp_path: Path) -> None:
    m, runner, sock = await _serve(tmp_path, allowed=[os.getuid()])
    c = WorkloadClient(sock)
    try:
        assert await asyncio.to_thread(c.listing, True) == []
        cases: list[tuple[dict[str, Any], str]] = [
            ({"argv": ["true"], "memory": "12Q"}, "invalid --memory"),
            ({"argv": ["true"], "rootfs": "/no/such/dir"}, "does not exist"),
            ({"argv": ["true"], "name": "a/b"}, "invalid workload name"),
            ({"argv": "true"}, "argv must be a list"),
            ({"argv": ["true"], "colour": "red"}, "unknown field"),
            ({"argv": ["true"], "restart": "sometimes"}, "--restart"),
        ]
        for body, msg in cases:
            with pytest.raises(ApiError, match=msg) as e:
                await asyncio.to_thread(c.create, body)
            assert e.value.status == 400
        for call in (c.inspect, c.stop, c.rm):
            with pytest.raises(ApiError, match="no such workload") as e:
                await asyncio.to_thread(call, "ghost")
            assert e.value.status == 404
        assert os.listdir(tmp_path / "st" / "workloads") == []
    finally:
        await runner.cleanup()  # type: ignore[attr-defined]
        await m.close()


async def test_logs_of_a_recorded_workload_oldest_first(tmp_path: Path) -> None:
    st = tmp_path / "st"
    wdir = st / "workloads" / "old"
    wdir.mkdir(parents=True)
    spec = WorkloadSpec(name="old", argv=["true"])
    state.write_json_atomic(
        str(wdir / "config.json"),
        {
            "spec": spec.to_json(),
            "root": "/x",
            "created_at": time.time(),
            "log_max_bytes": 100,
            "log_keep": 3,
        },
    )
    state.write_json_atomic(
        str(wdir / "status.json"), {"run": 1, "state": "exited", "exit_code": 0}
    )
    (wdir / "output.log.2").write_bytes(b"one\n")
    (wdir / "output.log.1").write_bytes(b"two\n")
    (wdir / "output.log").write_bytes(b"three\n")
    m, runner, sock = await _serve(tmp_path, allowed=[os.getuid()])
    c = WorkloadClient(sock)
    try:
        for follow in (False, True):  # an exited workload: follow ends at the end of its log

            def read(f: bool = follow) -> bytes:
                return b"".join(c.logs("old", follow=f))

            out = await asyncio.to_thread(read)
            assert out == b"one\ntwo\nthree\n"
        listed = await asyncio.to_thread(c.listing, True)
        assert [w["name"] for w in listed] == ["old"]
        assert await asyncio.to_thread(c.listing) == []  # not running
    finally:
        await runner.cleanup()  # type: ignore[attr-defined]
        await m.close()


def test_spec_from_body_accepts_env_lists_and_objects() -> None:
    a = spec_from_body({"argv": ["x"], "env": ["A=1"]})
    b = spec_from_body({"argv": ["x"], "env": {"A": "1"}})
    assert a.env == b.env == {"A": "1"}
    with pytest.raises(SpecError):
        spec_from_body(["not", "an", "object"])
