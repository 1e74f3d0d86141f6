"""The pod routes of the agent's API (workloads.pods.PodManager):

    GET    /v1/pods                   every pod, as inspect shows it
    POST   /v1/pods                   body {name, hostname?, memory?, cpus?, pids?, network?,
                                      ports?}: create (ports: -p, on network, default bridge)
    GET    /v1/pods/{name}            one pod: state, limits, cgroup, namespaces, members
    GET    /v1/pods/{name}/stats      the pod cgroup's usage and its workloads'
    POST   /v1/pods/{name}/stop[?grace=S]   its workloads, then the infra
    POST   /v1/pods/{name}/start      the infra, then its workloads
    DELETE /v1/pods/{name}[?force=1]  refused while a workload of it runs, unless force

A workload joins a pod with ``pod`` in the create body (POST /v1/workloads).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from agent.api.lifecycle_routes import grace_of
from agent.api.query import flag
from workloads.lifecycle.manager import WorkloadError, WorkloadManager
from workloads.pods.manager import PodManager
from workloads.runtime.spec import Limits, SpecError, parse_limits

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
CREATE_FIELDS = frozenset({"name", "hostname", "memory", "cpus", "pids", "network", "ports"})


@dataclass(frozen=True)
class PodCreate:
    """A create body, checked."""

    name: str
    hostname: str | None
    limits: Limits
    network: str | None = None
    ports: tuple[str, ...] = ()


def pod_create_args(body: Any) -> PodCreate:
    """A create body checked; SpecError says what is wrong."""
    if not isinstance(body, dict) or not isinstance(body.get("name"), str):
        raise SpecError("the body must be an object with a name")
    unknown = set(body) - CREATE_FIELDS
    if unknown:
        raise SpecError(f"unknown field(s): {', '.join(sorted(unknown))}")
    for key in ("hostname", "network"):
        if body.get(key) is not None and not isinstance(body[key], str):
            raise SpecError(f"{key} must be a string")
    for key in ("memory", "cpus", "pids"):
        value = body.get(key)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, str | int | float)
        ):
            raise SpecError(f"{key} must be a string or a number")
    ports = body.get("ports") or []
    if not isinstance(ports, list) or not all(isinstance(p, str) for p in ports):
        raise SpecError("ports must be a list of strings such as 8080:80")
    limits = parse_limits(body.get("memory"), body.get("cpus"), body.get("pids"))
    return PodCreate(body["name"], body.get("hostname"), limits, body.get("network"), tuple(ports))


def add_pod_routes(app: web.Application, manager: WorkloadManager) -> PodManager:
    """Mount the routes; the PodManager made here is also the workload manager's join hook."""
    pods = PodManager(manager)

    def wrap(fn: Callable[[web.Request], Awaitable[Any]]) -> Handler:
        async def handler(request: web.Request) -> web.StreamResponse:
            try:
                result = await fn(request)
            except WorkloadError as e:
                return web.json_response({"error": str(e)}, status=e.status)
            except SpecError as e:
                return web.json_response({"error": str(e)}, status=400)
            return web.json_response(result)

        return handler

    async def listing(request: web.Request) -> Any:
        return pods.listing()

    async def create(request: web.Request) -> Any:
        try:
            body = await request.json()
        except ValueError:
            raise SpecError("the request body must be JSON") from None
        c = pod_create_args(body)
        return await pods.create(c.name, c.hostname, c.limits, c.network, c.ports)

    async def inspect(request: web.Request) -> Any:
        return pods.inspect(request.match_info["name"])

    async def stats(request: web.Request) -> Any:
        return await pods.stats(request.match_info["name"])

    async def stop(request: web.Request) -> Any:
        return await pods.stop(request.match_info["name"], grace_of(request))

    async def start(request: web.Request) -> Any:
        return await pods.start(request.match_info["name"])

    async def remove(request: web.Request) -> Any:
        name = request.match_info["name"]
        await pods.rm(name, force=flag(request, "force"))
        return {"removed": name}

    app.router.add_get("/v1/pods", wrap(listing))
    app.router.add_post("/v1/pods", wrap(create))
    app.router.add_get("/v1/pods/{name}", wrap(inspect))
    app.router.add_get("/v1/pods/{name}/stats", wrap(stats))
    app.router.add_post("/v1/pods/{name}/stop", wrap(stop))
    app.router.add_post("/v1/pods/{name}/start", wrap(start))
    app.router.add_delete("/v1/pods/{name}", wrap(remove))
    return pods
