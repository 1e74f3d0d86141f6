"""`pystats attach` and `pystats exec`: a WebSocket relayed to the workload's shim.

    GET  /v1/workloads/{name}/stdio   (WebSocket) first message: a session request
    POST /v1/workloads/{name}/stdio   attach and leave: lets go the output a `run` without -d
                                      had held for its client ({"released": bool})

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
import socket
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


async def _connect(wdir: str, req: proto.SessionRequest) -> socket.socket:
    """A connection to the shim's stdio.sock, the session ``req`` sent. A plain socket, not
    asyncio's streams: once a write fails (the shim closed after its last frame, an exit, while
    the client still typed or resized), a StreamReader drops what it had already received."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    dir_fd = os.open(wdir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        await loop.sock_connect(sock, proto.short_path(proto.socket_path(wdir), dir_fd))
        await loop.sock_sendall(sock, proto.encode(proto.REQUEST, req.encode()))
    except BaseException:
        sock.close()
        raise
    finally:
        os.close(dir_fd)
    return sock


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
        sock = await _connect(os.path.join(manager.wl_dir, name), req)
    except OSError:
        if req.kind == "attach":  # a shim of an older pystats: the CLI follows the log
            await ws.send_bytes(proto.HELLO + proto.Hello(tty=False, interactive=False).encode())
            await ws.close()
            return ws
        return await _refuse(
            ws, f"workload {name!r} has no stdio channel (started by an older pystats?)"
        )
    try:
        await _relay(ws, sock)
    finally:
        sock.close()
    return ws


async def _relay(ws: web.WebSocketResponse, sock: socket.socket) -> None:
    """Frames both ways until the shim's side ends or the client leaves. A shim that stopped
    reading first (it sent its last frames and closed) still has what it sent delivered."""
    loop = asyncio.get_running_loop()

    async def to_shim() -> bool:
        """True once the client left; False when the shim no longer reads."""
        async for msg in ws:
            if msg.type != WSMsgType.BINARY or not msg.data:
                break
            try:
                await loop.sock_sendall(sock, proto.encode(msg.data[:1], msg.data[1:]))
            except OSError:
                return False
        return True

    async def to_client() -> None:
        frames = proto.FrameReader()
        while True:
            try:
                data = await loop.sock_recv(sock, 65536)
            except ConnectionResetError:  # it closed with our input unread: after its output
                data = b""
            if not data:
                break
            for kind, payload in frames.feed(data):
                await ws.send_bytes(kind + payload)

    client, shim = asyncio.create_task(to_shim()), asyncio.create_task(to_client())
    try:
        done, _ = await asyncio.wait({client, shim}, return_when=asyncio.FIRST_COMPLETED)
        if client in done and client.exception() is None and client.result() is False:
            await asyncio.wait({shim})
    finally:
        for t in (client, shim):
            t.cancel()
        for t in (client, shim):
            with contextlib.suppress(asyncio.CancelledError, ConnectionError, proto.FrameError):
                await t
    # Only now, no receive under way: aiohttp's close() from another task than the receiving
    # one ended that one first, and the relay then cancelled the close, its last frames lost.
    with contextlib.suppress(ConnectionError):
        await ws.close()


async def _release(manager: WorkloadManager, name: str) -> bool:
    """An attach that leaves once greeted: the shim of a run made with stdio.attach reads the
    output from then on (workloads.supervisor.console.read_output). For `pystats run --rm`
    without -i/-t, which follows the log instead of a session and has it open by then."""
    try:
        sock = await _connect(os.path.join(manager.wl_dir, name), proto.SessionRequest("attach"))
    except OSError:
        return False
    try:
        async with asyncio.timeout(10):
            first = await asyncio.get_running_loop().sock_recv(sock, 1)
        return first == proto.HELLO
    except (OSError, TimeoutError):
        return False
    finally:
        sock.close()


def add_stdio_routes(app: web.Application, manager: WorkloadManager) -> None:
    async def handle(request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(max_msg_size=proto.MAX_FRAME + 1)
        await ws.prepare(request)
        try:
            return await _session(request, manager, ws)
        except (TimeoutError, ConnectionError):
            return ws

    async def release(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        try:
            state = manager.inspect(name)["state"]
        except WorkloadError as e:
            return web.json_response({"error": str(e)}, status=e.status)
        live = state in (State.RUNNING.value, State.PAUSED.value)
        return web.json_response({"released": live and await _release(manager, name)})

    app.router.add_get("/v1/workloads/{name}/stdio", handle)
    app.router.add_post("/v1/workloads/{name}/stdio", release)
