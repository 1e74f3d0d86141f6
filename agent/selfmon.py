"""The agent's own footprint (RSS, CPU, fds) and its memory budget.

Every few seconds it reads /proc/self/statm and os.times(); over the budget it sheds optional
work one step at a time, rather than growing until the OOM killer decides:
  1. memory.stat / io.stat read 4x less often (less CPU, smaller parse garbage);
  2. per-cgroup history cut to a quarter (the live view's sparklines get shorter).
Shedding is not undone automatically: the operator sees ``pystats_agent_shed_level`` and
raises the budget or narrows what is collected.
"""

from __future__ import annotations

import asyncio
import logging
import os

from agent.health import Health
from collectors.collector import Collector
from collectors.store import Store

log = logging.getLogger("pystats.agent")
PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes() -> int:
    with open("/proc/self/statm", "rb") as f:
        return int(f.read().split()[1]) * PAGE


def open_fds() -> int:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return 0


class SelfMonitor:
    def __init__(
        self,
        budget_bytes: int,
        store: Store,
        collector: Collector | None,
        health: Health,
        period_s: float = 5.0,
    ) -> None:
        self.budget = budget_bytes
        self.store = store
        self.collector = collector
        self.health = health
        self.period_s = period_s
        self.rss = rss_bytes()
        self.fds = open_fds()

    def check(self) -> None:
        """One look at the footprint; shed one step when over budget."""
        self.rss = rss_bytes()
        self.fds = open_fds()
        if self.rss <= self.budget or self.health.shed_level >= 2:
            return
        self.health.shed_level += 1
        if self.health.shed_level == 1 and self.collector is not None:
            sampler = self.collector.sampler
            sampler.slow_every = sampler.slow_every * 4
            what = f"memory.stat/io.stat now every {sampler.slow_every} ticks"
        else:  # step 2 (or step 1 without a collector to slow down)
            new_len = max(10, self.store.history_len // 4)
            self.store.set_history_len(new_len)
            what = f"history cut to {new_len} points per cgroup"
        log.warning(
            "RSS %d MiB is over the memory budget of %d MiB: shedding (%s)",
            self.rss >> 20,
            self.budget >> 20,
            what,
        )

    async def run(self) -> None:
        while True:
            await asyncio.to_thread(self.check)
            await asyncio.sleep(self.period_s)

    def values(self) -> dict[str, float]:
        """The footprint for the exporter, keyed as agent.exporter.agentinfo.FOOTPRINT."""
        t = os.times()
        return {
            "resident_memory_bytes": float(self.rss),
            "memory_budget_bytes": float(self.budget),
            "shed_level": float(self.health.shed_level),
            "open_fds": float(self.fds),
            "cpu_seconds_total": t.user + t.system,
        }
