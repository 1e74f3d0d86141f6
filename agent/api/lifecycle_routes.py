"""Workload lifecycle routes beyond create/stop/kill/rm (pystats pause/unpause/start/restart/
wait/container prune):

    POST /v1/workloads/{name}/pause      freeze its cgroup (409 unless running)
    POST /v1/workloads/{name}/unpause
    POST /v1/workloads/{name}/start      run an exited workload again
    POST /v1/workloads/{name}/restart[?grace=S]   stop (as /stop), then start
    POST /v1/workloads/{name}/wait       answers once it has exited for good: its record
    POST /v1/workloads-prune             remove every exited workload: {"removed": [...]}
    GET  /v1/workloads/{name}/top        {"pids": [...]}: the processes in its cgroup tree
    POST /v1/workloads/{name}/update     body: limit flags (workloads.lifecycle.update.FLAGS)
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from cgroupfs import reader
from cgroupfs.errors import CgroupGone
from cgroupfs.paths import CgroupRoot
from workloads.lifecycle.manager import Conflict, WorkloadError, WorkloadManager
from workloads.runtime.spec import SpecError
from workloads.supervisor.record import State

Route = Callable[[WorkloadManager, web.Request], Awaitable[Any]]


def grace_of(request: web.Request) -> float | None:
    """?grace=S of a stop or restart; None (the workload's --stop-timeout) when absent."""
    raw = request.query.get("grace")
    if raw is None:
        return None
    try:
        grace = float(raw)
    except ValueError:
        grace = -1.0
    if not 0 <= grace < 1e9:  # also NaN and inf: a stop must end
        raise SpecError("grace must be a number of seconds")
    return grace


async def _restart(m: WorkloadManager, request: web.Request) -> Any:
    name = request.match_info["name"]
    await m.stop(name, grace_s=grace_of(request))
    return await m.start_workload(name)


async def _prune(m: WorkloadManager, _request: web.Request) -> Any:
    removed = []
    for info in m.listing(all_=True):
        if info["state"] == State.EXITED.value:
            try:
                await m.rm(info["name"])
            except Conflict:  # a pod's infra: it goes with its pod (pystats pod rm)
                continue
            removed.append(info["name"])
    return {"removed": removed}


async def _update(m: WorkloadManager, request: web.Request) -> Any:
    try:
        body = await request.json()
    except ValueError:
        raise SpecError("the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise SpecError("the request body must be a JSON object of limits")
    return await m.update(request.match_info["name"], body)


def _by_name(method: Callable[[WorkloadManager, str], Awaitable[Any]]) -> Route:
    async def route(m: WorkloadManager, request: web.Request) -> Any:
        return await method(m, request.match_info["name"])

    return route


ROUTES: dict[str, Route] = {
    "/v1/workloads/{name}/pause": _by_name(WorkloadManager.pause),
    "/v1/workloads/{name}/unpause": _by_name(WorkloadManager.unpause),
    "/v1/workloads/{name}/start": _by_name(WorkloadManager.start_workload),
    "/v1/workloads/{name}/wait": _by_name(WorkloadManager.wait_exit),
    "/v1/workloads/{name}/restart": _restart,
    "/v1/workloads-prune": _prune,
    "/v1/workloads/{name}/update": _update,
}


async def _top(m: WorkloadManager, request: web.Request) -> Any:
    name = request.match_info["name"]
    rel = str(m.inspect(name)["cgroup"])  # 404 for an unknown name; a pod's is below the pod's
    return {"pids": await asyncio.to_thread(tree_pids, m.root, rel)}


def tree_pids(root: CgroupRoot, rel: str) -> list[int]:
    """Every PID in cgroup ``rel`` and below (a workload may make cgroups of its own)."""
    pids: list[int] = []
    for sub, _inode in reader.walk(root, start=rel):
        with contextlib.suppress(CgroupGone, FileNotFoundError):
            pids.extend(reader.read_procs(root, sub))
    return sorted(set(pids))


def add_lifecycle_routes(app: web.Application, manager: WorkloadManager) -> None:
    def handler(route: Route) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            try:
                return web.json_response(await route(manager, request))
            except WorkloadError as e:
                return web.json_response({"error": str(e)}, status=e.status)
            except SpecError as e:
                return web.json_response({"error": str(e)}, status=400)

        return handle

    for path, route in ROUTES.items():
        app.router.add_post(path, handler(route))
    app.router.add_get("/v1/workloads/{name}/top", handler(_top))
