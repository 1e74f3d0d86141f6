"""Scrape latency and payload size of /metrics at 1,000 and 10,000 cgroups (synthetic store).

Compares, in the same run:
- ``prometheus_client``: ``generate_latest`` over the custom collector (the library's own path);
- ``render (cold)``: the fast renderer, first scrape after a tick (snapshot + format + encode);
- ``scrape (cached)``: a second scrape in the same tick (cached cgroup bytes + self-metrics);
- ``curl GET``: a full HTTP round trip on loopback right after a tick, by a separate process,
  rendered on demand or pre-rendered by ``Exporter.run``.

    .venv/bin/python -m benchmarks.exporter_bench [--sizes 1000 10000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Callable

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


PROMETHEUS_ACCEPT = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"


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


class Timer:
    """Wall and thread-CPU time of repeated calls; CPU time is steadier on a loaded machine."""

    def __init__(self) -> None:
        self.wall: list[float] = []
        self.cpu: list[float] = []

    def __call__(self, fn: Callable[[], bytes]) -> bytes:
        c0, t0 = time.thread_time(), time.perf_counter()
        out = fn()
        self.wall.append(time.perf_counter() - t0)
        self.cpu.append(time.thread_time() - c0)
        return out

    def ms(self) -> str:
        wall, cpu = statistics.median(self.wall) * 1e3, min(self.cpu) * 1e3
        return f"{wall:8.1f} ms wall, {cpu:7.1f} ms CPU"


async def _curl(url: str) -> float:
    # A separate process, as Prometheus is: the client does not share our GIL.
    proc = await asyncio.create_subprocess_exec(
        "curl", "-s", "-o", "/dev/null", "-H", "Accept: " + PROMETHEUS_ACCEPT,
        "-w", "%{time_total}", url, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await proc.communicate()
    return float(out)


async def _http(ex: Exporter, store: Store, repeat: int) -> tuple[float, float]:
    """Median GET /metrics by curl right after a tick: rendered on demand, and pre-rendered by
    ``Exporter.run`` (Prometheus' OpenMetrics format, as it asks for)."""
    runner = await serve_metrics(ex, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{bound_port(runner)}/metrics"
    cold, warm = [], []
    try:
        for _ in range(repeat):
            new_tick(store)
            cold.append(await _curl(url))
        task = asyncio.create_task(ex.run())
        await asyncio.sleep(0)  # let it start waiting for ticks
        for _ in range(repeat):
            new_tick(store)
            while ex._cache is None or ex._cache.tick != store.stats.ticks:
                await asyncio.sleep(0.01)  # the pre-render in the worker thread
            warm.append(await _curl(url))
        task.cancel()
    finally:
        await runner.cleanup()
    return statistics.median(cold), statistics.median(warm)


def run(n: int, repeat: int) -> None:
    store = make_store(n)
    ex = Exporter(store, AgentInfo(version="bench", labels=_labels(n)))
    registry = CollectorRegistry()
    registry.register(StoreCollector(ex))
    lib_t, cold_t, warm_t, om_t = Timer(), Timer(), Timer(), Timer()
    lib = ours = om = b""
    for _ in range(repeat):  # interleaved, so that load changes hit both sides alike
        new_tick(store)
        ours = cold_t(ex.render)
        warm_t(ex.render)
        lib = lib_t(lambda: generate_latest(registry))
        new_tick(store)
        om = om_t(lambda: ex.render(openmetrics=True))
    t_http, t_http_warm = asyncio.run(_http(ex, store, repeat))
    lines = ours.count(b"\n")
    speedup = min(lib_t.cpu) / min(cold_t.cpu)
    print(
        f"\n{n} cgroups: {lines} lines, {len(ours) / 1e6:.1f} MB text, "
        f"{len(om) / 1e6:.1f} MB OpenMetrics, {len(lib) / 1e6:.1f} MB prometheus_client"
    )
    print(f"  prometheus_client generate_latest   : {lib_t.ms()}")
    print(
        f"  render, first scrape of a tick      : {cold_t.ms()} "
        f"({min(cold_t.cpu) / lines * 1e6:.2f} µs/line CPU, {speedup:.1f}x faster)"
    )
    print(f"  OpenMetrics, first scrape of a tick : {om_t.ms()}")
    print(f"  scrape again in the same tick       : {warm_t.ms()}")
    print(f"  curl GET /metrics, render on demand : {t_http * 1e3:8.1f} ms wall")
    print(f"  curl GET /metrics, pre-rendered     : {t_http_warm * 1e3:8.1f} ms wall")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    for n in args.sizes:
        run(n, args.repeat)


if __name__ == "__main__":
    main()
