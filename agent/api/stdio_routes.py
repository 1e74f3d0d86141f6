"""`pystats attach` and `pystats exec`: a WebSocket relayed to the workload's shim.

    GET /v1/workloads/{name}/stdio   (WebSocket) first message: a session request

The request has passed the API's peer-credential check (agent.api.server's middleware) like
every other; only then does the agent connect to the shim's 0600 ``stdio.sock`` and relay. Each
binary message is one frame, ``type | payload`` (workloads.runtime.stdio_proto), the same
frames the shim speaks with a length added. The agent resolves exec's ``-u USER[:GROUP]`` in the
workload's root (its /etc/passwd and /etc/group, as docker does) so the shim gets ids.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from dataclasses import replace

from aiohttp import WSMsgType, web

from workloads.lifecycle.manager import WorkloadError, WorkloadManager
from workloads.runtime import runuser
from workloads.runtime import stdio_proto as proto
from workloads.runtime.errors import SpecError
from workloads.supervisor.record import State


async def _refuse(ws: web.WebSocketResponse, msg: str) -> web.WebSocketResponse:
    await ws.send_bytes(proto.EXIT + proto.ExitReport(error=msg).encode())
    await ws.close()
    return ws


async def _connect(wdir: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    path = proto.socket_path(wdir)
    dir_fd = os.open(wdir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return await asyncio.open_unix_connection(proto.short_path(path, dir_fd))
    finally:
        os.close(dir_fd)


async def _session(
    request: web.Request, manager: WorkloadManager, ws: web.WebSocketResponse
) -> web.WebSocketResponse:
    name = request.match_info["name"]
    msg = await ws.receive(timeout=30)
    if msg.type != WSMsgType.BINARY or msg.data[:1] != proto.REQUEST:
        return await _refuse(ws, "bad request: expected a session request first")
    try:
        req = proto.SessionRequest.decode(msg.data[1:])
        info = manager.inspect(name)
    except proto.FrameError as e:
        return await _refuse(ws, f"bad request: {e}")
    except WorkloadError as e:
        return await _refuse(ws, str(e))
    state = info["state"]
    if state == State.PAUSED.value and req.kind == "exec":
        return await _refuse(ws, f"workload {name!r} is paused: unpause it first")
    if state not in (State.RUNNING.value, State.PAUSED.value):
        return await _refuse(ws, f"workload {name!r} is not running")
    if req.user is not None:
        try:
            dirs = [info["rootfs"] or "/"]
            ids = await asyncio.to_thread(runuser.resolve, dirs, req.user, "the workload's")
        except SpecError as e:
            return await _refuse(ws, f"unable to find user {req.user}: {e}")
        req = replace(req, uid=ids.uid, gid=ids.gid, groups=ids.groups)
    try:
        reader, writer = await _connect(os.path.join(manager.wl_dir, name))
    except OSError:
        if req.kind == "attach":  # a shim of an older pystats: the CLI follows the log
            await ws.send_bytes(proto.HELLO + proto.Hello(tty=False, interactive=False).encode())
            await ws.close()
            return ws
        return await _refuse(
            ws, f"workload {name!r} has no stdio channel (started by an older pystats?)"
        )
    writer.write(proto.encode(proto.REQUEST, req.encode()))
    try:
        await _relay(ws, reader, writer)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    return ws


async def _relay(
    ws: web.WebSocketResponse, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    async def to_shim() -> None:
        async for msg in ws:
            if msg.type != WSMsgType.BINARY or not msg.data:
                break
            writer.write(proto.encode(msg.data[:1], msg.data[1:]))
            await writer.drain()

    async def to_client() -> None:
        frames = proto.FrameReader()
        while data := await reader.read(65536):
            for kind, payload in frames.feed(data):
                await ws.send_bytes(kind + payload)
        await ws.close()

    tasks = [asyncio.create_task(to_shim()), asyncio.create_task(to_client())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, ConnectionError, proto.FrameError):
                await t


def add_stdio_routes(app: web.Application, manager: WorkloadManager) -> None:
    async def handle(request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(max_msg_size=proto.MAX_FRAME + 1)
        await ws.prepare(request)
        try:
            return await _session(request, manager, ws)
        except (TimeoutError, ConnectionError):
            return ws

    app.router.add_get("/v1/workloads/{name}/stdio", handle)
