"""The network routes of the agent's API (workloads.network.NetworkService, in a thread).

    GET    /v1/networks                 list: name, subnet, gateway, bridge, workloads
    POST   /v1/networks                 body {name, subnet?}: create a user network
    GET    /v1/networks/{name}          one network with its workloads' addresses
    DELETE /v1/networks/{name}          remove an unused network (and its bridge)
    GET    /v1/workloads/{name}/port    a workload's published ports (pystats port)

A run's network fields (``net``, ``ports``, ``publish_all``, ``expose``, ``network_rate``) come
in the create body: net_request_from_body reads them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from workloads.network.errors import NetworkError, NetworkNotFound
from workloads.network.record import NetRequest
from workloads.network.service import NetworkService
from workloads.runtime.errors import SpecError

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
RUN_FIELDS = frozenset({"ports", "publish_all", "expose", "network_rate"})


def _strings(body: dict[str, Any], key: str) -> tuple[str, ...]:
    value = body.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SpecError(f"{key} must be a list of strings")
    return tuple(value)


def net_request_from_body(body: Any) -> NetRequest | None:
    """The network part of a create body; None when it asks for nothing of it."""
    if not isinstance(body, dict):
        return None
    rate = body.get("network_rate")
    if rate is not None and not isinstance(rate, str):
        raise SpecError("network_rate must be a string such as 1mbit")
    publish_all = body.get("publish_all", False)
    if not isinstance(publish_all, bool):
        raise SpecError("publish_all must be true or false")
    req = NetRequest(_strings(body, "ports"), publish_all, _strings(body, "expose"), rate)
    return None if req.empty() else req


def _network_json(svc: NetworkService, name: str) -> dict[str, Any]:
    net = svc.get(name)
    return {
        **net.to_json(),
        "workloads": {
            a.workload: {"ip_address": a.ip, "ports": [p.describe() for p in a.ports]}
            for a in svc.attachments()
            if a.network == name
        },
    }


def add_network_routes(app: web.Application, svc: NetworkService) -> None:
    def wrap(fn: Callable[[web.Request], Awaitable[Any]]) -> Handler:
        async def handler(request: web.Request) -> web.StreamResponse:
            try:
                result = await fn(request)
            except NetworkNotFound as e:
                return web.json_response({"error": str(e)}, status=404)
            except (NetworkError, SpecError) as e:
                return web.json_response({"error": str(e)}, status=400)
            return web.json_response(result)

        return handler

    async def listing(request: web.Request) -> Any:
        def run() -> list[dict[str, Any]]:
            svc.get("bridge")  # the default network is listed from the first look on
            return [_network_json(svc, n.name) for n in svc.networks()]

        return await asyncio.to_thread(run)

    async def create(request: web.Request) -> Any:
        try:
            body = await request.json()
        except ValueError:
            raise SpecError("the request body must be JSON") from None
        if not isinstance(body, dict) or not isinstance(body.get("name"), str):
            raise SpecError("the body must be an object with a name")
        unknown = set(body) - {"name", "subnet"}
        if unknown:
            raise SpecError(f"unknown field(s): {', '.join(sorted(unknown))}")
        subnet = body.get("subnet")
        if subnet is not None and not isinstance(subnet, str):
            raise SpecError("subnet must be a string such as 10.101.0.0/24")
        net = await asyncio.to_thread(svc.create, body["name"], subnet)
        return net.to_json()

    async def inspect(request: web.Request) -> Any:
        return await asyncio.to_thread(_network_json, svc, request.match_info["name"])

    async def remove(request: web.Request) -> Any:
        name = request.match_info["name"]
        await asyncio.to_thread(svc.remove, name)
        return {"removed": name}

    async def port(request: web.Request) -> Any:
        name = request.match_info["name"]
        info = await asyncio.to_thread(svc.describe, name)
        if info is None:
            raise NetworkError(f"workload {name!r} is on no network (run it with --net bridge)")
        return info

    app.router.add_get("/v1/networks", wrap(listing))
    app.router.add_post("/v1/networks", wrap(create))
    app.router.add_get("/v1/networks/{name}", wrap(inspect))
    app.router.add_delete("/v1/networks/{name}", wrap(remove))
    app.router.add_get("/v1/workloads/{name}/port", wrap(port))
