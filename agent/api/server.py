"""The workload routes of the agent's HTTP/JSON API, and the Unix socket it is served on.

    POST   /v1/workloads                    create and start (body: see CREATE_FIELDS)
    GET    /v1/workloads[?all=1]            list (running only unless all=1)
    GET    /v1/workloads/{name}             inspect
    GET    /v1/workloads/{name}/logs[?follow=1]   output; follow streams until it exits for good
    POST   /v1/workloads/{name}/stop[?grace=S]    SIGTERM, grace period, then cgroup.kill
    POST   /v1/workloads/{name}/kill[?signal=KILL]
    DELETE /v1/workloads/{name}[?force=1]   remove (record, logs, cgroup)

Errors are JSON ``{"error": "..."}`` with 400 (bad input), 403 (peer not allowed), 404, 409.
The socket is root-only by default: mode 0600, owner configurable, and every request's peer
credentials (SO_PEERCRED) are checked against the allowed uids, so a socket made group- or
world-accessible by mistake still refuses other users.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import aiofiles
from aiohttp import web

from workloads.lifecycle.manager import WorkloadError, WorkloadManager
from workloads.runtime.security import SecurityOpts
from workloads.runtime.spec import (
    USERNS_DEFAULT_BASE,
    SpecError,
    WorkloadSpec,
    parse_env,
    parse_limits,
    parse_userns_base,
)

CREATE_FIELDS = frozenset(
    {
        "name",
        "argv",
        "env",
        "workdir",
        "hostname",
        "net",
        "rootfs",
        "memory",
        "cpus",
        "pids",
        "restart",
        "userns",
        "userns_base",
        "security",
    }
)
MANAGER_KEY: web.AppKey[WorkloadManager] = web.AppKey("workload_manager", WorkloadManager)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _error(status: int, msg: str) -> web.Response:
    return web.json_response({"error": msg}, status=status)


def peer_credentials(request: web.Request) -> tuple[int, int, int] | None:
    """(pid, uid, gid) of the peer of a Unix-socket request, None for other transports."""
    sock = request.transport.get_extra_info("socket") if request.transport else None
    if sock is None or sock.family != socket.AF_UNIX:
        return None
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, gid = struct.unpack("3i", raw)
    return pid, uid, gid


def peer_check_middleware(allowed_uids: Iterable[int] = (0,)) -> Any:
    """Refuse requests whose peer uid is not allowed (and any request not on a Unix socket)."""
    allowed = frozenset(allowed_uids)

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        cred = peer_credentials(request)
        if cred is None:
            return _error(403, "the workload API is served on the agent's Unix socket only")
        if cred[1] not in allowed:
            return _error(403, f"permission denied: uid {cred[1]} may not use the pystats API")
        return await handler(request)

    return check


def spec_from_body(body: Any) -> WorkloadSpec:
    if not isinstance(body, dict):
        raise SpecError("the request body must be a JSON object")
    unknown = set(body) - CREATE_FIELDS
    if unknown:
        raise SpecError(f"unknown field(s): {', '.join(sorted(unknown))}")
    argv = body.get("argv")
    if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
        raise SpecError("argv must be a list of strings")
    env = body.get("env") or {}
    if isinstance(env, list):
        env = parse_env([str(e) for e in env])
    if not isinstance(env, dict):
        raise SpecError("env must be an object or a list of KEY=VALUE")
    use_userns = body.get("userns", False)
    if not isinstance(use_userns, bool):
        raise SpecError("userns must be true or false")
    base = USERNS_DEFAULT_BASE
    if body.get("userns_base") is not None:
        if not use_userns:
            raise SpecError("userns_base is given but userns is not true")
        base = parse_userns_base(body["userns_base"])
    return WorkloadSpec(
        name=str(body.get("name") or ""),
        argv=argv,
        env={str(k): str(v) for k, v in env.items()},
        workdir=body.get("workdir"),
        hostname=body.get("hostname"),
        net=str(body.get("net") or "none"),
        rootfs=body.get("rootfs"),
        limits=parse_limits(body.get("memory"), body.get("cpus"), body.get("pids")),
        restart=str(body.get("restart") or "no"),
        userns=use_userns,
        userns_base=base,
        security=SecurityOpts.from_json(body.get("security")),
    )


def _signal_number(text: str) -> int:
    t = text.upper()
    if t.isdigit():
        return int(t)
    try:
        return int(signal.Signals[t if t.startswith("SIG") else "SIG" + t])
    except KeyError:
        raise SpecError(f"unknown signal {text!r}") from None


async def _follow(
    request: web.Request, manager: WorkloadManager, name: str, follow: bool
) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
    await resp.prepare(request)
    try:
        await _send_logs(request, resp, manager, name, follow)
        await resp.write_eof()
    except ConnectionError:
        # The reader went away (Ctrl-C on `pystats logs -f`, `| head`): not an error. aiohttp
        # says ConnectionResetError or, when the peer left while a write waited to drain, plain
        # ConnectionError("Connection lost").
        pass
    return resp


async def _send_logs(
    request: web.Request,
    resp: web.StreamResponse,
    manager: WorkloadManager,
    name: str,
    follow: bool,
) -> None:
    files = manager.log_files(name)
    # Everything already on disk, oldest first; the live file is followed afterwards.
    for path in files[:-1]:
        async with aiofiles.open(path, "rb") as f:
            while chunk := await f.read(65536):
                await resp.write(chunk)
    if not files:
        return
    live = files[-1]
    f = await aiofiles.open(live, "rb")
    try:
        ino = os.fstat(f.fileno()).st_ino
        while True:
            chunk = await f.read(65536)
            if chunk:
                await resp.write(chunk)
                continue
            if not follow:
                break
            done = manager.is_done(name)
            try:
                rotated = os.stat(live).st_ino != ino
            except FileNotFoundError:
                rotated = False
            if rotated:  # the old file is fully read: go on with the new one from its start
                await f.close()
                f = await aiofiles.open(live, "rb")
                ino = os.fstat(f.fileno()).st_ino
                continue
            if done:
                # The shim closes the log before recording the exit: one last read drains it.
                while chunk := await f.read(65536):
                    await resp.write(chunk)
                break
            if request.transport is None or request.transport.is_closing():
                return  # a follower of a quiet workload left: no write would tell us
            await manager.wait_changed(0.05)
    finally:
        await f.close()


def add_workload_routes(app: web.Application, manager: WorkloadManager) -> None:
    """Mount /v1/workloads on ``app`` (the daemon adds peer_check_middleware to the app)."""
    app[MANAGER_KEY] = manager

    def wrap(fn: Callable[[web.Request], Awaitable[Any]]) -> Handler:
        async def handler(request: web.Request) -> web.StreamResponse:
            try:
                result = await fn(request)
            except WorkloadError as e:
                return _error(e.status, str(e))
            except SpecError as e:
                return _error(400, str(e))
            if isinstance(result, web.StreamResponse):
                return result
            return web.json_response(result)

        return handler

    async def create(request: web.Request) -> Any:
        try:
            body = await request.json()
        except json.JSONDecodeError:
            raise SpecError("the request body is not valid JSON") from None
        return await manager.create(spec_from_body(body))

    async def list_(request: web.Request) -> Any:
        return manager.listing(all_=request.query.get("all") in ("1", "true"))

    async def inspect(request: web.Request) -> Any:
        return manager.inspect(request.match_info["name"])

    async def logs(request: web.Request) -> Any:
        name = request.match_info["name"]
        manager.inspect(name)  # 404 before the stream starts
        return await _follow(request, manager, name, request.query.get("follow") in ("1", "true"))

    async def stop(request: web.Request) -> Any:
        try:
            grace = float(request.query.get("grace", "10"))
        except ValueError:
            raise SpecError("grace must be a number of seconds") from None
        return await manager.stop(request.match_info["name"], grace_s=grace)

    async def kill(request: web.Request) -> Any:
        sig = _signal_number(request.query.get("signal", "KILL"))
        return await manager.kill(request.match_info["name"], sig)

    async def rm(request: web.Request) -> Any:
        name = request.match_info["name"]
        await manager.rm(name, force=request.query.get("force") in ("1", "true"))
        return {"removed": name}

    app.router.add_post("/v1/workloads", wrap(create))
    app.router.add_get("/v1/workloads", wrap(list_))
    app.router.add_get("/v1/workloads/{name}", wrap(inspect))
    app.router.add_get("/v1/workloads/{name}/logs", wrap(logs))
    app.router.add_post("/v1/workloads/{name}/stop", wrap(stop))
    app.router.add_post("/v1/workloads/{name}/kill", wrap(kill))
    app.router.add_delete("/v1/workloads/{name}", wrap(rm))


async def serve_unix(
    app: web.Application,
    path: str,
    *,
    mode: int = 0o600,
    uid: int | None = None,
    gid: int | None = None,
) -> web.AppRunner:
    """Serve ``app`` on a Unix socket with the given mode and owner; returns the runner."""
    os.makedirs(os.path.dirname(path) or ".", mode=0o755, exist_ok=True)
    if os.path.exists(path):
        os.unlink(path)  # a stale socket from a previous agent
    # No access log: the live view polls every second and would flood the journal.
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    # Bind under a umask that leaves no window with a wider mode than asked for.
    old = os.umask(0o777)
    try:
        site = web.UnixSite(runner, path)
        await site.start()
    finally:
        os.umask(old)
    if uid is not None or gid is not None:
        os.chown(path, -1 if uid is None else uid, -1 if gid is None else gid)
    os.chmod(path, mode)
    return runner


def make_app(manager: WorkloadManager, allowed_uids: Iterable[int] = (0,)) -> web.Application:
    """A stand-alone app with the workload routes (tests and the dev server)."""
    app = web.Application(middlewares=[peer_check_middleware(allowed_uids)])
    add_workload_routes(app, manager)
    return app
