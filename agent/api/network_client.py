"""The network API's client (agent.api.wire over the agent's socket, as WorkloadClient)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from agent.api.client import WorkloadClient


class NetworkClient(WorkloadClient):
    def networks(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = self._json("GET", "/v1/networks")
        return out

    def create_network(self, name: str, subnet: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"name": name, **({"subnet": subnet} if subnet else {})}
        out: dict[str, Any] = self._json("POST", "/v1/networks", body)
        return out

    def inspect_network(self, name: str) -> dict[str, Any]:
        out: dict[str, Any] = self._json("GET", f"/v1/networks/{quote(name, safe='')}")
        return out

    def rm_network(self, name: str) -> dict[str, Any]:
        out: dict[str, Any] = self._json("DELETE", f"/v1/networks/{quote(name, safe='')}")
        return out

    def port(self, name: str) -> dict[str, Any]:
        out: dict[str, Any] = self._json("GET", f"/v1/workloads/{quote(name, safe='')}/port")
        return out
