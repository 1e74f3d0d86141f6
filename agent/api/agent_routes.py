"""``GET /v1/agent``: where the running agent works, for clients that must agree with it.

`pystats policy plan|explain` read the policy engine's root here (and the controllers it can
use there), so that they plan against the tree the agent really manages.
"""

from __future__ import annotations

from dataclasses import asdict

from aiohttp import web

from agent.api.agent_client import AgentFacts


def add_agent_routes(app: web.Application, facts: AgentFacts) -> None:
    async def get(_request: web.Request) -> web.Response:
        return web.json_response(asdict(facts))

    app.router.add_get("/v1/agent", get)
