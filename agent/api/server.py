"""The workload routes of the agent's HTTP/JSON API, and the Unix socket it is served on.

    POST   /v1/workloads                    create and start (body: see CREATE_FIELDS)
    GET    /v1/workloads[?all=1]            list (running only unless all=1)
    GET    /v1/workloads/{name}             inspect
    GET    /v1/workloads/{name}/logs[?follow=1]   output; follow streams until it exits for good
    POST   /v1/workloads/{name}/stop[?grace=S]    SIGTERM, grace period, then cgroup.kill
    POST   /v1/workloads/{name}/kill[?signal=KILL]
    DELETE /v1/workloads/{name}[?force=1]   remove (record, logs, cgroup)

Errors are JSON ``{"error": "..."}`` with 400 (bad input), 403 (peer not allowed), 404, 409.
The socket is root-only by default: mode 0600 (a mode with "other" bits is refused), group
configurable, and every request's peer credentials (SO_PEERCRED) are checked against the allowed
uids and group (agent.api.access), so a socket made group- or world-accessible by mistake still
refuses other users. The socket's directory must be root's and writable by nobody else, and only a
socket is ever replaced at its path.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import stat
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import aiofiles
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from agent.api.access import ApiAccess, Peer, peer_of
from agent.api.image_routes import add_image_routes, image_request_from_body
from agent.api.lifecycle_routes import add_lifecycle_routes, grace_of
from agent.api.logtail import LogQuery, Renderer
from agent.api.network_routes import RUN_FIELDS, add_network_routes, net_request_from_body
from agent.api.pod_routes import add_pod_routes
from agent.api.query import flag
from agent.api.stdio_routes import add_stdio_routes
from collectors.recorder.events import RecordedEvent
from workloads.lifecycle.manager import WorkloadError, WorkloadManager
from workloads.runtime.mounts import from_body as mounts_from_body
from workloads.runtime.runopts import RunOpts
from workloads.runtime.runuser import from_body as run_user_from_body
from workloads.runtime.security import SecurityOpts
from workloads.runtime.spec import (
    USERNS_DEFAULT_BASE,
    SpecError,
    WorkloadSpec,
    parse_env,
    parse_limits,
    parse_userns_base,
)
from workloads.runtime.stdio import StdioOpts
from workloads.supervisor.logread import Record, RecordReader, tail_start

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
        "run",
        "labels",
        "userns",
        "userns_base",
        "security",
        "mounts",
        "image",  # run from an image (agent.api.image_routes.image_request_from_body)
        "entrypoint",
        "user",  # -u: an image's user, else one of the rootfs (workloads.runtime.runuser)
        "stdio",  # -i, -t (workloads.runtime.stdio)
        "group_add",
        "pod",  # --pod NAME: join a pod (agent.api.pod_routes)
    }
)
log = logging.getLogger("pystats.agent")
MANAGER_KEY: web.AppKey[WorkloadManager] = web.AppKey("workload_manager", WorkloadManager)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _error(status: int, msg: str) -> web.Response:
    return web.json_response({"error": msg}, status=status)


def peer_credentials(request: web.Request) -> Peer | None:
    """The peer of a Unix-socket request, None for other transports."""
    sock = request.transport.get_extra_info("socket") if request.transport else None
    if sock is None or sock.family != socket.AF_UNIX:
        return None
    return peer_of(sock)


def peer_check_middleware(allowed: ApiAccess | Iterable[int] = (0,)) -> Any:
    """Refuse requests whose peer is not allowed (and any request not on a Unix socket):
    ``allowed`` is an ApiAccess, or the allowed uids."""
    access = allowed if isinstance(allowed, ApiAccess) else ApiAccess(uids=frozenset(allowed))

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        peer = peer_credentials(request)
        if peer is None:
            return _error(403, "the workload API is served on the agent's Unix socket only")
        if not access.allows(peer):
            return _error(403, f"permission denied: uid {peer.uid} may not use the pystats API")
        return await handler(request)

    return check


def _is_scalar(value: object) -> bool:
    return isinstance(value, str | int | float) and not isinstance(value, bool)


def _opt_str(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise SpecError(f"{key} must be a string, got {type(value).__name__} {value!r:.40}")
    return value


def spec_from_body(body: Any) -> WorkloadSpec:
    if not isinstance(body, dict):
        raise SpecError("the request body must be a JSON object")
    unknown = set(body) - CREATE_FIELDS - RUN_FIELDS  # RUN_FIELDS: ports, network_rate...
    if unknown:
        raise SpecError(f"unknown field(s): {', '.join(sorted(unknown))}")
    argv = body.get("argv")
    if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
        raise SpecError("argv must be a list of strings")
    env = body.get("env") or {}
    if isinstance(env, list):
        env = parse_env([str(e) for e in env])
    if not isinstance(env, dict) or not all(_is_scalar(v) for v in env.values()):
        raise SpecError("env must be an object of strings or a list of KEY=VALUE")
    for key in ("memory", "cpus", "pids"):
        if body.get(key) is not None and not _is_scalar(body[key]):
            raise SpecError(f"{key} must be a string or a number, got {body[key]!r:.40}")
    use_userns = body.get("userns", False)
    if not isinstance(use_userns, bool) and use_userns != "auto":
        raise SpecError('userns must be true or false, or "auto"')
    base = USERNS_DEFAULT_BASE
    if body.get("userns_base") is not None:
        if use_userns is not True:
            raise SpecError("userns_base is given but userns is not true")
        base = parse_userns_base(body["userns_base"])
    return WorkloadSpec(
        name=_opt_str(body, "name") or "",
        argv=argv,
        env={str(k): str(v) for k, v in env.items()},
        workdir=_opt_str(body, "workdir"),
        hostname=_opt_str(body, "hostname"),
        net=_opt_str(body, "net") or "none",
        rootfs=_opt_str(body, "rootfs"),
        limits=parse_limits(body.get("memory"), body.get("cpus"), body.get("pids")),
        restart=_opt_str(body, "restart") or "no",
        run=RunOpts.from_json(body.get("run")),
        labels=_labels(body.get("labels")),
        userns=bool(use_userns),
        userns_base=base,
        userns_auto=use_userns == "auto",
        security=SecurityOpts.from_json(body.get("security")),
        mounts=mounts_from_body(body.get("mounts")),
        stdio=StdioOpts.from_json(body.get("stdio")),
        pod=_opt_str(body, "pod"),
        user=run_user_from_body(body),
    )


def _labels(value: object) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and k and isinstance(v, str) for k, v in value.items()
    ):
        raise SpecError("labels must be an object of strings")
    return dict(value)


def _signal_number(text: str) -> int:
    t = text.upper()
    if t.isdigit():
        if not 1 <= int(t) <= signal.SIGRTMAX:
            raise SpecError(f"unknown signal {text!r}: a number from 1 to {int(signal.SIGRTMAX)}")
        return int(t)
    try:
        return int(signal.Signals[t if t.startswith("SIG") else "SIG" + t])
    except KeyError:
        raise SpecError(f"unknown signal {text!r}") from None


def tail_of(request: web.Request) -> int | None:
    """?tail=N (docker's --tail; "all" or absent: everything)."""
    raw = request.query.get("tail", "all")
    if raw == "all":
        return None
    if not raw.isdigit():
        raise SpecError(f"tail must be a number of lines or all, got {raw!r}")
    return int(raw)


async def _follow(
    request: web.Request, manager: WorkloadManager, name: str, q: LogQuery
) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
    await resp.prepare(request)
    try:
        await _send_logs(request, resp, manager, name, q)
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
    q: LogQuery,
) -> None:
    files = manager.log_files(name)
    if not files:
        return
    out = Renderer(q)

    async def send(records: list[Record]) -> bool:
        data = out.render(records)
        if data:
            await resp.write(data)
        return not out.past_until

    live = files[-1]
    live_size = os.path.getsize(live.path)
    first, start = 0, 0
    if q.tail is not None:  # the last lines only, then the live file from where they end
        first, start = await asyncio.to_thread(tail_start, files, q.tail, live_size)
    # Everything already on disk, oldest first; the live file is followed afterwards.
    for i in range(first, len(files) - 1):
        reader = RecordReader(files[i].legacy)
        async with aiofiles.open(files[i].path, "rb") as f:
            await f.seek(start if i == first else 0)
            while chunk := await f.read(65536):
                if not await send(reader.feed(chunk)):
                    return
        if not await send(reader.flush()):
            return
    reader = RecordReader(live.legacy)
    f = await aiofiles.open(live.path, "rb")
    try:
        await f.seek(start if first == len(files) - 1 else 0)
        ino = os.fstat(f.fileno()).st_ino
        while True:
            chunk = await f.read(65536)
            if chunk:
                if not await send(reader.feed(chunk)):
                    return
                continue
            if not q.follow or (q.until_ns is not None and time.time_ns() > q.until_ns):
                break
            done = manager.is_done(name)
            try:
                rotated = os.stat(live.path).st_ino != ino
            except FileNotFoundError:
                rotated = False
            if rotated:  # the old file is fully read: go on with the new one from its start
                await f.close()
                if not await send(reader.flush()):
                    return
                f = await aiofiles.open(live.path, "rb")
                ino = os.fstat(f.fileno()).st_ino
                continue
            if done:
                # The shim closes the log before recording the exit: one last read drains it.
                while chunk := await f.read(65536):
                    if not await send(reader.feed(chunk)):
                        return
                break
            if request.transport is None or request.transport.is_closing():
                return  # a follower of a quiet workload left: no write would tell us
            await manager.wait_changed(0.05)
        await send(reader.flush())
    finally:
        await f.close()


def log_query(request: web.Request) -> LogQuery:
    """?follow ?tail ?since ?until (Unix seconds) ?timestamps ?mux: see agent.api.logtail."""

    def moment(key: str) -> int | None:
        raw = request.query.get(key)
        if raw is None or raw == "":
            return None
        try:
            return int(float(raw) * 1e9)
        except ValueError:
            raise SpecError(f"{key} must be a Unix time in seconds, got {raw!r}") from None

    return LogQuery(
        follow=flag(request, "follow"),
        tail=tail_of(request),
        since_ns=moment("since"),
        until_ns=moment("until"),
        timestamps=flag(request, "timestamps"),
        mux=flag(request, "mux"),
    )


def add_workload_routes(
    app: web.Application,
    manager: WorkloadManager,
    oom_history: Callable[[str], list[RecordedEvent]] | None = None,
) -> None:
    """Mount /v1/workloads on ``app`` (the daemon adds peer_check_middleware to the app).
    ``oom_history``: the durable history's OOM kills of a workload (blocking: run in a thread),
    shown by inspect with their victims."""
    app[MANAGER_KEY] = manager
    add_image_routes(app, manager.images, manager.rootfs_usage)  # /v1/images

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
        except ValueError:  # not JSON, or not UTF-8
            raise SpecError("the request body is not valid JSON") from None
        except (ConnectionError, HttpProcessingError) as e:
            # The client left (or broke the framing) mid-body: nobody to answer, not our error.
            log.info("a client left before sending its whole request: %s", e)
            raise web.HTTPBadRequest() from None
        spec, image = spec_from_body(body), image_request_from_body(body)
        return await manager.create(spec, image, net_request_from_body(body))

    async def list_(request: web.Request) -> Any:
        return manager.listing(all_=flag(request, "all"))

    async def inspect(request: web.Request) -> Any:
        name = request.match_info["name"]
        info = manager.inspect(name)
        if oom_history is not None:
            kills = await asyncio.to_thread(oom_history, name)
            info["oom_kills"] = [
                {
                    "time": k.wall,
                    "cgroup": k.cgroup,
                    "pid": k.pid,
                    "command": k.comm,
                    "count": k.count,
                    "text": k.text,
                }
                for k in kills
            ]
        return info

    async def logs(request: web.Request) -> Any:
        name = request.match_info["name"]
        manager.inspect(name)  # 404 before the stream starts
        return await _follow(request, manager, name, log_query(request))

    async def stop(request: web.Request) -> Any:
        return await manager.stop(request.match_info["name"], grace_s=grace_of(request))

    async def kill(request: web.Request) -> Any:
        sig = _signal_number(request.query.get("signal", "KILL"))
        return await manager.kill(request.match_info["name"], sig)

    async def rm(request: web.Request) -> Any:
        name = request.match_info["name"]
        await manager.rm(name, force=flag(request, "force"))
        return {"removed": name}

    app.router.add_post("/v1/workloads", wrap(create))
    app.router.add_get("/v1/workloads", wrap(list_))
    app.router.add_get("/v1/workloads/{name}", wrap(inspect))
    app.router.add_get("/v1/workloads/{name}/logs", wrap(logs))
    app.router.add_post("/v1/workloads/{name}/stop", wrap(stop))
    app.router.add_post("/v1/workloads/{name}/kill", wrap(kill))
    app.router.add_delete("/v1/workloads/{name}", wrap(rm))
    add_lifecycle_routes(app, manager)  # pause, unpause, start, restart, wait, prune
    add_network_routes(app, manager.net)  # /v1/networks, /v1/workloads/{name}/port
    add_pod_routes(app, manager)  # /v1/pods; and --pod, --net container:NAME at create
    add_stdio_routes(app, manager)  # attach, exec (WebSocket to the shim's stdio.sock)


class UnsafeSocketPath(OSError):
    """The socket cannot be served safely at that path; the message says why."""


def _prepare_socket_path(path: str) -> None:
    """Check the socket's directory (ours, writable by nobody else: no one may swap the socket)
    and clear a stale socket. Anything but a socket at ``path``, or a socket someone still
    listens on, is left alone and refused."""
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, mode=0o755, exist_ok=True)
    st = os.stat(parent)
    if st.st_uid not in (0, os.geteuid()):
        raise UnsafeSocketPath(f"{parent}: owned by uid {st.st_uid}, not root; refusing the socket")
    if st.st_mode & 0o022:
        raise UnsafeSocketPath(
            f"{parent}: mode {stat.S_IMODE(st.st_mode):04o} is group- or other-writable; "
            "refusing the socket (chmod go-w it, or choose another directory)"
        )
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise UnsafeSocketPath(f"{path} exists and is not a socket; refusing to replace it")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        try:
            probe.connect(path)
        except OSError:
            os.unlink(path)  # nobody listens: a stale socket from a previous agent
            return
    raise UnsafeSocketPath(f"{path}: another server is listening on this socket")


SHUTDOWN_GRACE_S = 2.0  # aiohttp's default, 60 s, let one `logs -f` client hold a stop up


async def serve_unix(
    app: web.Application,
    path: str,
    *,
    mode: int = 0o600,
    uid: int | None = None,
    gid: int | None = None,
) -> web.AppRunner:
    """Serve ``app`` on a Unix socket with the given mode and owner; returns the runner.
    UnsafeSocketPath when the mode, the directory or what is at ``path`` would not be safe."""
    if mode & 0o007:
        raise UnsafeSocketPath(f"socket mode {mode:04o} would let every user launch workloads")
    _prepare_socket_path(path)
    bound: list[int] = []  # the inode we bound: a clean stop removes that socket, no other
    app.on_cleanup.append(lambda _app: _remove_socket(path, bound))
    # No access log: the live view polls every second and would flood the journal. A stop does
    # not wait out long requests (logs -f, attach, wait): they end after SHUTDOWN_GRACE_S.
    runner = web.AppRunner(
        app, handle_signals=False, access_log=None, shutdown_timeout=SHUTDOWN_GRACE_S
    )
    await runner.setup()
    # Bind under a umask that leaves no window with a wider mode than asked for.
    old = os.umask(0o777)
    try:
        site = web.UnixSite(runner, path)
        await site.start()
    finally:
        os.umask(old)
    bound.append(os.lstat(path).st_ino)
    if uid is not None or gid is not None:
        os.chown(path, -1 if uid is None else uid, -1 if gid is None else gid)
    os.chmod(path, mode)
    return runner


async def _remove_socket(path: str, bound: list[int]) -> None:
    """On a clean stop: unlink our socket (not one a later agent bound at the same path)."""
    try:
        if bound and os.lstat(path).st_ino == bound[0]:
            os.unlink(path)
    except FileNotFoundError:
        pass


def make_app(manager: WorkloadManager, allowed_uids: Iterable[int] = (0,)) -> web.Application:
    """A stand-alone app with the workload routes (tests and the dev server)."""
    app = web.Application(middlewares=[peer_check_middleware(allowed_uids)])
    add_workload_routes(app, manager)
    return app
