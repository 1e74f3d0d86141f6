"""GET /metrics over real loopback HTTP: formats, content negotiation, per-tick caching."""

from __future__ import annotations

import asyncio
import logging

import pytest
from aiohttp import ClientSession, web

from agent.exporter import Exporter
from agent.exporter.http import (
    add_metrics_routes,
    bound_port,
    serve_metrics,
    wants_openmetrics,
)
from tests.servers import until_no_connections
from tests.unit.test_exporter_golden import fixed_info, fixed_store

PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)


def test_accept_negotiation() -> None:
    assert wants_openmetrics(PROMETHEUS_ACCEPT)
    assert not wants_openmetrics("text/plain;version=0.0.4")
    assert not wants_openmetrics("")
    assert not wants_openmetrics("application/openmetrics-text;q=0")


async def test_serve_metrics_text_and_openmetrics() -> None:
    ex = Exporter(fixed_store(), fixed_info())
    runner = await serve_metrics(ex, "127.0.0.1", 0)
    try:
        url = f"http://127.0.0.1:{bound_port(runner)}/metrics"
        async with ClientSession() as http:
            async with http.get(url) as resp:
                assert resp.status == 200
                assert resp.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
                text = await resp.text()
            async with http.get(url, headers={"Accept": PROMETHEUS_ACCEPT}) as resp:
                assert resp.headers["Content-Type"].startswith("application/openmetrics-text")
                om = await resp.text()
    finally:
        await runner.cleanup()
    assert 'pystats_cgroup_memory_limit_bytes{cgroup="workloads/web"' in text
    assert "# TYPE pystats_cgroup_cpu_usage_seconds_total counter" in text
    assert "# TYPE pystats_cgroup_cpu_usage_seconds counter" in om
    assert "# UNIT pystats_cgroup_cpu_usage_seconds seconds" in om
    assert om.endswith("# EOF\n") and "# EOF" not in text


async def test_routes_mount_on_an_existing_app_and_scrapes_share_one_render() -> None:
    store = fixed_store()
    ex = Exporter(store, fixed_info())
    app = web.Application()
    add_metrics_routes(app, ex)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    calls = 0
    original = ex.format

    def counting(snap):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        return original(snap)

    ex.format = counting  # type: ignore[method-assign]
    try:
        url = f"http://127.0.0.1:{bound_port(runner)}/metrics"
        async with ClientSession() as http:

            async def get() -> str:
                async with http.get(url) as resp:
                    return await resp.text()

            bodies = await asyncio.gather(*(get() for _ in range(5)))
            assert calls == 1 and len(set(bodies)) == 1
            e = store.entries["workloads/web"]
            store.publish([(e.sample, e.rates)])  # a new tick: the next scrape renders again
            assert "pystats_ticks_total 2" in await get()
            assert calls == 2
    finally:
        await runner.cleanup()


async def test_run_prerenders_while_scrapes_keep_up() -> None:
    store = fixed_store()
    ex = Exporter(store, fixed_info())
    task = asyncio.create_task(ex.run())
    e = store.entries["workloads/web"]

    async def tick() -> None:
        store.publish([(e.sample, e.rates)])
        for _ in range(20):  # the render runs in a worker thread
            await asyncio.sleep(0.02)

    try:
        await asyncio.sleep(0)  # let run() start waiting for the tick
        await tick()
        assert ex._cache is not None and ex._cache.tick == 2
        assert ex._cache.openmetrics is not None  # Prometheus' format is ready before a scrape
        await tick()  # nobody scraped tick 2: tick 3 is not pre-rendered
        assert ex._cache.tick == 2
        await ex.render_async(openmetrics=True)  # a scrape renders tick 3 on demand ...
        assert ex._cache.tick == 3
        await tick()  # ... and, scrapes keeping up, tick 4 is pre-rendered
        assert ex._cache.tick == 4 and not ex._cache.served
    finally:
        task.cancel()


async def test_a_scraper_leaving_mid_body_is_no_error(caplog: pytest.LogCaptureFixture) -> None:
    ex = Exporter(fixed_store(), fixed_info())
    big = b"# a body far larger than the socket buffers\n" * (1 << 19)  # 22 MiB

    async def parts(openmetrics: bool) -> tuple[bytes, bytes]:
        return big, b""

    ex.render_parts_async = parts  # type: ignore[method-assign]
    runner = await serve_metrics(ex, "127.0.0.1", 0)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", bound_port(runner))
        writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await reader.readexactly(15)).startswith(b"HTTP/1.1 200")
        await asyncio.sleep(0.2)  # the server now waits for its writes to drain
        writer.transport.abort()  # a scrape timeout: the connection is reset mid-body
        await until_no_connections(runner, "a scraper that left")
    finally:
        await runner.cleanup()
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
