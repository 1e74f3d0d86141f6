"""The agent's stats endpoints on its Unix-socket API.

GET  /v1/stats[?all=1]        rows of every cgroup (schema: agent/statsview/stats.schema.json)
GET  /v1/history?cgroup=PATH  sparkline points and recent events of one cgroup
POST /v1/cgroups/freeze       body {"cgroup": PATH}: write 1 to its cgroup.freeze
POST /v1/cgroups/thaw         body {"cgroup": PATH}: write 0 to its cgroup.freeze

Only cgroups the store knows can be frozen or thawed; cgroupfs validates the path again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any

from aiohttp import web

from agent.api.query import flag
from agent.statsview.history import Event, history_from_store, history_to_json
from agent.statsview.jsonio import StatsDoc, doc_to_json
from agent.statsview.rows import RowCache, visible
from cgroupfs.errors import CgroupError, CgroupGone
from cgroupfs.mount import CgroupMount, describe_mount
from cgroupfs.paths import CgroupRoot
from collectors.netdev import NetIO
from collectors.store import Store
from workloads.runtime.cgroups import PODS

NamesFn = Callable[[], Mapping[str, str]]
EventsFn = Callable[[str], Iterable[Event]]


def pod_of(path: str, workload: str | None) -> str | None:
    """The pod of a workload's row: its cgroup is <...>/pods/<pod>/<workload>."""
    parts = path.split("/")
    if workload is None or len(parts) < 3 or parts[-3] != PODS:
        return None
    return parts[-2]


def add_stats_routes(
    app: web.Application,
    store: Store,
    root: CgroupRoot,
    *,
    mount: CgroupMount | None = None,
    names: NamesFn | None = None,
    interval_s: float | None = None,
    freezer: Callable[[CgroupRoot, str, bool], object] | None = None,
    events: EventsFn | None = None,
    images: NamesFn | None = None,
    net: Callable[[], Mapping[str, NetIO]] | None = None,
) -> None:
    """Mount the stats routes on the agent's API app; ``root`` is the collector's cgroup root.

    ``names`` maps cgroup paths to workload names (the workload manager's records), so rows
    show a workload's name instead of its cgroup. ``events(path)`` adds the agent's own events
    of a cgroup (placements, launches) to the detail pane's recent events, beside the store's
    OOM kills. ``freezer`` replaces cgroupfs' freeze in tests. ``images`` maps the cgroups of
    workloads run from an image to the image, shown in their rows' ``extra`` (as is the pod of
    a workload in one, from its cgroup's path). ``net()`` maps
    workload names to their network namespace's counters: the NET I/O cells.
    """
    do_freeze = freezer or set_frozen
    mode = describe_mount(mount)
    root_path = root.path

    cache = RowCache()

    async def stats(request: web.Request) -> web.Response:
        rows = cache.rows(store, names)
        if images is not None:
            imgs = images()
            rows = [
                replace(r, extra={**r.extra, "image": imgs[r.path]}) if r.path in imgs else r
                for r in rows
            ]
        rows = [
            replace(r, extra={**r.extra, "pod": pod}) if (pod := pod_of(r.path, r.workload)) else r
            for r in rows
        ]
        if net is not None:
            counters = net()
            rows = [
                replace(r, net_rx_bytes=io.rx_bytes, net_tx_bytes=io.tx_bytes)
                if r.workload is not None and (io := counters.get(r.workload)) is not None
                else r
                for r in rows
            ]
        if not flag(request, "all"):
            rows = visible(rows, show_all=False)
        doc = StatsDoc(rows, time.time(), "agent", root_path, mode, store.stats.ticks, interval_s)
        return web.json_response(doc_to_json(doc))

    async def history(request: web.Request) -> web.Response:
        path = request.query.get("cgroup")
        if path is None:
            return _error(400, "missing query parameter: cgroup")
        h = history_from_store(store, path, extra=events(path) if events is not None else ())
        if h is None:
            return _error(404, f"unknown cgroup: {path!r}")
        return web.json_response(history_to_json(h))

    def freeze_handler(frozen: bool) -> Callable[[web.Request], Any]:
        async def handler(request: web.Request) -> web.Response:
            try:
                body = await request.json()
            except ValueError:
                return _error(400, 'body must be JSON: {"cgroup": PATH}')
            path = body.get("cgroup") if isinstance(body, dict) else None
            if not isinstance(path, str):
                return _error(400, 'body must be JSON: {"cgroup": PATH}')
            if path not in store.entries:
                return _error(404, f"unknown cgroup: {path!r}")
            try:
                do_freeze(root, path, frozen)
            except CgroupGone:
                return _error(404, f"cgroup gone: {path!r}")
            except CgroupError as e:
                return _error(409, str(e))
            return web.json_response({"cgroup": path, "frozen": frozen})

        return handler

    app.router.add_get("/v1/stats", stats)
    app.router.add_get("/v1/history", history)
    app.router.add_post("/v1/cgroups/freeze", freeze_handler(True))
    app.router.add_post("/v1/cgroups/thaw", freeze_handler(False))


def set_frozen(root: CgroupRoot, path: str, frozen: bool) -> None:
    """Freeze or thaw through cgroupfs (the only layer that writes cgroup files)."""
    from cgroupfs.writer import freeze

    freeze(root, path, frozen)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)
