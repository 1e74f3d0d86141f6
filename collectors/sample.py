"""What one tick learns about one cgroup, and the rates derived from two such samples.

Every field is ``None`` when it is unavailable (controller absent, file missing on a hybrid
host, slow-cadence file not read yet): consumers show "unavailable", never zero.
"""

from __future__ import annotations

from dataclasses import dataclass

from cgroupfs.types import (
    CgroupEvents,
    CgroupStat,
    CpuMax,
    CpuStat,
    IoStat,
    Limit,
    MemoryEvents,
    MemoryStat,
    Pressure,
)


@dataclass(frozen=True, slots=True)
class CgroupSample:
    path: str  # relative to the collector's root, "/"-separated; "" is the root itself
    inode: int  # identity: rates only between samples of the same inode
    mono: float  # time.monotonic() of the read
    wall: float  # time.time() of the read
    cpu: CpuStat | None = None
    cpu_max: CpuMax | None = None
    cpu_weight: int | None = None
    memory_current: int | None = None
    memory_peak: int | None = None
    memory_max: Limit | None = None
    memory_high: Limit | None = None
    memory_low: int | None = None
    memory_min: int | None = None
    swap_current: int | None = None
    swap_max: Limit | None = None
    memory_events: MemoryEvents | None = None
    memory_events_local: MemoryEvents | None = None
    memory_stat: MemoryStat | None = None  # slow cadence: the latest read, see memory_stat_mono
    memory_stat_mono: float | None = None
    pids_current: int | None = None
    pids_max: Limit | None = None
    io: IoStat | None = None  # slow cadence, like memory_stat
    io_mono: float | None = None
    cpu_pressure: Pressure | None = None
    memory_pressure: Pressure | None = None
    io_pressure: Pressure | None = None
    events: CgroupEvents | None = None
    stat: CgroupStat | None = None
    final: bool = False  # the last sample of a cgroup that vanished or emptied


@dataclass(frozen=True, slots=True)
class CgroupRates:
    """Rates between two samples of the same inode; None where either side lacks the data."""

    cpu_cores: float | None = None  # CPU time per wall second (1.0 = one core busy)
    cpu_percent: float | None = None  # docker stats' CPU %: can exceed 100 on several cores
    cpu_quota_percent: float | None = None  # cores / (quota/period) * 100, when cpu.max is set
    throttled_percent: float | None = None  # nr_throttled / nr_periods over the interval * 100
    io_read_bps: float | None = None
    io_write_bps: float | None = None
    io_read_iops: float | None = None
    io_write_iops: float | None = None
    memory_used: int | None = None  # docker's MEM USAGE: current - inactive_file (when smaller)
    working_set: int | None = None  # cAdvisor's: current - inactive_file, floored at 0
    memory_limit: int | None = None  # memory.max, or host RAM when unlimited
    memory_percent: float | None = None  # memory_used / memory_limit * 100


@dataclass(frozen=True, slots=True)
class OomEvent:
    cgroup: str
    wall: float
    count: int  # how many oom_kill increments this event stands for
    total: int  # the cgroup's oom_kill counter after it
    pid: int | None = None  # victim, where the kernel log told us
    comm: str | None = None

    def what(self) -> str:
        """ "OOM kill x2: killed PID 412 (python3)", as the agent's log and the live view say it."""
        times = f" x{self.count}" if self.count > 1 else ""
        if self.pid is None:
            return f"OOM kill{times}"
        return f"OOM kill{times}: killed PID {self.pid}" + (f" ({self.comm})" if self.comm else "")
