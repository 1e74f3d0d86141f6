"""Each running workload's network counters for the exporter (AgentInfo.workload_network):
read from /proc/<pid>/net/dev of its init (collectors.netdev), for workloads with a network
namespace of their own (not --net host: those would show the host's interfaces)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from collectors.netdev import NetIO, read_pid
from workloads.lifecycle.manager import WorkloadManager
from workloads.supervisor.record import State

CACHE_S = 0.5  # one scrape asks once per metric family: read /proc once


def workload_network(manager: WorkloadManager) -> Callable[[], Mapping[str, NetIO]]:
    cache: list[tuple[float, dict[str, NetIO]]] = []

    def get() -> Mapping[str, NetIO]:
        now = time.monotonic()
        if cache and now - cache[0][0] < CACHE_S:
            return cache[0][1]
        out: dict[str, NetIO] = {}
        for name, st in manager.states().items():
            if st is not State.RUNNING:
                continue
            info = manager.inspect(name)
            pid = info.get("pid")
            if info.get("net") == "host" or not isinstance(pid, int):
                continue
            io = read_pid(pid)
            if io is not None:
                out[name] = io
        cache[:] = [(now, out)]
        return out

    return get
