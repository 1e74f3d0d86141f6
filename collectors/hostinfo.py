"""Host figures the formulas need: online CPUs, RAM, and all CPUs' time from /proc/stat
(docker's system usage). /proc is not a cgroup root, so reading it here keeps the layering."""

from __future__ import annotations

import os

from collectors.rates import HostInfo


def host_info(cpus: int | None = None, mem_bytes: int | None = None) -> HostInfo:
    if cpus is None:
        cpus = os.sysconf("SC_NPROCESSORS_ONLN")
    if mem_bytes is None:
        mem_bytes = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return HostInfo(cpus=max(1, cpus), mem_bytes=mem_bytes)


_TICK_USEC = 1e6 / os.sysconf("SC_CLK_TCK")


def parse_proc_stat_cpu(data: bytes) -> float | None:
    """usec of all CPUs' time: docker sums user nice system idle iowait irq softirq."""
    line = data.split(b"\n", 1)[0].split()
    if len(line) < 8 or line[0] != b"cpu":
        return None
    return sum(int(x) for x in line[1:8]) * _TICK_USEC


def system_cpu_usec(path: str = "/proc/stat") -> float | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        return parse_proc_stat_cpu(os.read(fd, 4096))
    except OSError:
        return None
    finally:
        os.close(fd)
