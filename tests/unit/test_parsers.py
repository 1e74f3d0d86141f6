"""Every parser on files captured from real kernels (scripts/capture_fixtures.sh), with the
values the capture script set or provoked, plus the format rules the captures do not show."""

from __future__ import annotations

import glob
import os
from collections.abc import Callable
from typing import Any

import pytest

from cgroupfs import parsers, types
from cgroupfs.errors import ParseError
from cgroupfs.types import UNLIMITED

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(__file__)), "fixtures")
VM = os.path.join(FIXTURES, "kernel-6.1-vm")  # the workload cgroup; VM/parent is its parent
HOSTS = sorted(glob.glob(os.path.join(FIXTURES, "host-*")))
MiB = 1 << 20

PARSERS: dict[str, Callable[[bytes, str], Any]] = {
    "cpu.stat": parsers.parse_cpu_stat,
    "cpu.max": parsers.parse_cpu_max,
    "cpu.weight": parsers.parse_cpu_weight,
    "memory.current": parsers.parse_int,
    "memory.peak": parsers.parse_int,
    "memory.swap.current": parsers.parse_int,
    "pids.current": parsers.parse_int,
    "memory.max": parsers.parse_limit,
    "memory.high": parsers.parse_limit,
    "memory.low": parsers.parse_limit,
    "memory.min": parsers.parse_limit,
    "memory.swap.max": parsers.parse_limit,
    "pids.max": parsers.parse_limit,
    "memory.events": parsers.parse_memory_events,
    "memory.events.local": parsers.parse_memory_events,
    "memory.stat": parsers.parse_memory_stat,
    "pids.events": parsers.parse_pids_events,
    "io.stat": parsers.parse_io_stat,
    "cgroup.events": parsers.parse_cgroup_events,
    "cgroup.stat": parsers.parse_cgroup_stat,
    "cgroup.procs": parsers.parse_procs,
    "cgroup.threads": parsers.parse_procs,
    "cgroup.controllers": parsers.parse_controllers,
    "cgroup.subtree_control": parsers.parse_controllers,
    "cpu.pressure": parsers.parse_pressure,
    "memory.pressure": parsers.parse_pressure,
    "io.pressure": parsers.parse_pressure,
}
RESULT_TYPES: dict[Callable[[bytes, str], Any], type | tuple[type, ...]] = {
    parsers.parse_cpu_stat: types.CpuStat,
    parsers.parse_cpu_max: types.CpuMax,
    parsers.parse_cpu_weight: int,
    parsers.parse_int: int,
    parsers.parse_limit: (int, float),
    parsers.parse_memory_events: types.MemoryEvents,
    parsers.parse_memory_stat: types.MemoryStat,
    parsers.parse_pids_events: types.PidsEvents,
    parsers.parse_io_stat: types.IoStat,
    parsers.parse_cgroup_events: types.CgroupEvents,
    parsers.parse_cgroup_stat: types.CgroupStat,
    parsers.parse_procs: tuple,
    parsers.parse_controllers: frozenset,
    parsers.parse_pressure: types.Pressure,
}


def read(*path: str) -> bytes:
    with open(os.path.join(*path), "rb") as f:
        return f.read()


def parse(directory: str, name: str) -> Any:
    return PARSERS[name](read(directory, name), name)


def capture_info(directory: str) -> dict[str, str]:
    info = {}
    for line in read(directory, "_capture.txt").decode().splitlines():
        key, _, value = line.partition(" ")
        info[key] = value
    return info


def all_fixture_files() -> list[str]:
    return sorted(
        os.path.relpath(os.path.join(d, f), FIXTURES)
        for d, _, files in os.walk(FIXTURES)
        for f in files
        if f in PARSERS
    )


# --- every captured file parses, to the documented type ---------------------------------------


def test_fixtures_exist_for_the_vm_kernel_and_this_host() -> None:
    assert capture_info(VM)["kernel"].startswith("6.1.")
    assert HOSTS, "no host-<uname -r> fixtures: run scripts/capture_fixtures.sh host"
    vm_files = set(os.listdir(VM))
    assert set(PARSERS) <= vm_files, f"VM capture lacks {set(PARSERS) - vm_files}"


@pytest.mark.parametrize("relpath", all_fixture_files())
def test_every_fixture_parses_to_its_type(relpath: str) -> None:
    name = os.path.basename(relpath)
    parser = PARSERS[name]
    value = parser(read(FIXTURES, relpath), name)
    assert isinstance(value, RESULT_TYPES[parser])


# --- the VM's workload cgroup: limits set by the capture script read back ----------------------


def test_vm_limits_read_back() -> None:
    assert parse(VM, "memory.max") == 32 * MiB
    assert parse(VM, "memory.high") == 24 * MiB
    assert parse(VM, "memory.low") == 8 * MiB
    assert parse(VM, "memory.min") == 4 * MiB
    assert parse(VM, "memory.swap.max") == 16 * MiB
    assert parse(VM, "pids.max") == 8
    assert parse(VM, "cpu.weight") == 250
    assert parse(VM, "cpu.max") == types.CpuMax(quota_usec=20000, period_usec=100000)


def test_vm_parent_unlimited_reads_as_inf() -> None:
    parent = os.path.join(VM, "parent")
    for name in ("memory.max", "memory.high", "memory.swap.max", "pids.max"):
        assert parse(parent, name) == UNLIMITED, name
    assert parse(parent, "memory.low") == 0
    cpu_max = parse(parent, "cpu.max")
    assert cpu_max.quota_usec == UNLIMITED and cpu_max.period_usec == 100000
    assert parse(parent, "cpu.weight") == 100


def test_vm_cpu_stat_shows_throttling_under_the_quota() -> None:
    stat = parse(VM, "cpu.stat")
    assert stat.usage_usec is not None and stat.usage_usec > 0
    # The kernel splits usage into user/system by tick ratio: equal up to rounding.
    assert stat.usage_usec == pytest.approx(stat.user_usec + stat.system_usec, abs=10)  # type: ignore[operator]
    assert stat.nr_periods is not None and stat.nr_periods > 0
    assert stat.nr_throttled is not None and 0 < stat.nr_throttled <= stat.nr_periods
    assert stat.throttled_usec is not None and stat.throttled_usec > 0
    assert (stat.nr_bursts, stat.burst_usec) == (0, 0)
    assert stat.nice_usec is None  # 6.1 has no nice_usec


def test_vm_memory_events_count_the_oom_kill() -> None:
    events = parse(VM, "memory.events")
    assert events.oom_kill == 1 and events.oom == 1
    assert events.high is not None and events.high > 0
    assert events.max is not None and events.max > 0
    assert events.oom_group_kill == 0 and events.low == 0
    # No child cgroups with memory: .local equals the hierarchical counts here ...
    assert parse(VM, "memory.events.local") == events
    # ... while the parent's .local is all zero and its hierarchical file sees the child's OOM.
    parent = os.path.join(VM, "parent")
    assert parse(parent, "memory.events.local") == types.MemoryEvents(0, 0, 0, 0, 0, 0)
    assert parse(parent, "memory.events").oom_kill == 1


def test_vm_memory_usage_within_limits() -> None:
    current = parse(VM, "memory.current")
    peak = parse(VM, "memory.peak")
    assert 0 < current <= peak <= 32 * MiB
    assert peak > 24 * MiB  # the allocation went past memory.high before the OOM kill
    assert parse(VM, "memory.swap.current") == 0  # the VM has no swap


def test_vm_memory_stat_named_fields_and_raw() -> None:
    stat = parse(VM, "memory.stat")
    raw = read(VM, "memory.stat")
    assert len(stat.raw) == raw.count(b"\n") == 51
    assert stat.raw["anon"] == stat.anon and stat.raw["file"] == stat.file
    assert stat.raw["pgmajfault"] == stat.pgmajfault
    assert stat.raw["zswap"] == 0  # a key with no named field is still in raw
    for field in types.MemoryStat.__dataclass_fields__:
        if field != "raw":
            assert isinstance(getattr(stat, field), int), f"{field} missing on 6.1"
    assert stat.pgfault is not None and stat.pgfault > 0
    assert stat.active_file + stat.inactive_file <= stat.file  # type: ignore[operator]


def test_vm_io_stat_has_the_loop_device_traffic() -> None:
    io = parse(VM, "io.stat")
    assert [(d.major, d.minor) for d in io.devices] == [(7, 0)]
    assert io.rbytes == 8 * MiB and io.wbytes == 4 * MiB  # the two direct dd runs
    assert (io.rios, io.wios) == (8, 4)
    assert io.devices[0].dbytes == 0


def test_vm_pids_and_processes() -> None:
    procs = parse(VM, "cgroup.procs")
    assert len(procs) == int(capture_info(VM)["processes"]) == parse(VM, "pids.current")
    assert procs == parse(VM, "cgroup.threads")  # single-threaded sh and sleeps
    assert all(pid > 1 for pid in procs)
    assert parse(VM, "pids.events").max >= 1  # forks refused at pids.max


def test_vm_cgroup_files() -> None:
    assert parse(VM, "cgroup.events") == types.CgroupEvents(populated=True, frozen=False)
    assert parse(VM, "cgroup.stat") == types.CgroupStat(nr_descendants=1, nr_dying_descendants=0)
    assert parse(VM, "cgroup.controllers") == {"cpu", "io", "memory", "pids"}
    assert parse(VM, "cgroup.subtree_control") == frozenset()  # empty file
    parent = os.path.join(VM, "parent")
    assert parse(parent, "cgroup.subtree_control") == {"cpu", "io", "memory", "pids"}
    assert parse(parent, "cgroup.stat").nr_descendants == 2
    assert parse(parent, "cgroup.procs") == ()


def test_vm_pressure_after_reclaim_and_throttling() -> None:
    for name in ("cpu.pressure", "memory.pressure", "io.pressure"):
        psi = parse(VM, name)
        assert psi.some is not None and psi.full is not None, name
        assert psi.some.total_usec >= psi.full.total_usec > 0, name
    memory = parse(VM, "memory.pressure")
    assert memory.some.avg60 > 0
    assert read(VM, "memory.pressure").startswith(b"some avg10=%.2f " % memory.some.avg10)


# --- this host's controller-less v2 tree --------------------------------------------------------


@pytest.mark.parametrize("host", HOSTS, ids=os.path.basename)
def test_host_capture(host: str) -> None:
    info = capture_info(host)
    assert parse(host, "cgroup.events") == types.CgroupEvents(populated=True, frozen=True)
    assert len(parse(host, "cgroup.procs")) == int(info["processes"])
    assert parse(host, "cgroup.stat").nr_descendants == int(info["nr_descendants"])
    assert parse(host, "cgroup.controllers") == frozenset()  # hybrid host: no v2 controllers
    cpu = parse(host, "cpu.stat")
    assert cpu.usage_usec is not None and cpu.usage_usec > 500_000  # the 1 s busy loop
    assert cpu.nr_periods is None  # no cpu controller: only the basic keys
    assert cpu.nice_usec is not None  # 6.6+ prints nice_usec
    for name in ("cpu.pressure", "memory.pressure", "io.pressure"):
        assert parse(host, name).full is not None


# --- format rules ------------------------------------------------------------------------------


def test_unknown_keys_are_ignored_and_missing_keys_none() -> None:
    stat = parsers.parse_cpu_stat(b"usage_usec 5\nnew_key 7\nweird_key v1.2\n")
    assert stat == types.CpuStat(usage_usec=5)
    assert parsers.parse_cgroup_stat(b"nr_subsys_cpu 3\n") == types.CgroupStat()


def test_memory_stat_raw_skips_non_numeric_unknown_values() -> None:
    stat = parsers.parse_memory_stat(b"anon 1\nfuture_thing n/a\nfile 2\n")
    assert dict(stat.raw) == {"anon": 1, "file": 2}


def test_duplicate_keys_last_wins() -> None:
    assert parsers.parse_cpu_stat(b"usage_usec 1\nusage_usec 2\n").usage_usec == 2
    assert parsers.parse_memory_stat(b"anon 1\nanon 9\n").raw == {"anon": 9}
    io = parsers.parse_io_stat(b"8:0 rbytes=1\n8:16 rbytes=5\n8:0 rbytes=3\n")
    assert [(d.minor, d.rbytes) for d in io.devices] == [(0, 3), (16, 5)]


def test_procs_dedupes_a_reused_pid_keeping_order() -> None:
    assert parsers.parse_procs(b"30\n10\n30\n20\n10\n") == (30, 10, 20)
    assert parsers.parse_procs(b"") == ()


def test_io_stat_ignores_cost_and_latency_items() -> None:
    line = b"253:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=5 dios=6 cost.vrate=1.5 depth=max\n"
    (dev,) = parsers.parse_io_stat(line).devices
    assert (dev.major, dev.minor, dev.rbytes, dev.dios) == (253, 0, 1, 6)


def test_pressure_without_full_line() -> None:
    psi = parsers.parse_pressure(b"some avg10=1.50 avg60=0.25 avg300=0.00 total=123\n")
    assert psi.full is None
    assert psi.some == types.PressureLine(1.5, 0.25, 0.0, 123)


def test_pressure_huge_values() -> None:
    huge_avg = b"some avg10=" + b"9" * 400 + b".00 avg60=0.00 avg300=0.00 total=1\n"
    with pytest.raises(ParseError, match="too large"):
        parsers.parse_pressure(huge_avg)
    huge_total = b"some avg10=0.00 avg60=0.00 avg300=0.00 total=" + b"9" * 200 + b"\n"
    some = parsers.parse_pressure(huge_total).some
    assert some is not None and some.total_usec == int(b"9" * 200)


@pytest.mark.parametrize(
    ("parser", "data", "message"),
    [
        (parsers.parse_cpu_stat, b"usage_usec\n", "expected 'key value'"),
        (parsers.parse_cpu_stat, b"usage_usec -1\n", "non-negative integer"),
        (parsers.parse_cpu_stat, b"usage_usec 1_000\n", "non-negative integer"),
        (parsers.parse_memory_stat, b"anon 1 2\n", "expected 'key value'"),
        (parsers.parse_memory_stat, b"\xff\xfe 1\n", "non-ASCII key"),
        (parsers.parse_int, b"", "expected one value"),
        (parsers.parse_int, b"1 2\n", "expected one value"),
        (parsers.parse_int, b"max\n", "non-negative integer"),
        (parsers.parse_limit, b"maximum\n", "non-negative integer"),
        (parsers.parse_cpu_max, b"max\n", "QUOTA"),
        (parsers.parse_cpu_max, b"100 0\n", "period is 0"),
        (parsers.parse_cpu_weight, b"0\n", "outside 1..10000"),
        (parsers.parse_cpu_weight, b"10001\n", "outside 1..10000"),
        (parsers.parse_cgroup_events, b"populated 2\n", "expected 0 or 1"),
        (parsers.parse_procs, b"12\nabc\n", "line 2"),
        (parsers.parse_controllers, b"cpu\nmemory\n", "one line"),
        (parsers.parse_controllers, b"cpu mem/ory\n", "bad controller name"),
        (parsers.parse_pressure, b"some avg10=0.00 avg60=0.00 total=1\n", "missing avg300"),
        (parsers.parse_pressure, b"some avg10=nan avg60=0 avg300=0 total=1\n", "decimal"),
        (parsers.parse_pressure, b"full avg10\n", "key=value"),
        (parsers.parse_io_stat, b"8-0 rbytes=1\n", "MAJ:MIN"),
        (parsers.parse_io_stat, b"8:0 rbytes=x\n", "rbytes"),
    ],
)
def test_malformed_input_names_the_file(
    parser: Callable[[bytes, str], Any], data: bytes, message: str
) -> None:
    with pytest.raises(ParseError, match=message) as info:
        parser(data, "/sys/fs/cgroup/x/some.file")
    assert info.value.file == "/sys/fs/cgroup/x/some.file"
    assert str(info.value).startswith("/sys/fs/cgroup/x/some.file: ")


def test_default_file_names_are_the_kernel_names() -> None:
    with pytest.raises(ParseError) as info:
        parsers.parse_memory_stat(b"x")
    assert info.value.file == "memory.stat"
