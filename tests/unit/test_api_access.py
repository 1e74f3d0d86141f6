"""The API's gates: who may connect (peer credentials), where the socket may be served, and
request bodies checked field by field (a user's mistake is a 400 with one line, never a 500)."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from agent.api.access import AccessError, ApiAccess, Peer, peer_of, resolve_access
from agent.api.server import CREATE_FIELDS, UnsafeSocketPath, make_app, serve_unix, spec_from_body
from agent.config import AgentConfig
from cgroupfs.paths import CgroupRoot
from workloads.lifecycle.manager import WorkloadManager
from workloads.runtime.spec import SpecError

# --- who may use the API -----------------------------------------------------------------------


def test_access_allows_listed_uids_and_group_members() -> None:
    access = ApiAccess(uids=frozenset({0}), gid=1000)
    assert access.allows(Peer(1, 0, 0, frozenset()))
    assert access.allows(Peer(1, 5000, 1000, frozenset()))  # primary group
    assert access.allows(Peer(1, 5000, 5000, frozenset({7, 1000})))  # supplementary group
    assert not access.allows(Peer(1, 5000, 5000, frozenset({7})))
    assert not ApiAccess().allows(Peer(1, 5000, 1000, frozenset({1000})))  # no group configured


def test_peer_of_a_socketpair_is_this_process() -> None:
    a, b = socket.socketpair()
    with a, b:
        peer = peer_of(a)
    assert (peer.pid, peer.uid, peer.gid) == (os.getpid(), os.getuid(), os.getgid())
    assert peer.groups == frozenset(os.getgroups())


def test_resolve_access_api_group_defaults_to_socket_group() -> None:
    assert resolve_access(AgentConfig()).gid is None
    both = resolve_access(AgentConfig(socket_group="root"))
    assert both.gid == both.socket_gid == 0
    own = resolve_access(AgentConfig(socket_group="root", api_group="nogroup"))
    assert (own.gid, own.socket_gid) == (65534, 0)
    assert 0 in own.uids
    with pytest.raises(AccessError, match="api_group: no group named 'no-such-group'"):
        resolve_access(AgentConfig(api_group="no-such-group"))


# --- where the socket may be served ------------------------------------------------------------


async def _serve(path: str, mode: int = 0o600) -> web.AppRunner:
    return await serve_unix(web.Application(), path, mode=mode)


async def test_a_file_at_the_socket_path_is_never_replaced(tmp_path: Path) -> None:
    target = tmp_path / "agent.sock"
    target.write_text("precious")
    with pytest.raises(UnsafeSocketPath, match="is not a socket"):
        await _serve(str(target))
    assert target.read_text() == "precious"
    os.unlink(target)
    os.symlink(tmp_path / "elsewhere", target)  # a symlink is not followed, nor replaced
    with pytest.raises(UnsafeSocketPath, match="is not a socket"):
        await _serve(str(target))
    assert os.path.islink(target)


async def test_a_stale_socket_is_replaced_a_live_one_refused(tmp_path: Path) -> None:
    path = str(tmp_path / "agent.sock")
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(path)
    stale.close()  # bound, never listened: what a killed agent leaves behind
    runner = await _serve(path)
    try:
        assert stat.S_ISSOCK(os.lstat(path).st_mode)
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        with pytest.raises(UnsafeSocketPath, match="another server is listening"):
            await _serve(path)
        assert stat.S_ISSOCK(os.lstat(path).st_mode)  # still the first server's
    finally:
        await runner.cleanup()


async def test_the_socket_directory_must_be_writable_by_root_only(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    with pytest.raises(UnsafeSocketPath, match="group- or other-writable"):
        await _serve(str(shared / "agent.sock"))
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    os.chown(theirs, 65534, 65534)
    with pytest.raises(UnsafeSocketPath, match="owned by uid 65534"):
        await _serve(str(theirs / "agent.sock"))
    assert os.listdir(shared) == os.listdir(theirs) == []


async def test_a_mode_for_other_users_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UnsafeSocketPath, match="0666"):
        await _serve(str(tmp_path / "agent.sock"), mode=0o666)
    assert not os.path.exists(tmp_path / "agent.sock")


# --- request bodies ----------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["workdir", "hostname", "rootfs", "name", "net", "restart"])
@pytest.mark.parametrize("value", [1, 2.5, True, ["/x"], {"a": "b"}])
def test_string_fields_refuse_other_types(field: str, value: object) -> None:
    with pytest.raises(SpecError, match=f"^{field} must be a string"):
        spec_from_body({"argv": ["true"], field: value})


WRONG: list[Any] = [None, 0, -1, 99999, 1.5, True, "", "x", [], ["x", 1], {}, {"a": [1]}]


@pytest.mark.parametrize("field", sorted(CREATE_FIELDS))
def test_any_wrong_type_in_any_field_is_a_spec_error(field: str) -> None:
    """Every field, every JSON type: the body is accepted or refused with SpecError, never a
    TypeError or KeyError that would become a 500 with a traceback."""
    for value in WRONG:
        body = {"argv": ["true"], field: value}
        try:
            spec_from_body(body)
        except SpecError as e:
            assert "\n" not in str(e)


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[str]:
    (tmp_path / "cg").mkdir()
    m = WorkloadManager(
        CgroupRoot(str(tmp_path / "cg")), str(tmp_path / "st"), use_fork_server=False
    )
    await m.start()
    sock = str(tmp_path / "api.sock")
    runner = await serve_unix(make_app(m, allowed_uids=[os.getuid()]), sock)
    try:
        yield sock
    finally:
        await runner.cleanup()
        await m.close()


async def _raw(sock: str, request: bytes) -> bytes:
    r, w = await asyncio.open_unix_connection(sock)
    w.write(request)
    await w.drain()
    out = await r.read()
    w.close()
    return out


def _post(path: str, body: bytes) -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: agent\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + b"Connection: close\r\n\r\n" + body


def _no_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    bad = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert bad == [], [r.getMessage() for r in bad]


async def test_bad_bodies_and_signals_are_400_without_a_traceback(
    api: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    cases = [
        (_post("/v1/workloads", b'{"argv": ["true"], "workdir": 5}'), b"workdir must be a string"),
        (_post("/v1/workloads", b'{"argv": ["true"], "hostname": []}'), b"hostname must be"),
        (_post("/v1/workloads", b'{"argv": ["true"], "rootfs": {}}'), b"rootfs must be"),
        (_post("/v1/workloads", b'{"argv": ["true"], "memory": [1]}'), b"memory must be"),
        (_post("/v1/workloads", b'{"argv": ["true"], "env": {"A": []}}'), b"env must be"),
        (_post("/v1/workloads", b"\xff\xfe"), b"not valid JSON"),
        (_post("/v1/workloads/w/kill?signal=99999", b""), b"unknown signal '99999'"),
        (_post("/v1/workloads/w/kill?signal=0", b""), b"unknown signal '0'"),
        (_post("/v1/workloads/w/kill?signal=SIGNOPE", b""), b"unknown signal"),
        (_post("/v1/workloads/w/stop?grace=inf", b""), b"grace must be a number"),
        (_post("/v1/workloads/w/stop?grace=nan", b""), b"grace must be a number"),
        (_post("/v1/workloads/w/stop?grace=-1", b""), b"grace must be a number"),
    ]
    for request, message in cases:
        reply = await _raw(api, request)
        assert reply.startswith(b"HTTP/1.1 400 "), reply
        assert message in reply, reply
    _no_tracebacks(caplog)


async def test_a_client_leaving_mid_body_logs_no_traceback(
    api: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    _r, w = await asyncio.open_unix_connection(api)
    w.write(b'POST /v1/workloads HTTP/1.1\r\nHost: agent\r\nContent-Length: 1000\r\n\r\n{"ar')
    await w.drain()
    await asyncio.sleep(0.2)
    w.close()
    for _ in range(50):  # until the server has seen the connection go
        if "left before sending its whole request" in caplog.text:
            break
        await asyncio.sleep(0.05)
    assert "left before sending its whole request" in caplog.text
    _no_tracebacks(caplog)
    # and the server goes on answering
    assert (await _raw(api, _post("/v1/workloads/w/kill", b""))).startswith(b"HTTP/1.1 404 ")
