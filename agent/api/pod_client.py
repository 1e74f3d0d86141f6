"""The pod API's client (agent.api.wire over the agent's socket, as WorkloadClient)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from agent.api.client import WorkloadClient


class PodClient(WorkloadClient):
    def _pod(self, method: str, name: str, tail: str = "", body: Any = None) -> Any:
        return self._json(method, f"/v1/pods/{quote(name, safe='')}{tail}", body)

    def pods(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = self._json("GET", "/v1/pods")
        return out

    def create_pod(self, body: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = self._json("POST", "/v1/pods", body)
        return out

    def inspect_pod(self, name: str) -> dict[str, Any]:
        out: dict[str, Any] = self._pod("GET", name)
        return out

    def pod_stats(self, name: str) -> dict[str, Any]:
        out: dict[str, Any] = self._pod("GET", name, "/stats")
        return out

    def stop_pod(self, name: str, grace: float | None = None) -> dict[str, Any]:
        out: dict[str, Any] = self._pod(
            "POST", name, "/stop" + (f"?grace={grace}" if grace else "")
        )
        return out

    def start_pod(self, name: str) -> dict[str, Any]:
        out: dict[str, Any] = self._pod("POST", name, "/start")
        return out

    def rm_pod(self, name: str, force: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = self._pod("DELETE", name, "?force=1" if force else "")
        return out
