"""A pod's workloads in /v1/stats: their rows name the pod (extra["pod"])."""

from __future__ import annotations

from agent.api.stats_routes import add_stats_routes, pod_of
from agent.statsview.fake import sample
from cgroupfs.paths import CgroupRoot
from collectors.store import Store


def test_pod_of_a_workloads_cgroup() -> None:
    assert pod_of("pystats/pods/web/srv", "srv") == "web"
    assert pod_of("pods/web/srv", "srv") == "web"
    assert pod_of("pystats/pods/web", None) is None  # the pod's own cgroup
    assert pod_of("pystats/workloads/srv", "srv") is None
    assert pod_of("x/pods/web/srv", None) is None  # not a workload's row


async def test_stats_rows_name_the_pod() -> None:
    from aiohttp import web
    from aiohttp.test_utils import TestClient, TestServer

    store = Store(history_len=10)
    paths = ["", "pods", "pods/web", "pods/web/srv", "workloads", "workloads/solo"]
    for t in range(2):
        store.publish([sample(p, t, cores=0.1, mem=1 << 20, pids=1) for p in paths])
    app = web.Application()
    add_stats_routes(
        app,
        store,
        CgroupRoot("/sys/fs/cgroup"),
        names=lambda: {"pods/web/srv": "srv", "workloads/solo": "solo"},
    )
    async with TestClient(TestServer(app)) as client:
        rows = (await (await client.get("/v1/stats?all=1")).json())["rows"]
    by_path = {r["path"]: r for r in rows}
    assert by_path["pods/web/srv"]["extra"] == {"pod": "web"}
    assert by_path["pods/web/srv"]["name"] == "srv"
    assert by_path["workloads/solo"]["extra"] == {}
    assert by_path["pods/web"]["extra"] == {}
