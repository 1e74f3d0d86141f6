"""The image API's client (agent.api.wire over the agent's socket, as WorkloadClient)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

from agent.api.client import ApiError, WorkloadClient


class ImageClient(WorkloadClient):
    def images(self) -> dict[str, Any]:
        out: dict[str, Any] = self._json("GET", "/v1/images")
        return out

    def inspect_image(self, ref: str) -> dict[str, Any]:
        out: dict[str, Any] = self._json("GET", "/v1/images/inspect?" + urlencode({"ref": ref}))
        return out

    def rmi(self, ref: str, force: bool = False) -> dict[str, Any]:
        q = {"ref": ref, **({"force": "1"} if force else {})}
        out: dict[str, Any] = self._json("DELETE", "/v1/images?" + urlencode(q))
        return out

    def usage(self) -> dict[str, Any]:
        out: dict[str, Any] = self._json("GET", "/v1/images/usage")
        return out

    def prune(self, all_: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = self._json("POST", "/v1/images/prune" + ("?all=1" if all_ else ""))
        return out

    def _lines(self, path: str, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """The progress lines of a pull or load; the last is its result. ApiError on an
        error line, and when the stream ends without a result (the agent stopped mid-way)."""
        resp = self._open("POST", path, body, timeout=None)
        try:
            while True:
                try:
                    line = resp.readline()
                except OSError:  # wire.BadAnswer too
                    line = b""
                if not line:
                    raise ApiError(0, "the agent stopped answering before the work was done")
                try:
                    item = json.loads(line)
                except ValueError:
                    continue
                if "error" in item:
                    raise ApiError(int(item.get("status", 500)), str(item["error"]))
                yield item
                if "result" in item:
                    return
        finally:
            resp.close()

    def pull(self, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
        return self._lines("/v1/images/pull", body)

    def load(self, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
        return self._lines("/v1/images/load", body)
