"""Scrape latency and payload size of /metrics at 1,000 and 10,000 cgroups (synthetic store).

Compares, in the same run:
- ``prometheus_client``: ``generate_latest`` over the custom collector (the library's own path);
- ``render (cold)``: the fast renderer, first scrape after a tick (snapshot + format + encode);
- ``scrape (cached)``: a second scrape in the same tick (cached cgroup bytes + self-metrics);
- ``HTTP GET``: a full aiohttp round trip on loopback after a new tick (cold render included).

    .venv/bin/python -m benchmarks.exporter_bench [--sizes 1000 10000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Callable

from aiohttp import ClientSession
from prometheus_client import CollectorRegistry, generate_latest

from agent.exporter import AgentInfo, Exporter
from agent.exporter.collector import StoreCollector
from agent.exporter.http import bound_port, serve_metrics
from cgroupfs.types import (
    UNLIMITED,
    CpuMax,
    CpuStat,
    IoDeviceStat,
    IoStat,
    MemoryEvents,
    MemoryStat,
    Pressure,
    PressureLine,
)
from collectors.sample import CgroupRates, CgroupSample
from collectors.store import Store


def _sample(i: int, tick: int) -> tuple[CgroupSample, CgroupRates]:
    psi = Pressure(PressureLine(0.1, 0.2, 0.3, 1000 * i + tick), PressureLine(0, 0, 0, i))
    s = CgroupSample(
        path=f"system.slice/app-{i // 100}.slice/unit-{i}.service",
        inode=1000 + i,
        mono=float(tick),
        wall=1.7e9 + tick,
        cpu=CpuStat(10_000 * i + tick, 7000 * i, 3000 * i, 100 + tick, i % 7, 1234 * i),
        cpu_max=CpuMax(50_000 if i % 2 else UNLIMITED, 100_000),
        memory_current=1_000_000 + i * 4096,
        memory_peak=2_000_000 + i * 4096,
        memory_max=UNLIMITED if i % 3 else 268_435_456,
        memory_high=UNLIMITED,
        swap_current=0,
        swap_max=UNLIMITED,
        memory_events=MemoryEvents(0, i % 5, i % 3, i % 2, i % 2, 0),
        memory_stat=MemoryStat(anon=600_000, file=400_000, inactive_file=100_000),
        pids_current=1 + i % 50,
        pids_max=UNLIMITED,
        io=IoStat((IoDeviceStat(8, 0, 4096 * i, 8192 * i, i, 2 * i),)),
        cpu_pressure=psi,
        memory_pressure=psi,
        io_pressure=psi,
    )
    return s, CgroupRates(cpu_cores=0.1, working_set=900_000 + i)


def make_store(n: int) -> Store:
    store = Store(history_len=2)
    store.publish([_sample(i, 0) for i in range(n)], duration_s=0.01)
    return store


def new_tick(store: Store) -> None:
    tick = store.stats.ticks + 1
    store.publish([_sample(i, tick) for i in range(len(store.entries))], duration_s=0.01)


def _labels(n: int) -> Callable[[str], dict[str, str]]:
    # A tenth of the cgroups belong to workloads, as the daemon's label provider would say.
    def get(path: str) -> dict[str, str]:
        i = int(path.rsplit("-", 1)[1].split(".")[0])
        return {"workload": f"wl-{i}", "policy": "batch"} if i % 10 == 0 else {}

    return get


def _time(fn: Callable[[], object], repeat: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


async def _http(ex: Exporter, store: Store, repeat: int) -> tuple[float, float]:
    """Median GET /metrics (text format) right after a tick, and again in the same tick."""
    runner = await serve_metrics(ex, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{bound_port(runner)}/metrics"
    cold, warm = [], []
    try:
        async with ClientSession() as http:
            for _ in range(repeat):
                new_tick(store)
                for times in (cold, warm):
                    t0 = time.perf_counter()
                    async with http.get(url) as resp:
                        await resp.read()
                    times.append(time.perf_counter() - t0)
    finally:
        await runner.cleanup()
    return statistics.median(cold), statistics.median(warm)


def run(n: int, repeat: int) -> None:
    store = make_store(n)
    ex = Exporter(store, AgentInfo(version="bench", labels=_labels(n)))
    registry = CollectorRegistry()
    registry.register(StoreCollector(ex))

    t_lib, lib = _time(lambda: generate_latest(registry), repeat)

    def cold() -> bytes:
        new_tick(store)  # outside the timing would be fairer, but it is ~the same per repeat
        t0 = time.perf_counter()
        out = ex.render()
        cold.elapsed.append(time.perf_counter() - t0)  # type: ignore[attr-defined]
        return out

    cold.elapsed = []  # type: ignore[attr-defined]
    _, ours = _time(cold, repeat)
    t_cold = statistics.median(cold.elapsed)  # type: ignore[attr-defined]
    t_cached, _ = _time(lambda: ex.render(), repeat)
    new_tick(store)
    t_om, om = _time(lambda: ex.render(openmetrics=True), 1)
    t_http, t_http_warm = asyncio.run(_http(ex, store, repeat))
    assert isinstance(ours, bytes) and isinstance(lib, bytes)
    lines = ours.count(b"\n")
    print(f"\n{n} cgroups: {lines} lines, {len(ours) / 1e6:.1f} MB ours, "
          f"{len(lib) / 1e6:.1f} MB prometheus_client")  # fmt: skip
    print(f"  prometheus_client generate_latest : {t_lib * 1000:8.1f} ms")
    print(f"  render, first scrape of a tick    : {t_cold * 1000:8.1f} ms "
          f"({t_cold / lines * 1e6:.2f} µs/line, {t_lib / t_cold:.1f}x faster)")  # fmt: skip
    print(f"  scrape again in the same tick     : {t_cached * 1000:8.1f} ms")
    assert isinstance(om, bytes)
    print(f"  OpenMetrics, first scrape of a tick: {t_om * 1000:7.1f} ms ({len(om) / 1e6:.1f} MB)")
    print(f"  HTTP GET over loopback, new tick  : {t_http * 1000:8.1f} ms")
    print(f"  HTTP GET over loopback, same tick : {t_http_warm * 1000:8.1f} ms")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    for n in args.sizes:
        run(n, args.repeat)


if __name__ == "__main__":
    main()
