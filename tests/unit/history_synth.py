"""Synthetic store ticks for the recorder's tests and benchmark: every field a real v2 host
fills (cpu.stat, PSI, memory.events, a 6.1 kernel's memory.stat keys, io.stat), busy or idle.

Busy cgroups move like loaded ones: CPU counters by ~0.5 core with jitter, memory by a random
walk, PSI totals and averages, memory.stat (on the slow cadence, staggered) and io.stat.
Idle ones are re-read every 5th tick and repeat their values, as the sampler does.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from cgroupfs.parsers import parse_memory_stat
from cgroupfs.types import (
    CgroupEvents,
    CgroupStat,
    CpuMax,
    CpuStat,
    IoDeviceStat,
    IoStat,
    MemoryEvents,
    MemoryStat,
    Pressure,
    PressureLine,
)
from collectors.rates import HostInfo, compute_rates
from collectors.recorder.codec import TickEntry, TickInput
from collectors.sample import CgroupRates, CgroupSample

HOST = HostInfo(cpus=8, mem_bytes=32 << 30)
_MS = Path(__file__).resolve().parents[1] / "fixtures" / "kernel-6.1-vm" / "memory.stat"
MEMSTAT = parse_memory_stat(_MS.read_bytes())


def _psi(avg: tuple[float, float, float], total: int) -> Pressure:
    a10, a60, a300 = (round(a, 2) for a in avg)
    line = PressureLine(a10, a60, a300, total)
    return Pressure(
        line, PressureLine(round(a10 / 2, 2), round(a60 / 2, 2), round(a300 / 2, 2), total // 2)
    )


@dataclass
class _Cg:
    path: str
    inode: int
    busy: bool
    usage: int = 0
    mem: int = 64 << 20
    psi: int = 0
    avg: tuple[float, float, float] = (0.0, 0.0, 0.0)
    io: int = 0
    sample: CgroupSample | None = None
    rates: CgroupRates = field(default_factory=CgroupRates)
    first_seen: float = 0.0


class SyntheticHost:
    def __init__(
        self,
        n: int,
        busy_share: float = 1.0,
        seed: int = 1,
        slow_every: int = 10,
        start_wall: float | None = None,
    ) -> None:
        """``start_wall``: the first tick's wall clock (default: an hour ago, within any
        retention)."""
        self.rng = random.Random(seed)
        self.slow_every = slow_every
        self.tick = 0
        self.mono = 1000.0
        self.wall = time.time() - 3600 if start_wall is None else start_wall
        self.cgs: list[_Cg] = []
        for i in range(n):
            path = f"workloads/w{i // 50}/c{i}"
            self.cgs.append(_Cg(path, 10_000 + i, i < n * busy_share, first_seen=self.wall))

    def _sample(self, c: _Cg, mono: float, slow: bool) -> CgroupSample:
        rng = self.rng
        prev = c.sample
        if c.busy:
            c.usage += int(rng.gauss(500_000, 50_000))
            c.mem = max(1 << 20, c.mem + int(rng.gauss(0, 256 << 10)) // 4096 * 4096)
            stall = rng.randrange(0, 20_000)  # µs stalled this second: 0-2 %
            c.psi += stall
            if self.tick % 2 == 0:  # the kernel recomputes PSI averages every 2 s
                share = stall / 1e4
                a10, a60, a300 = c.avg
                c.avg = (a10 + (share - a10) * 0.18, a60 + (share - a60) * 0.033,
                         a300 + (share - a300) * 0.0066)  # fmt: skip
        ms = MEMSTAT
        io = IoStat((IoDeviceStat(8, 0, c.io * 4096, c.io * 8192, c.io, c.io * 2),))
        if prev is not None and not slow:
            ms, io = prev.memory_stat or ms, prev.io or io
            ms_mono, io_mono = prev.memory_stat_mono, prev.io_mono
        else:
            if c.busy:
                c.io += rng.randrange(0, 200)
                raw = {k: v + rng.randrange(0, 4096) * (k in _MOVING) for k, v in ms.raw.items()}
                raw["anon"] = c.mem // 2
                ms = replace(parse_memory_stat(b""), **_named(raw), raw=raw)
                io = IoStat((IoDeviceStat(8, 0, c.io * 4096, c.io * 8192, c.io, c.io * 2),))
            ms_mono = io_mono = mono
        user = c.usage * 7 // 10
        return CgroupSample(
            path=c.path,
            inode=c.inode,
            mono=mono,
            wall=mono + (self.wall - self.mono),
            cpu=CpuStat(c.usage, user, c.usage - user, 0, 0, 0, 0, 0, 0),
            cpu_max=CpuMax(float("inf"), 100_000),
            cpu_weight=100,
            memory_current=c.mem,
            memory_peak=max(c.mem, prev.memory_peak or 0) if prev else c.mem,
            memory_max=float("inf"),
            memory_high=float("inf"),
            memory_low=0,
            memory_min=0,
            swap_current=0,
            swap_max=float("inf"),
            memory_events=MemoryEvents(0, 0, 0, 0, 0, 0),
            memory_events_local=MemoryEvents(0, 0, 0, 0, 0, 0),
            memory_stat=ms,
            memory_stat_mono=ms_mono,
            pids_current=3 if c.busy else 0,
            pids_max=float("inf"),
            io=io,
            io_mono=io_mono,
            cpu_pressure=_psi(c.avg, c.psi),
            memory_pressure=_psi(c.avg, c.psi // 3),
            io_pressure=_psi(c.avg, c.psi // 5),
            events=CgroupEvents(c.busy, False),
            stat=CgroupStat(0, 0),
        )

    def next_tick(self) -> TickInput:
        self.tick += 1
        self.mono += 1.0
        rng = self.rng
        entries = []
        for k, c in enumerate(self.cgs):
            due = c.busy or c.sample is None or self.tick % 5 == 0
            if due:
                mono = self.mono + rng.uniform(0, 0.02)
                slow = c.sample is None or (self.tick + k) % self.slow_every == 0
                s = self._sample(c, mono, slow)
                c.rates = compute_rates(c.sample, s, HOST, prev_rates=c.rates)
                c.sample = s
            assert c.sample is not None
            entries.append(TickEntry(c.path, c.sample, c.rates, False, not due, c.first_seen))
        return TickInput(self.mono + 0.05, self.mono + 0.05 + (self.wall - 1000.0), entries, HOST)


_MOVING = {"anon", "file", "active_anon", "inactive_anon", "pgfault", "slab", "kernel"}


def _named(raw: dict[str, int]) -> dict[str, int | None]:
    names = ("anon", "file", "kernel", "kernel_stack", "slab", "sock", "shmem", "file_mapped",
             "file_dirty", "file_writeback", "inactive_anon", "active_anon", "inactive_file",
             "active_file", "pgfault", "pgmajfault")  # fmt: skip
    return {k: raw.get(k) for k in names}


def ms_type_check(m: MemoryStat) -> MemoryStat:
    return m
