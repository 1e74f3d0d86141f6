"""Typed values of cgroup v2 interface files.

Field names keep the kernel's keys. A field is ``None`` when the kernel did not print that key
(older kernels, missing controller); unknown keys are ignored by the parsers.
Limits use ``math.inf`` for the kernel's ``max`` (unlimited), so that comparisons and
Prometheus' +Inf work without special cases.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

# Defined with the unit parsers (a light module the CLI imports without these records).
from cgroupfs.units import UNLIMITED as UNLIMITED
from cgroupfs.units import Limit as Limit


@dataclass(frozen=True, slots=True)
class CpuStat:
    usage_usec: int | None = None
    user_usec: int | None = None
    system_usec: int | None = None
    nr_periods: int | None = None
    nr_throttled: int | None = None
    throttled_usec: int | None = None
    nr_bursts: int | None = None
    burst_usec: int | None = None
    nice_usec: int | None = None  # 6.6+ (appended: positional construction stays valid)


@dataclass(frozen=True, slots=True)
class CpuMax:
    quota_usec: Limit  # UNLIMITED for "max"
    period_usec: int


@dataclass(frozen=True, slots=True)
class MemoryEvents:
    """memory.events or memory.events.local."""

    low: int | None = None
    high: int | None = None
    max: int | None = None
    oom: int | None = None
    oom_kill: int | None = None
    oom_group_kill: int | None = None


@dataclass(frozen=True, slots=True)
class MemoryStat:
    """memory.stat: the fields pystats uses by name, and every key in ``raw``."""

    anon: int | None = None
    file: int | None = None
    kernel: int | None = None
    kernel_stack: int | None = None
    slab: int | None = None
    sock: int | None = None
    shmem: int | None = None
    file_mapped: int | None = None
    file_dirty: int | None = None
    file_writeback: int | None = None
    inactive_anon: int | None = None
    active_anon: int | None = None
    inactive_file: int | None = None
    active_file: int | None = None
    pgfault: int | None = None
    pgmajfault: int | None = None
    raw: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PidsEvents:
    max: int | None = None


@dataclass(frozen=True, slots=True)
class IoDeviceStat:
    major: int
    minor: int
    rbytes: int = 0
    wbytes: int = 0
    rios: int = 0
    wios: int = 0
    dbytes: int = 0
    dios: int = 0


@dataclass(frozen=True, slots=True)
class IoStat:
    devices: tuple[IoDeviceStat, ...] = ()

    @property
    def rbytes(self) -> int:
        return sum(d.rbytes for d in self.devices)

    @property
    def wbytes(self) -> int:
        return sum(d.wbytes for d in self.devices)

    @property
    def rios(self) -> int:
        return sum(d.rios for d in self.devices)

    @property
    def wios(self) -> int:
        return sum(d.wios for d in self.devices)


@dataclass(frozen=True, slots=True)
class PressureLine:
    avg10: float
    avg60: float
    avg300: float
    total_usec: int


@dataclass(frozen=True, slots=True)
class Pressure:
    """cpu.pressure / memory.pressure / io.pressure. ``full`` is None where the kernel has none."""

    some: PressureLine | None = None
    full: PressureLine | None = None


@dataclass(frozen=True, slots=True)
class CgroupEvents:
    populated: bool | None = None
    frozen: bool | None = None


@dataclass(frozen=True, slots=True)
class CgroupStat:
    nr_descendants: int | None = None
    nr_dying_descendants: int | None = None
