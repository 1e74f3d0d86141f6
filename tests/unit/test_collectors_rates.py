"""Rates between samples: same inode only, counter resets, docker's CPU % and MEM % formulas."""

from __future__ import annotations

import pytest

from cgroupfs.types import UNLIMITED, CpuMax, CpuStat, IoDeviceStat, IoStat, MemoryStat
from collectors.rates import (
    EMPTY_RATES,
    HostInfo,
    compute_rates,
    docker_cpu_percent,
    docker_memory_percent,
    docker_memory_used,
    memory_limit,
    working_set,
)
from collectors.sample import CgroupSample

HOST = HostInfo(cpus=4, mem_bytes=8 << 30)


def s(
    mono: float,
    usage: int | None = None,
    *,
    inode: int = 7,
    periods: int | None = None,
    throttled: int | None = None,
    **kw: object,
) -> CgroupSample:
    cpu = CpuStat(usage_usec=usage, nr_periods=periods, nr_throttled=throttled)
    return CgroupSample("a", inode, mono, 1000.0 + mono, cpu=cpu, **kw)  # type: ignore[arg-type]


def test_first_sample_has_no_rate() -> None:
    r = compute_rates(None, s(1.0, 5_000_000), HOST)
    assert r.cpu_cores is None and r.cpu_percent is None and r.throttled_percent is None


def test_cores_between_samples_of_same_inode() -> None:
    r = compute_rates(s(1.0, 1_000_000), s(3.0, 2_000_000), HOST)
    assert r.cpu_cores == pytest.approx(0.5)
    assert r.cpu_percent == pytest.approx(50.0)  # no host delta given: cores x 100


def test_inode_change_gives_no_rate() -> None:
    # A re-created cgroup of the same name starts its counters at 0: no negative/bogus rate.
    r = compute_rates(s(1.0, 9_000_000, inode=7), s(2.0, 100, inode=8), HOST)
    assert r.cpu_cores is None


def test_counter_reset_gives_no_rate() -> None:
    r = compute_rates(s(1.0, 9_000_000), s(2.0, 100), HOST)
    assert r.cpu_cores is None


def test_same_time_gives_no_rate() -> None:
    assert compute_rates(s(1.0, 1), s(1.0, 2), HOST).cpu_cores is None


def test_docker_cpu_percent_known_inputs() -> None:
    # docker/cli calculateCPUPercentUnix: (cpuDelta / systemDelta) * onlineCPUs * 100.
    # 0.5 s of CPU over 1 s on a 4-CPU host (system delta 4 s): 50 %.
    assert docker_cpu_percent(500_000, 4_000_000, 4) == pytest.approx(50.0)
    # Two cores busy: 200 %, above 100 as docker shows it.
    assert docker_cpu_percent(2_000_000, 4_000_000, 4) == pytest.approx(200.0)
    assert docker_cpu_percent(10, 0, 4) is None
    r = compute_rates(s(1.0, 0), s(2.0, 1_500_000), HOST, system_delta_usec=4_000_000)
    assert r.cpu_percent == pytest.approx(150.0)


def test_docker_memory_formulas_known_inputs() -> None:
    # MEM USAGE = current - inactive_file when smaller; working set floors at 0.
    assert docker_memory_used(100 << 20, 30 << 20) == 70 << 20
    assert docker_memory_used(100 << 20, 200 << 20) == 100 << 20
    assert docker_memory_used(100 << 20, None) == 100 << 20
    assert working_set(100 << 20, 200 << 20) == 0
    assert working_set(100 << 20, 30 << 20) == 70 << 20
    # limit = memory.max capped at host RAM; "max" means host RAM.
    assert memory_limit(UNLIMITED, 8 << 30) == 8 << 30
    assert memory_limit(16 << 30, 8 << 30) == 8 << 30
    assert memory_limit(256 << 20, 8 << 30) == 256 << 20
    assert docker_memory_percent(64 << 20, 256 << 20) == pytest.approx(25.0)
    ms = MemoryStat(inactive_file=32 << 20)
    r = compute_rates(
        None, s(1.0, memory_current=96 << 20, memory_max=256 << 20, memory_stat=ms), HOST
    )
    assert r.memory_used == 64 << 20
    assert r.memory_percent == pytest.approx(25.0)
    r = compute_rates(None, s(1.0, memory_current=1 << 30, memory_max=UNLIMITED), HOST)
    assert r.memory_limit == 8 << 30 and r.memory_percent == pytest.approx(12.5)


def test_hybrid_sample_without_memory_has_none_not_zero() -> None:
    r = compute_rates(s(1.0, 0), s(2.0, 10), HOST)
    assert r.memory_used is None and r.memory_percent is None and r.io_read_bps is None


def test_quota_and_throttling() -> None:
    q = CpuMax(50_000, 100_000)
    a = s(0.0, 0, periods=100, throttled=0, cpu_max=q)
    b = s(2.0, 1_000_000, periods=120, throttled=15, cpu_max=q)
    r = compute_rates(a, b, HOST)
    assert r.cpu_cores == pytest.approx(0.5)
    assert r.cpu_quota_percent == pytest.approx(100.0)
    assert r.throttled_percent == pytest.approx(75.0)
    unlimited = compute_rates(
        a, s(2.0, 1, periods=100, throttled=0, cpu_max=CpuMax(UNLIMITED, 100_000)), HOST
    )
    assert unlimited.cpu_quota_percent is None
    assert unlimited.throttled_percent == 0.0  # no period ran: nothing throttled


def test_io_rates_and_slow_cadence_carry_over() -> None:
    def io(rb: int, wb: int) -> IoStat:
        return IoStat((IoDeviceStat(8, 0, rbytes=rb, wbytes=wb, rios=rb // 4096, wios=0),))

    a = s(0.0, 0, io=io(0, 0), io_mono=0.0)
    b = s(10.0, 0, io=io(40960, 1000), io_mono=10.0)
    r = compute_rates(a, b, HOST)
    assert r.io_read_bps == pytest.approx(4096.0)
    assert r.io_write_bps == pytest.approx(100.0)
    assert r.io_read_iops == pytest.approx(1.0)
    # Next tick io.stat was not re-read (same io_mono): the last io rates carry over.
    c = s(11.0, 0, io=b.io, io_mono=10.0)
    assert compute_rates(b, c, HOST, prev_rates=r).io_read_bps == pytest.approx(4096.0)
    # A reset io counter gives no rate rather than a negative one.
    d = s(20.0, 0, io=io(0, 0), io_mono=20.0)
    assert compute_rates(c, d, HOST).io_read_bps is None


def test_nothing_known_returns_shared_empty_rates() -> None:
    assert compute_rates(None, CgroupSample("x", 1, 0.0, 0.0), HOST) is EMPTY_RATES
