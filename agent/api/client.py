"""A small client of the workload API over the agent's Unix socket (agent.api.wire)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlencode

from agent.api import wire
from agent.api.socketpath import DEFAULT_SOCKET, unreachable


class ApiError(Exception):
    """An error answer (or no answer) from the agent; the message is meant for the user."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class WorkloadClient:
    def __init__(self, socket_path: str = DEFAULT_SOCKET, timeout: float | None = 120.0) -> None:
        self.socket_path = socket_path
        self.timeout = timeout

    def _open(
        self, method: str, path: str, body: Any = None, timeout: float | None = -1.0
    ) -> wire.Response:
        data = None if body is None else json.dumps(body).encode()
        try:
            resp = wire.request(
                self.socket_path,
                method,
                path,
                data,
                timeout=self.timeout if timeout == -1.0 else timeout,
            )
        except wire.BadAnswer as e:
            raise ApiError(0, f"talking to the agent at {self.socket_path}: {e}") from None
        except OSError as e:
            raise ApiError(0, unreachable(self.socket_path, e)) from None
        if resp.status >= 400:
            try:
                raw = resp.read()
            except OSError:
                raw = b""
            finally:
                resp.close()
            try:
                msg = str(json.loads(raw)["error"])
            except (ValueError, KeyError, TypeError):
                msg = raw.decode(errors="replace").strip() or resp.reason
            raise ApiError(resp.status, msg)
        return resp

    def _json(self, method: str, path: str, body: Any = None) -> Any:
        resp = self._open(method, path, body)
        try:
            return json.loads(resp.read())
        except OSError as e:
            raise ApiError(0, f"talking to the agent at {self.socket_path}: {e}") from None
        finally:
            resp.close()

    @staticmethod
    def _path(name: str, suffix: str = "", **query: Any) -> str:
        q = {k: v for k, v in query.items() if v is not None}
        p = f"/v1/workloads/{quote(name, safe='')}{suffix}"
        return p + ("?" + urlencode(q) if q else "")

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = self._json("POST", "/v1/workloads", body)
        return out

    def listing(self, all_: bool = False) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = self._json("GET", "/v1/workloads" + ("?all=1" if all_ else ""))
        return out

    def inspect(self, name: str) -> dict[str, Any]:
        out: dict[str, Any] = self._json("GET", self._path(name))
        return out

    def logs(self, name: str, follow: bool = False, tail: int | None = None) -> Iterator[bytes]:
        path = self._path(name, "/logs", follow=1 if follow else None, tail=tail)
        resp = self._open("GET", path, timeout=None)
        try:
            while chunk := resp.read1(65536):
                yield chunk
        finally:
            resp.close()

    def log_frames(
        self,
        name: str,
        follow: bool = False,
        tail: int | None = None,
        since: float | None = None,
        until: float | None = None,
        timestamps: bool = False,
    ) -> Iterator[tuple[int, bytes]]:
        """The logs with stdout and stderr apart: (1 stdout or 2 stderr, bytes) as they come.
        ``since``/``until``: Unix seconds."""
        from agent.api.logframes import split_frames

        path = self._path(
            name,
            "/logs",
            mux=1,
            follow=1 if follow else None,
            tail=tail,
            since=since,
            until=until,
            timestamps=1 if timestamps else None,
        )
        resp = self._open("GET", path, timeout=None)
        try:
            yield from split_frames(iter(lambda: resp.read1(65536), b""))
        finally:
            resp.close()

    def stop(self, name: str, grace_s: float | None = None) -> dict[str, Any]:
        out: dict[str, Any] = self._json("POST", self._path(name, "/stop", grace=grace_s))
        return out

    def kill(self, name: str, signal: str | None = None) -> dict[str, Any]:
        out: dict[str, Any] = self._json("POST", self._path(name, "/kill", signal=signal))
        return out

    def rm(self, name: str, force: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = self._json("DELETE", self._path(name, force=1 if force else None))
        return out
