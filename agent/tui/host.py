"""Host CPU and memory for the header (psutil; no cgroup files involved)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class HostStats:
    cpu_percent: float | None  # all CPUs, 0-100
    mem_used: int | None
    mem_total: int | None
    cpus: int | None


def read_host() -> HostStats:
    import psutil

    vm = psutil.virtual_memory()
    # interval=None: since the previous call, so it never blocks the event loop.
    return HostStats(
        psutil.cpu_percent(interval=None), vm.total - vm.available, vm.total, psutil.cpu_count()
    )
