"""Rates between two samples of the same cgroup, and docker's CPU % / MEM % formulas.

Pure functions: no I/O. A rate exists only when both samples come from the same inode (a
re-created cgroup of the same name restarts its counters) and every counter moved forward (a
counter that went backwards is a reset, not a negative rate).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from cgroupfs.types import CpuMax, Limit
from collectors.sample import CgroupRates, CgroupSample

EMPTY_RATES = CgroupRates()


@dataclass(frozen=True, slots=True)
class HostInfo:
    """What the host contributes to the formulas, fixed for the collector's lifetime."""

    cpus: int  # online CPUs (docker's OnlineCPUs)
    mem_bytes: int  # host RAM: the memory limit when memory.max is "max"


def docker_cpu_percent(
    usage_delta_usec: float, system_delta_usec: float, online_cpus: int
) -> float | None:
    """docker stats' CPU %: (Δ cgroup usage / Δ host usage) x online CPUs x 100.

    ``system_delta_usec`` is the growth of all CPUs' time in /proc/stat over the interval
    (about wall time x CPUs). Over 100 % means more than one core busy.
    """
    if system_delta_usec <= 0 or usage_delta_usec < 0:
        return None
    return usage_delta_usec / system_delta_usec * online_cpus * 100.0


def docker_memory_used(current: int, inactive_file: int | None) -> int:
    """docker's MEM USAGE on cgroup v2: memory.current minus inactive_file when that is smaller."""
    if inactive_file is not None and inactive_file < current:
        return current - inactive_file
    return current


def working_set(current: int, inactive_file: int | None) -> int:
    """cAdvisor's container_memory_working_set_bytes: current - inactive_file, floored at 0."""
    if inactive_file is None:
        return current
    return max(0, current - inactive_file)


def memory_limit(memory_max: Limit | None, host_mem: int) -> int:
    """The limit MEM % divides by: memory.max capped at host RAM (unlimited means host RAM)."""
    if memory_max is None or math.isinf(memory_max) or memory_max > host_mem:
        return host_mem
    return int(memory_max)


def docker_memory_percent(used: int, limit: int) -> float | None:
    return used / limit * 100.0 if limit > 0 else None


def quota_cores(cpu_max: CpuMax | None) -> float | None:
    """cpu.max as a number of cores, None when unlimited or unknown."""
    if cpu_max is None or math.isinf(cpu_max.quota_usec) or cpu_max.period_usec <= 0:
        return None
    return cpu_max.quota_usec / cpu_max.period_usec


def _delta(a: int | None, b: int | None) -> int | None:
    """b - a for a monotonic counter; None when unknown or reset (went backwards)."""
    if a is None or b is None or b < a:
        return None
    return b - a


def compute_rates(
    prev: CgroupSample | None,
    cur: CgroupSample,
    host: HostInfo,
    *,
    prev_rates: CgroupRates | None = None,
    system_delta_usec: float | None = None,
) -> CgroupRates:
    """Rates of ``cur`` against ``prev``; gauges (memory) need only ``cur``.

    ``prev_rates`` carries io rates over ticks where io.stat was not re-read (slow cadence).
    ``system_delta_usec``: Δ host CPU time for docker's CPU %; without it CPU % = cores x 100.
    """
    same = prev is not None and prev.inode == cur.inode and cur.mono > prev.mono
    cores = cpu_pct = quota_pct = thr_pct = None
    rbps = wbps = riops = wiops = None
    if same:
        assert prev is not None
        dt = cur.mono - prev.mono
        pc, cc = prev.cpu, cur.cpu
        if pc is not None and cc is not None:
            du = _delta(pc.usage_usec, cc.usage_usec)
            if du is not None:
                cores = du / 1e6 / dt
                if system_delta_usec is not None:
                    cpu_pct = docker_cpu_percent(du, system_delta_usec, host.cpus)
                else:
                    cpu_pct = cores * 100.0
                q = quota_cores(cur.cpu_max)
                if q is not None and q > 0:
                    quota_pct = cores / q * 100.0
            dp = _delta(pc.nr_periods, cc.nr_periods)
            dthr = _delta(pc.nr_throttled, cc.nr_throttled)
            if dp is not None and dthr is not None:
                thr_pct = dthr / dp * 100.0 if dp > 0 else 0.0
        pio, cio = prev.io, cur.io
        if cio is not None and cur.io_mono is not None and cur.io_mono == prev.io_mono:
            # io.stat not re-read this tick: keep the rates of its last read.
            if prev_rates is not None:
                rbps, wbps = prev_rates.io_read_bps, prev_rates.io_write_bps
                riops, wiops = prev_rates.io_read_iops, prev_rates.io_write_iops
        elif (
            pio is not None
            and cio is not None
            and prev.io_mono is not None
            and cur.io_mono is not None
        ):
            iodt = cur.io_mono - prev.io_mono
            if iodt > 0:
                d = _delta(pio.rbytes, cio.rbytes)
                rbps = d / iodt if d is not None else None
                d = _delta(pio.wbytes, cio.wbytes)
                wbps = d / iodt if d is not None else None
                d = _delta(pio.rios, cio.rios)
                riops = d / iodt if d is not None else None
                d = _delta(pio.wios, cio.wios)
                wiops = d / iodt if d is not None else None

    used = ws = limit = mem_pct = None
    if cur.memory_current is not None:
        inactive = cur.memory_stat.inactive_file if cur.memory_stat is not None else None
        used = docker_memory_used(cur.memory_current, inactive)
        ws = working_set(cur.memory_current, inactive)
        limit = memory_limit(cur.memory_max, host.mem_bytes)
        mem_pct = docker_memory_percent(used, limit)
    if cores is None and used is None and rbps is None and thr_pct is None:
        return EMPTY_RATES
    return CgroupRates(
        cpu_cores=cores,
        cpu_percent=cpu_pct,
        cpu_quota_percent=quota_pct,
        throttled_percent=thr_pct,
        io_read_bps=rbps,
        io_write_bps=wbps,
        io_read_iops=riops,
        io_write_iops=wiops,
        memory_used=used,
        working_set=ws,
        memory_limit=limit,
        memory_percent=mem_pct,
    )
