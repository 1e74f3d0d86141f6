"""docker stats' NET I/O: a workload's own network namespace's bytes received / sent, in the
agent's /v1/stats rows, `pystats stats`' table and the live view; "- / -" where there is none."""

from __future__ import annotations

from dataclasses import replace

from agent.statsview.fake import demo_store
from agent.statsview.render import HEADERS, render_table
from agent.statsview.rows import rows_from_store
from agent.tui.columns import BY_KEY
from collectors.netdev import NetIO


def test_table_has_a_net_io_column_before_block_io() -> None:
    assert HEADERS.index("NET I/O") == HEADERS.index("BLOCK I/O") - 1
    rows = {r.path: r for r in rows_from_store(demo_store())}
    web = replace(rows["pystats.slice/web"], net_rx_bytes=1200, net_tx_bytes=648)
    lines = render_table([web, rows["pystats.slice/batch"]]).splitlines()
    cols = [c.strip() for c in lines[1].split("   ") if c.strip()]
    assert cols[HEADERS.index("NET I/O")] == "1.2kB / 648B"
    other = [c.strip() for c in lines[2].split("   ") if c.strip()]
    assert other[HEADERS.index("NET I/O")] == "- / -"


def test_live_view_column() -> None:
    rows = {r.path: r for r in rows_from_store(demo_store())}
    col = BY_KEY["net"]
    web = replace(rows["pystats.slice/web"], net_rx_bytes=2_000_000, net_tx_bytes=5)
    assert col.cell(web).plain == "2MB / 5B"
    assert col.sort_value(web) == 2_000_005.0
    assert col.sort_value(rows["pystats.slice/batch"]) == float("-inf")  # unknown sorts last


async def test_agent_rows_carry_their_workloads_counters() -> None:
    from aiohttp import web
    from aiohttp.test_utils import TestClient, TestServer

    from agent.api.stats_routes import add_stats_routes
    from cgroupfs.paths import CgroupRoot

    app = web.Application()
    add_stats_routes(
        app,
        demo_store(),
        CgroupRoot("/sys/fs/cgroup"),
        names=lambda: {"pystats.slice/web": "web", "pystats.slice/batch": "batch"},
        net=lambda: {"web": NetIO(rx_bytes=10, tx_bytes=20)},  # batch: --net host, no entry
    )
    async with TestClient(TestServer(app)) as client:
        rows = (await (await client.get("/v1/stats?all=1")).json())["rows"]
    by_path = {r["path"]: r for r in rows}
    assert (
        by_path["pystats.slice/web"]["net_rx_bytes"],
        by_path["pystats.slice/web"]["net_tx_bytes"],
    ) == (10, 20)
    assert by_path["pystats.slice/batch"]["net_rx_bytes"] is None
