"""The image routes of the agent's API (workloads.images.ImageService does the work, in a thread).

    GET    /v1/images                       list, with disk usage
    GET    /v1/images/inspect?ref=REF       one image: record, names, config
    GET    /v1/images/usage                 bytes per image and per workload's upper layer
    POST   /v1/images/pull                  body {ref, insecure?, username?, password?}
    POST   /v1/images/load                  body {path, tag?}: a file or OCI layout the agent reads
    DELETE /v1/images?ref=REF[&force=1]     rmi
    POST   /v1/images/prune[?all=1]         remove unused images, blobs and layers

pull and load answer with newline-delimited JSON: progress lines ({"id", "status", "current",
"total"}), then one {"result": ...} or {"error": "...", "status": N} line. The work goes on if
the client leaves (as docker's pull does), so a second pull finds the blobs it fetched.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any

from aiohttp import web

from agent.api.query import flag
from workloads.images.auth import Credentials
from workloads.images.errors import ImageError
from workloads.images.reference import BadReference, parse
from workloads.images.run import ImageRequest
from workloads.images.service import ImageService, Progress, ProgressFn
from workloads.runtime.errors import SpecError

log = logging.getLogger("pystats.agent")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PULL_FIELDS = frozenset({"ref", "insecure", "username", "password"})
LOAD_FIELDS = frozenset({"path", "tag"})


class BadRequest(ValueError):
    pass


def _error(status: int, msg: str) -> web.Response:
    return web.json_response({"error": msg}, status=status)


async def _body(request: web.Request, fields: frozenset[str]) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise BadRequest("the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    unknown = set(body) - fields
    if unknown:
        raise BadRequest(f"unknown field(s): {', '.join(sorted(unknown))}")
    for key, value in body.items():
        ok = isinstance(value, bool) if key == "insecure" else isinstance(value, str)
        if not ok:
            raise BadRequest(f"{key} must be a {'boolean' if key == 'insecure' else 'string'}")
    return body


def _line(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj).encode() + b"\n"


async def _stream(request: web.Request, work: Callable[[ProgressFn], Any]) -> web.StreamResponse:
    """Run ``work`` in a thread, streaming its progress; its result is the last line."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    def progress(p: Progress) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, asdict(p))

    def run() -> dict[str, Any]:
        try:
            return {"result": work(progress)}
        except ImageError as e:
            return {"error": str(e), "status": e.status}
        except BadReference as e:
            return {"error": str(e), "status": 400}

    task = asyncio.create_task(asyncio.to_thread(run))
    resp = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
    await resp.prepare(request)
    client_gone = False
    while True:
        getter = asyncio.ensure_future(queue.get())
        done, _ = await asyncio.wait({getter, task}, return_when=asyncio.FIRST_COMPLETED)
        if getter in done:
            item = getter.result()
        else:
            getter.cancel()
            while not queue.empty():
                item = queue.get_nowait()
                if not client_gone:
                    client_gone = not await _write(resp, _line(item))
            final = task.result()
            if not client_gone:
                await _write(resp, _line(final))
                await resp.write_eof()
            return resp
        if not client_gone:
            client_gone = not await _write(resp, _line(item))


async def _write(resp: web.StreamResponse, data: bytes) -> bool:
    try:
        await resp.write(data)
    except ConnectionError:
        log.info("an image client left; the work goes on")
        return False
    return True


def _summary(images: ImageService) -> dict[str, Any]:
    return {"images": [asdict(s) for s in images.summaries()], "disk": images.disk_usage()}


def _inspect(images: ImageService, ref: str) -> dict[str, Any]:
    rec = images.get(ref)
    return {
        **rec.to_json(),
        "names": [parse(n).familiar for n in images.db.names_of(rec.id)],
        "size": rec.size,
        "config": asdict(images.config(rec)),
        "used_by": images.users().get(rec.id, []),
    }


def add_image_routes(
    app: web.Application,
    images: ImageService,
    rootfs_usage: Callable[[], dict[str, int | None]] | None = None,
) -> None:
    """``rootfs_usage``: workload name -> bytes in its upper layer (None: no image, or
    --read-only), for `GET /v1/images/usage` (docker system df -v's numbers)."""

    def wrap(fn: Callable[[web.Request], Awaitable[Any]]) -> Handler:
        async def handler(request: web.Request) -> web.StreamResponse:
            try:
                result = await fn(request)
            except (ImageError, BadRequest, BadReference) as e:  # BadRequest/Reference: 400
                return _error(getattr(e, "status", 400), str(e))
            ok = isinstance(result, web.StreamResponse)
            return result if ok else web.json_response(result)

        return handler

    def need_ref(request: web.Request) -> str:
        ref = request.query.get("ref")
        if not ref:
            raise BadRequest("the ref query parameter is required")
        return ref

    async def list_(request: web.Request) -> Any:
        return await asyncio.to_thread(_summary, images)

    async def inspect(request: web.Request) -> Any:
        return await asyncio.to_thread(_inspect, images, need_ref(request))

    async def pull(request: web.Request) -> Any:
        body = await _body(request, PULL_FIELDS)
        if "ref" not in body:
            raise BadRequest("ref is required")
        creds = None
        if body.get("username") is not None:
            creds = Credentials(body["username"], body.get("password", ""))

        def work(progress: ProgressFn) -> dict[str, Any]:
            rec = images.pull(
                body["ref"], insecure=body.get("insecure", False), creds=creds, progress=progress
            )
            return {"id": rec.id, "digest": rec.manifest_digest, "size": rec.size}

        return await _stream(request, work)

    async def load(request: web.Request) -> Any:
        body = await _body(request, LOAD_FIELDS)
        if "path" not in body:
            raise BadRequest("path is required")

        def work(progress: ProgressFn) -> dict[str, Any]:
            return {"loaded": images.load(body["path"], body.get("tag"), progress)}

        return await _stream(request, work)

    async def rmi(request: web.Request) -> Any:
        force = flag(request, "force")
        removed = await asyncio.to_thread(images.rmi, need_ref(request), force)
        return asdict(removed)

    async def usage(request: web.Request) -> Any:
        def work() -> dict[str, Any]:
            return {
                "images": {s.id: s.size for s in images.summaries()},
                "disk": images.disk_usage(),
                "workloads": rootfs_usage() if rootfs_usage is not None else {},
            }

        return await asyncio.to_thread(work)

    async def prune(request: web.Request) -> Any:
        all_ = flag(request, "all")
        return asdict(await asyncio.to_thread(images.prune, all_))

    for method, path, fn in (
        ("GET", "", list_),
        ("GET", "/inspect", inspect),
        ("GET", "/usage", usage),
        ("POST", "/pull", pull),
        ("POST", "/load", load),
        ("DELETE", "", rmi),
        ("POST", "/prune", prune),
    ):
        app.router.add_route(method, "/v1/images" + path, wrap(fn))


def image_request_from_body(body: Any) -> ImageRequest | None:
    """The image part of a create request (``image``, ``entrypoint``, ``user``), or None.
    Without an image, ``user`` is one of the rootfs (workloads.runtime.runuser)."""
    if not isinstance(body, dict) or body.get("image") is None:
        if isinstance(body, dict) and body.get("entrypoint") is not None:
            raise SpecError("entrypoint is given without an image")
        return None
    ref, ep, user = body["image"], body.get("entrypoint"), body.get("user")
    if not isinstance(ref, str) or not ref:
        raise SpecError("image must be a non-empty string")
    if ep is not None and (not isinstance(ep, list) or not all(isinstance(a, str) for a in ep)):
        raise SpecError("entrypoint must be a list of strings")
    if user is not None and not isinstance(user, str):
        raise SpecError("user must be a string")
    return ImageRequest(ref=ref, entrypoint=ep, user=user or None)
