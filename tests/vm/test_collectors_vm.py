"""Collectors on the VM's real cgroup v2 with controllers: quota and throttling, one OOM event
per kill, and churn without leaks. Under TCG Python runs ~10x slower, so the churn test runs
10 s instead of the issue's 30 s, and rate bounds are loose."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import subprocess
import threading
import time
from collections.abc import Iterator

import pytest

from cgroupfs.paths import CgroupRoot
from collectors.collector import Collector
from collectors.store import Store

pytestmark = pytest.mark.vm


def write(path: str, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def spawn_in(cgroup: str, cmd: str) -> subprocess.Popen[bytes]:
    """Start ``cmd`` already inside ``cgroup`` (it moves itself before exec)."""
    procs = os.path.join(cgroup, "cgroup.procs")
    return subprocess.Popen(["sh", "-c", f"echo $$ > {procs} && exec {cmd}"])


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture
def burner(vm_cgroup: str) -> Iterator[str]:
    path = os.path.join(vm_cgroup, "burn")
    os.mkdir(path)
    write(os.path.join(path, "cpu.max"), "50000 100000")
    proc = spawn_in(path, "sh -c 'while :; do :; done'")
    try:
        yield path
    finally:
        proc.kill()
        proc.wait()


def test_cpu_max_half_core_shows_half_core_and_throttling(vm_cgroup: str, burner: str) -> None:
    store = Store()
    c = Collector(CgroupRoot(vm_cgroup), store)
    try:
        time.sleep(0.5)  # let the burner settle into its cgroup
        c.tick_sync()
        time.sleep(3.0)
        c.tick_sync()
    finally:
        c.close()
    e = store.entries["burn"]
    r, s = e.rates, e.sample
    assert s.cpu_max is not None and s.cpu_max.quota_usec == 50000
    assert r.cpu_cores is not None and 0.3 < r.cpu_cores < 0.65, r
    assert r.cpu_quota_percent is not None and 60 < r.cpu_quota_percent < 130, r
    assert r.throttled_percent is not None and r.throttled_percent > 20, r
    assert s.cpu is not None and s.cpu.nr_throttled and s.cpu.throttled_usec
    # The full file set is there on a real v2 host.
    assert s.memory_current is not None and s.memory_stat is not None
    assert s.pids_current is not None and s.pids_current >= 1
    assert s.memory_pressure is not None and s.events is not None and s.events.populated
    assert r.memory_percent is not None and r.memory_limit is not None
    assert store.stats.errors == {}


async def test_oom_kill_is_exactly_one_event_for_its_cgroup(vm_cgroup: str) -> None:
    path = os.path.join(vm_cgroup, "oom")
    os.mkdir(path)
    write(os.path.join(path, "memory.max"), str(16 << 20))
    with contextlib.suppress(OSError):
        write(os.path.join(path, "memory.swap.max"), "0")
    store = Store()
    c = Collector(CgroupRoot(vm_cgroup), store, interval_s=1.0)
    task = asyncio.create_task(c.run())
    try:
        await asyncio.wait_for(store.wait_tick(), 30)
        proc = spawn_in(path, "dd if=/dev/zero of=/dev/null bs=64M count=1")
        rc = await asyncio.to_thread(proc.wait)
        assert rc != 0  # killed (137 from sh, or -9)
        for _ in range(3):
            await asyncio.wait_for(store.wait_tick(), 30)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        c.close()
    events = store.oom_events()
    print("OOM events:", events)  # shows whether /dev/kmsg named the victim (-s)
    assert [(ev.cgroup, ev.count) for ev in events] == [("oom", 1)], events
    ev = events[0]
    assert ev.total == 1
    if ev.comm is not None:  # named from /dev/kmsg where readable
        assert ev.comm == "dd" and ev.pid == proc.pid
    me = store.entries["oom"].sample.memory_events
    assert me is not None and me.oom_kill == 1
    parent = store.entries[""].sample.memory_events
    assert parent is not None and parent.oom_kill == 1  # hierarchical, but no event of its own


async def test_churn_no_leaked_fds_no_error_but_gone(vm_cgroup: str) -> None:
    store = Store(gone_ttl_ticks=2)
    fds0 = fd_count()
    c = Collector(CgroupRoot(vm_cgroup), store, interval_s=0.2)
    stop = threading.Event()
    made: list[str] = []

    def churn() -> None:
        rnd = random.Random(7)
        while not stop.is_set():
            name = os.path.join(vm_cgroup, f"c{rnd.randrange(20)}")
            if os.path.isdir(name):
                with contextlib.suppress(OSError):
                    os.rmdir(name)
            else:
                with contextlib.suppress(OSError):
                    os.mkdir(name)
                    made.append(name)
            time.sleep(0.005)

    th = threading.Thread(target=churn)
    task = asyncio.create_task(c.run())
    th.start()
    try:
        await asyncio.sleep(10.0)  # 30 s in the issue; TCG makes every tick ~10x slower
    finally:
        stop.set()
        await asyncio.to_thread(th.join)
        for _ in range(2):
            await asyncio.wait_for(store.wait_tick(), 30)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    ticks = store.stats.ticks
    kept = set(c.reader.kept())
    on_disk = {r for r, _ in c.tree.known.items() if os.path.isdir(os.path.join(vm_cgroup, r))}
    c.close()
    for name in os.listdir(vm_cgroup):
        p = os.path.join(vm_cgroup, name)
        if os.path.isdir(p):
            os.rmdir(p)
    assert len(made) > 50 and ticks > 5
    assert store.stats.errors == {}  # "gone" is not an error
    assert kept <= on_disk  # fds kept only for cgroups that still exist
    assert fd_count() == fds0  # reader, inotify and kmsg fds all closed
