"""End to end in the VM: real workloads, the real collector and exporter, a real Prometheus.

Workloads in a scratch cgroup burn CPU under a quota, fill memory close to memory.max, get
OOM-killed and do direct I/O on a RAM disk. The collector samples them every second and the
exporter serves /metrics; Debian's Prometheus scrapes it every second with the shipped alert
rules loaded (plus a copy with ``for: 0s``). Then every PromQL expression of every dashboard
panel must return data, every variable must have values, every rule must evaluate without
error, and the OOM-kill and memory-near-limit alerts must fire for the cgroups that caused them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.daemon import Health
from agent.exporter import AgentInfo, Exporter
from agent.exporter.http import bound_port, serve_metrics
from agent.selfmon import SelfMonitor
from cgroupfs.paths import CgroupRoot
from collectors.collector import Collector
from collectors.netdev import NetIO, read_pid
from collectors.store import Store
from dashboards.queries import panel_queries, substitute, variable_queries
from tests import envcheck
from tests.vm.promserver import (
    PROMETHEUS,
    prom_api,
    prometheus_server,
    scraped_up,
    wait_for,
)

pytestmark = [pytest.mark.vm, pytest.mark.prometheus]

WORKLOADS = {"burn": "burn", "hog": "hog", "oom": "oom", "io": "io"}
VALUES = {"instance": ".+", "workload": ".*", "cgroup": ".+", "__rate_interval": "10s"}

HOG = """
import sys, time
cg = sys.argv[1]
limit = int(open(cg + "/memory.max").read())
def working_set():
    cur = int(open(cg + "/memory.current").read())
    stat = dict(line.split() for line in open(cg + "/memory.stat"))
    return cur - int(stat["inactive_file"])
chunks = []
while working_set() < 0.93 * limit:  # steps of 2 MiB: stops below memory.max, no OOM
    chunks.append(bytearray(b"x") * (2 << 20))
print("full", flush=True)
time.sleep(3600)
"""
OOM = "chunks = []\nwhile True:\n    chunks.append(bytearray(b'x') * (1 << 20))\n"
IO = (
    "while true; do dd if=/dev/zero of=/dev/ram0 bs=64k count=16 oflag=direct 2>/dev/null;"
    " dd if=/dev/ram0 of=/dev/null bs=64k count=16 iflag=direct 2>/dev/null; sleep 0.5; done"
)


# --- plumbing ----------------------------------------------------------------------------------
def _write(path: str, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def _spawn(cg: str, argv: list[str]) -> subprocess.Popen[bytes]:
    # The shell joins the cgroup before exec, so the workload never runs outside it.
    line = 'echo $$ > "$0/cgroup.procs" && exec "$@"'
    return subprocess.Popen(
        ["sh", "-c", line, cg, *argv], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )


class AgentThread(threading.Thread):
    """The real collector + exporter + /metrics server on their own event loop."""

    def __init__(self, root: str, info: AgentInfo) -> None:
        super().__init__(daemon=True)
        self.root, self.info = root, info
        self.port = 0
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None

    def run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported by the test
            self.error = exc
            self.ready.set()

    async def _main(self) -> None:
        store = Store()
        collector = Collector(CgroupRoot(self.root), store, interval_s=1.0, slow_every=2)
        exporter = Exporter(store, self.info)
        runner = await serve_metrics(exporter, "127.0.0.1", 0)
        self.port = bound_port(runner)
        self._loop, self._stop_event = asyncio.get_running_loop(), asyncio.Event()
        tasks = [asyncio.create_task(collector.run()), asyncio.create_task(exporter.run())]
        self.ready.set()
        try:
            await self._stop_event.wait()
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await runner.cleanup()
            close = getattr(collector, "close", None)
            if close is not None:
                close()

    def stop(self) -> None:
        if self._loop is not None and self._stop_event is not None:
            self._loop.call_soon_threadsafe(self._stop_event.set)
        self.join(30)


# --- the test ----------------------------------------------------------------------------------
@pytest.fixture
def workload_root(vm_cgroup: str) -> Iterator[str]:
    """burn/hog/oom/io under the scratch cgroup, with their limits; processes killed after."""
    if not os.access(PROMETHEUS, os.X_OK):
        envcheck.unavailable("Debian's prometheus package is not installed")
    with open("/sys/fs/cgroup/cgroup.subtree_control", "w") as f:
        f.write("+io")
    _write(f"{vm_cgroup}/cgroup.subtree_control", "+io")
    if subprocess.run(["modprobe", "brd", "rd_nr=1", "rd_size=16384"]).returncode != 0:
        envcheck.unavailable("no RAM disk (modprobe brd) for the I/O workload")
    for name in WORKLOADS:
        os.mkdir(f"{vm_cgroup}/{name}")
    _write(f"{vm_cgroup}/burn/cpu.max", "20000 100000")  # 0.2 cores: throttled all the time
    _write(f"{vm_cgroup}/burn/pids.max", "64")
    _write(f"{vm_cgroup}/hog/memory.max", str(96 << 20))
    _write(f"{vm_cgroup}/hog/memory.high", str(200 << 20))
    _write(f"{vm_cgroup}/oom/memory.max", str(32 << 20))
    _write(f"{vm_cgroup}/oom/memory.swap.max", "0")
    yield vm_cgroup


def test_dashboards_and_alerts_against_real_prometheus(workload_root: str, tmp_path: Path) -> None:
    root = workload_root
    oom_runs = 0
    # The agent's own footprint, as the daemon's self-monitor reports it (this process here).
    monitor = SelfMonitor(256 << 20, Store(), None, Health())
    info = AgentInfo(
        version="e2e",
        footprint=monitor.values,
        labels=lambda p: {"workload": WORKLOADS[p]} if p in WORKLOADS else {},
        placement_actions=lambda: {("tight", "moved"): 1 + oom_runs},
        workload_states=lambda: {"burn": "running", "hog": "running", "oom": "exited"},
        # The network panels: the real reader on this VM's own namespace (the workloads here
        # share it; a CNI network's is tested in test_network_vm).
        workload_network=lambda: {"burn": read_pid(os.getpid()) or NetIO()},
    )
    agent = AgentThread(root, info)
    procs: list[subprocess.Popen[bytes]] = []
    t0 = time.monotonic()

    def log(msg: str) -> None:  # shown by pytest on failure: where the time went
        print(f"[{time.monotonic() - t0:6.1f} s] {msg}", flush=True)

    agent.start()
    try:
        assert agent.ready.wait(60) and agent.error is None, agent.error
        log("agent up")
        with prometheus_server(tmp_path, agent.port) as prom:
            log("prometheus ready")
            t_start = time.time()
            procs.append(_spawn(f"{root}/burn", [sys.executable, "-c", "while True: pass"]))
            procs.append(_spawn(f"{root}/io", ["sh", "-c", IO]))
            hog = _spawn(f"{root}/hog", [sys.executable, "-c", HOG, f"{root}/hog"])
            procs.append(hog)
            wait_for("Prometheus to scrape the agent", lambda: scraped_up(prom), timeout=60)
            log("first scrape")
            # Two OOM kills: the second one while Prometheus already has the counter.
            for _ in range(2):
                oom = _spawn(f"{root}/oom", [sys.executable, "-c", OOM])
                assert oom.wait(120) == -9, "the OOM workload was not killed"
                oom_runs += 1
                log(f"OOM kill {oom_runs}")
                time.sleep(2)
            assert hog.stdout is not None and hog.stdout.readline() == b"full\n"
            log("hog near its limit")

            def firing() -> set[tuple[str, str]]:
                alerts = prom_api(prom, "/api/v1/alerts")["alerts"]
                return {
                    (a["labels"]["alertname"], a["labels"].get("cgroup", ""))
                    for a in alerts
                    if a["state"] == "firing"
                }

            want = {("PystatsOOMKillFast", "oom"), ("PystatsMemoryNearLimitFast", "hog")}
            wait_for("OOM-kill and memory-near-limit alerts", lambda: want <= firing(), timeout=90)
            log("alerts firing")
            now_firing = {name for name, _ in firing()}
            assert "PystatsAgentDownFast" not in now_firing
            assert "PystatsAgentStaleFast" not in now_firing
            time.sleep(12)  # a full $__rate_interval of data behind every rate()

            # Every rule of both files evaluated, without error.
            groups = prom_api(prom, "/api/v1/rules")["groups"]
            rules = [r for g in groups for r in g["rules"]]
            assert len(rules) == 10
            bad = [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"]
            assert bad == []

            # Every panel query returns data over the test's time range.
            empty = []
            for q in panel_queries():
                expr = substitute(q.expr, VALUES)
                res = prom_api(
                    prom, "/api/v1/query_range", query=expr,
                    start=f"{t_start:.3f}", end=f"{time.time():.3f}", step="2",
                )  # fmt: skip
                if not any(s["values"] for s in res["result"]):
                    empty.append(f"{q.dashboard} / {q.panel} / {q.ref_id}: {expr}")
            assert empty == [], "panels without data:\n" + "\n".join(empty)
            log(f"{len(panel_queries())} panel queries have data")

            # Every template variable offers values (Grafana's label_values()).
            for dash, name, query in variable_queries():
                m = re.fullmatch(r"label_values\((.+), (\w+)\)", query)
                assert m, query
                match = substitute(m.group(1), VALUES)
                values = prom_api(prom, f"/api/v1/label/{m.group(2)}/values", **{"match[]": match})
                assert values, f"{dash} ${name} has no values"
                if name == "workload":
                    assert {"burn", "hog", "oom", "io"} <= set(values)

            # And the values mean what the panels say (the last value of each cgroup's series:
            # a scrape that timed out under emulation makes an instant query miss them).
            def instant(expr: str) -> dict[str, float]:
                end = time.time()
                res = prom_api(
                    prom, "/api/v1/query_range", query=expr,
                    start=f"{end - 30:.3f}", end=f"{end:.3f}", step="1",
                )["result"]  # fmt: skip
                return {r["metric"].get("cgroup", ""): float(r["values"][-1][1]) for r in res}

            health = instant("scrape_duration_seconds")
            failed = prom_api(prom, "/api/v1/query", query="count_over_time((up == 0)[10m:1s])")
            log(f"last scrape took {health}; scrapes failed: {failed['result']}")

            kills = instant('pystats_cgroup_memory_events_total{type="oom_kill"}')
            assert kills["oom"] == 2 and kills["hog"] == 0
            ratio = instant(
                "rate(pystats_cgroup_cpu_throttled_periods_total[10s])"
                " / rate(pystats_cgroup_cpu_periods_total[10s])"
            )
            assert ratio["burn"] > 0.5
            assert instant("pystats_cgroup_cpu_quota_cores")["burn"] == pytest.approx(0.2)
            near = instant(
                "pystats_cgroup_memory_working_set_bytes / pystats_cgroup_memory_limit_bytes"
            )
            assert near["hog"] > 0.9
            io = instant('rate(pystats_cgroup_io_bytes_total{direction="write"}[10s])')
            assert io["io"] > 0
            log("done")
    finally:
        for p in procs:
            with contextlib.suppress(ProcessLookupError):
                p.kill()
            p.wait()
        agent.stop()
