"""Deterministic stores for tests, snapshots and the TUI benchmark (no cgroupfs involved)."""

from __future__ import annotations

import random
import zlib

from cgroupfs.types import (
    CgroupEvents,
    CgroupStat,
    CpuMax,
    CpuStat,
    IoDeviceStat,
    IoStat,
    MemoryEvents,
    Pressure,
    PressureLine,
)
from collectors.sample import CgroupRates, CgroupSample, OomEvent
from collectors.store import Store

GiB = 1 << 30
MiB = 1 << 20
T0 = 1_764_000_000.0  # a fixed wall clock (2025-11-24) so snapshots never change


def _psi(avg10: float) -> Pressure:
    return Pressure(some=PressureLine(avg10, avg10 / 2, avg10 / 4, int(avg10 * 1e5)))


def sample(
    path: str,
    tick: int,
    *,
    cores: float | None = 0.0,
    mem: int | None = 0,
    mem_max: float | None = None,
    quota: float | None = None,
    pids: int | None = 1,
    populated: bool = True,
    oom_kill: int = 0,
    psi: float = 0.0,
    throttled: float | None = None,
    io: tuple[float, float] = (0.0, 0.0),
    frozen: bool = False,
    host_ram: int = 16 * GiB,
) -> tuple[CgroupSample, CgroupRates]:
    """One tick's sample and rates for ``path``; None values stand for a missing controller."""
    mono = 1000.0 + tick
    usage = None if cores is None else int(cores * 1e6 * (tick + 1))
    # Controllers present (mem is not None): cpu.max exists, "max" unless a quota is given.
    cpu_max = None if mem is None else CpuMax(float("inf"), 100_000)
    if quota is not None:
        cpu_max = CpuMax(int(quota * 100_000), 100_000)
    s = CgroupSample(
        path=path,
        inode=zlib.crc32(path.encode()),
        mono=mono,
        wall=T0 + tick,
        cpu=None if usage is None else CpuStat(usage_usec=usage, nr_periods=100, nr_throttled=0),
        cpu_max=cpu_max,
        memory_current=mem,
        memory_peak=None if mem is None else mem + 10 * MiB,
        memory_max=mem_max,
        memory_high=None if mem is None else float("inf"),
        memory_events=None if mem is None else MemoryEvents(0, 0, oom_kill, oom_kill, oom_kill, 0),
        pids_current=pids,
        pids_max=None if pids is None else float("inf"),
        # A hybrid host's v2 tree has no memory and no io controller: both unavailable.
        io=None
        if mem is None
        else IoStat((IoDeviceStat(8, 0, rbytes=int(io[0] * 100), wbytes=int(io[1] * 100)),)),
        cpu_pressure=_psi(psi / 2),
        memory_pressure=_psi(psi),
        io_pressure=_psi(0.0),
        events=CgroupEvents(populated=populated, frozen=frozen),
        stat=CgroupStat(nr_descendants=0),
    )
    limit = None
    if mem is not None:
        limit = int(min(mem_max if mem_max is not None else host_ram, host_ram))
    used = None if mem is None else max(0, mem - 5 * MiB)
    r = CgroupRates(
        cpu_cores=cores,
        cpu_percent=None if cores is None else cores * 100,
        cpu_quota_percent=None if (quota is None or cores is None) else cores / quota * 100,
        throttled_percent=throttled if quota is not None else None,
        io_read_bps=None if mem is None else io[0],
        io_write_bps=None if mem is None else io[1],
        memory_used=used,
        working_set=used,
        memory_limit=limit,
        memory_percent=None if (used is None or not limit) else used / limit * 100,
    )
    return s, r


def demo_store(ticks: int = 30) -> Store:
    """A small, hand-made tree with every case the view must show."""
    store = Store(history_len=120)
    for t in range(ticks):
        wobble = (t % 5) / 10
        samples = [
            sample("", t, cores=1.5 + wobble, mem=None, pids=220),
            sample("system.slice", t, cores=0.4, mem=900 * MiB, pids=60),
            sample("system.slice/sshd.service", t, cores=0.01, mem=12 * MiB, pids=3),
            sample(
                "system.slice/postgres.service",
                t,
                cores=0.38 + wobble / 10,
                mem=880 * MiB,
                pids=57,
                psi=12.5,
                io=(2e6, 5e5),
            ),
            sample("system.slice/old.service", t, cores=0.0, mem=0, pids=0, populated=False),
            sample("pystats.slice", t, cores=1.1 + wobble, mem=1400 * MiB, pids=30, oom_kill=2),
            sample(
                "pystats.slice/web",
                t,
                cores=0.95 + wobble,
                mem=400 * MiB,
                mem_max=512 * MiB,
                quota=1.0,
                pids=25,
                throttled=31.0,
            ),
            sample(
                "pystats.slice/batch",
                t,
                cores=0.15,
                mem=1000 * MiB,
                mem_max=1024 * MiB,
                pids=5,
                oom_kill=2,
                psi=45.0,
            ),
            sample("hybrid.slice", t, cores=0.05, mem=None, pids=None),
        ]
        oom = [OomEvent("pystats.slice/batch", T0 + t, 1, t // 10, 4200 + t, "python3")]
        store.publish(samples, oom=oom if t in (10, 20) else (), duration_s=0.001)
    return store


def big_store(n: int = 2000, ticks: int = 2, seed: int = 7) -> Store:
    """``n`` cgroups in slices of 100 services, values drawn from a seeded RNG."""
    rng = random.Random(seed)
    store = Store(history_len=600)
    paths = []
    for i in range(n):
        slice_no, svc = divmod(i, 100)
        paths.append(
            f"slice-{slice_no:02d}.slice"
            if svc == 0
            else f"slice-{slice_no:02d}.slice/svc-{svc:03d}.service"
        )
    for t in range(ticks):
        store.publish(
            [
                sample(
                    p,
                    t,
                    cores=rng.random() * 2,
                    mem=rng.randrange(1, 2000) * MiB,
                    pids=rng.randrange(1, 50),
                    psi=rng.random() * 20,
                )
                for p in paths
            ]
        )
    return store


def tick_big_store(store: Store, tick: int, seed: int = 7) -> None:
    """One more 1 Hz tick of a big_store: every cgroup gets new values."""
    rng = random.Random(seed * 1000 + tick)
    store.publish(
        [
            sample(
                p,
                tick,
                cores=rng.random() * 2,
                mem=rng.randrange(1, 2000) * MiB,
                pids=rng.randrange(1, 50),
                psi=rng.random() * 20,
            )
            for p in list(store.entries)
        ]
    )
