"""The TUI's and `pystats stats`' client of an agent's stats API, over its Unix socket."""

from __future__ import annotations

import os
from types import TracebackType
from typing import Any

import aiohttp

from agent.api.socketpath import DEFAULT_SOCKET
from agent.statsview.history import History, history_from_json
from agent.statsview.jsonio import StatsDoc, doc_from_json


class AgentError(Exception):
    """The agent refused a request or did not answer; the message says which and why."""


class StatsClient:
    def __init__(self, socket_path: str = DEFAULT_SOCKET, timeout_s: float = 3.0) -> None:
        self.socket_path = socket_path
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> StatsClient:
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def _sess(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            conn = aiohttp.UnixConnector(path=self.socket_path)
            self._session = aiohttp.ClientSession(connector=conn, timeout=self._timeout)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _request(self, method: str, path: str, **kw: Any) -> Any:
        url = f"http://pystats-agent{path}"
        try:
            async with self._sess().request(method, url, **kw) as resp:
                try:
                    body = await resp.json(content_type=None)
                except ValueError:
                    body = {"error": (await resp.text())[:200]}
                if resp.status >= 400:
                    msg = body.get("error") if isinstance(body, dict) else None
                    raise AgentError(f"{method} {path}: {resp.status} {msg or resp.reason}")
                return body
        except (TimeoutError, aiohttp.ClientError, OSError) as e:
            why = str(e) or type(e).__name__
            raise AgentError(f"agent at {self.socket_path} did not answer: {why}") from None

    async def ping(self) -> bool:
        """True when an agent answers /v1/stats on the socket."""
        if not os.path.exists(self.socket_path):
            return False
        try:
            await self._request("GET", "/v1/stats")
        except AgentError:
            return False
        return True

    async def stats(self, show_all: bool = True) -> StatsDoc:
        body = await self._request("GET", "/v1/stats", params={"all": "1" if show_all else "0"})
        return doc_from_json(body)

    async def history(self, cgroup: str) -> History:
        body = await self._request("GET", "/v1/history", params={"cgroup": cgroup})
        return history_from_json(body)

    async def freeze(self, cgroup: str) -> None:
        await self._request("POST", "/v1/cgroups/freeze", json={"cgroup": cgroup})

    async def thaw(self, cgroup: str) -> None:
        await self._request("POST", "/v1/cgroups/thaw", json={"cgroup": cgroup})

    async def stop(self, workload: str) -> None:
        """Through the workloads API (agent/api/server.py): POST /v1/workloads/{name}/stop."""
        await self._request("POST", f"/v1/workloads/{workload}/stop")

    async def kill(self, workload: str) -> None:
        await self._request("POST", f"/v1/workloads/{workload}/kill")
