"""Workloads without limits on this host's controller-less v2 tree: the manager, shim and
runtime in-process (no HTTP): exit codes, restart policies, stop, log rotation, re-adoption.
Limits, OOM and the API on its socket are covered by tests/vm/test_workloads_vm.py."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import AsyncIterator

import pytest

from cgroupfs import reader
from cgroupfs.paths import CgroupRoot
from workloads.lifecycle.manager import Conflict, WorkloadManager
from workloads.runtime.spec import WorkloadSpec
from workloads.supervisor import procs
from workloads.supervisor.logread import LogFile, RecordReader

pytestmark = pytest.mark.host


@pytest.fixture
async def manager(host_cgroup: str) -> AsyncIterator[WorkloadManager]:
    state = tempfile.mkdtemp(prefix="pystats-wl-host-")
    m = WorkloadManager(CgroupRoot(host_cgroup), state, log_max_bytes=1000, log_keep=2)
    await m.start()
    task = asyncio.create_task(m.run())
    try:
        yield m
    finally:
        await m.close()
        await task
        shutil.rmtree(state, ignore_errors=True)


def read_output(files: list[LogFile]) -> str:
    """The output in the log files, as ``pystats logs`` shows it (both streams)."""
    out = b""
    for lf in files:
        reader = RecordReader(lf.legacy)
        with open(lf.path, "rb") as f:
            out += b"".join(r.data for r in reader.feed(f.read()) + reader.flush())
    return out.decode()


async def _until(m: WorkloadManager, name: str, states: set[str], timeout: float = 30) -> None:
    for _ in range(int(timeout / 0.05)):
        if m.inspect(name)["state"] in states:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{name} stayed {m.inspect(name)['state']}")


async def test_exit_code_and_isolation_without_limits(manager: WorkloadManager) -> None:
    # own cgroup namespace: every hierarchy (v1 ones too on this hybrid host) reads "/"
    script = (
        "echo pid=$$ host=$(hostname) nets=$(ls /sys/class/net)"
        " cg=$(grep -c ':/$' /proc/self/cgroup)/$(wc -l < /proc/self/cgroup); exit 3"
    )
    info = await manager.create(WorkloadSpec(name="x", argv=["sh", "-c", script]))
    assert info["cgroup"] == "workloads/x"
    await _until(manager, "x", {"exited"})
    assert manager.inspect("x")["exit_code"] == 3
    line = read_output(manager.log_files("x"))
    assert line.startswith("pid=1 host=x nets=lo cg="), line
    at_root, hierarchies = line.split("cg=")[1].split("/")
    assert int(at_root) == int(hierarchies) >= 1, line


async def test_on_failure_restarts_n_times_with_backoff(manager: WorkloadManager) -> None:
    await manager.create(
        WorkloadSpec(name="flaky", argv=["sh", "-c", "echo run; exit 4"], restart="on-failure:2")
    )
    for _ in range(200):
        info = manager.inspect("flaky")
        if info["state"] == "exited" and info["restart_count"] == 2:
            break
        await asyncio.sleep(0.05)
    assert info["restart_count"] == 2 and info["run"] == 3 and info["exit_code"] == 4
    await asyncio.sleep(0.5)
    assert manager.inspect("flaky")["run"] == 3  # no fourth run
    assert read_output(manager.log_files("flaky")) == "run\n" * 3


async def test_stop_escalates_to_cgroup_kill_and_prevents_restart(
    manager: WorkloadManager,
) -> None:
    await manager.create(WorkloadSpec(name="s", argv=["sleep", "1000"], restart="always"))
    info = await manager.stop("s", grace_s=0.2)  # sleep as PID 1 ignores SIGTERM
    assert info["state"] == "exited" and info["exit_code"] == 137
    await asyncio.sleep(0.4)
    assert manager.inspect("s")["state"] == "exited"
    await manager.rm("s")
    assert "s" not in manager.states()


async def test_logs_rotate_at_the_cap(manager: WorkloadManager) -> None:
    await manager.create(
        WorkloadSpec(name="chatty", argv=["sh", "-c", "for i in $(seq 1000); do echo $i; done"])
    )
    await _until(manager, "chatty", {"exited"})
    files = manager.log_files("chatty")
    assert len(files) == 3 and all(os.path.getsize(f.path) <= 1000 for f in files)
    assert read_output(files).endswith("999\n1000\n")


async def test_a_new_manager_readopts_a_running_workload(
    manager: WorkloadManager, host_cgroup: str
) -> None:
    info = await manager.create(WorkloadSpec(name="long", argv=["sleep", "1000"]))
    other = WorkloadManager(CgroupRoot(host_cgroup), manager.state_dir, use_fork_server=False)
    await other.start()
    assert other.states()["long"] == "running"
    assert other.inspect("long")["pid"] == info["pid"]
    after = await other.kill("long")
    assert after["exit_code"] == 137, (after.get("error"), after.get("signal"), after.get("state"))
    await other.close()


async def test_a_workload_killed_as_it_starts_is_reported_killed(
    manager: WorkloadManager, host_cgroup: str
) -> None:
    # The shim places the workload in its cgroup, records "running", then lets it go on: a kill
    # before the go (`pystats kill` right after `run -d`) is still a kill (137, SIGKILL), not a
    # supervisor failure. The killer watches the cgroup, so its kill often lands in that moment;
    # ten tries make a miss of it unlikely.
    for i in range(10):
        procs = os.path.join(host_cgroup, "workloads", f"k{i}", "cgroup.procs")
        stop = threading.Event()

        def kill_on_arrival(procs: str = procs, stop: threading.Event = stop) -> None:
            while not stop.is_set():
                try:
                    with open(procs) as f:
                        pids = f.read().split()
                except OSError:
                    continue
                if pids:
                    os.kill(int(pids[0]), signal.SIGKILL)
                    return

        killer = threading.Thread(target=kill_on_arrival)
        killer.start()
        try:
            await manager.create(WorkloadSpec(name=f"k{i}", argv=["sleep", "1000"]))
            # On a loaded machine the killer may only now see the workload: it still kills it.
            await asyncio.to_thread(killer.join, 30)
        finally:
            stop.set()
            killer.join()
        await _until(manager, f"k{i}", {"exited"})
        after = manager.inspect(f"k{i}")
        assert (after["exit_code"], after["signal"], after["error"]) == (137, 9, None), after


# -- faults of the supervisor (the full-disk one: tests/vm/test_supervisor_faults_vm.py) --


async def test_a_killed_shim_takes_its_workload_down_before_the_restart(
    manager: WorkloadManager,
) -> None:
    first = await manager.create(
        WorkloadSpec(name="always", argv=["sleep", "1000"], restart="always")
    )
    pid, shim = first["pid"], first["shim_pid"]
    start = procs.start_ticks(pid)
    os.kill(shim, signal.SIGKILL)
    for _ in range(600):
        info = manager.inspect("always")
        if info["run"] == 2 and info["state"] == "running":
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError(f"not restarted: {manager.inspect('always')}")
    # The first copy is gone; one copy runs, alone in the workload's cgroup.
    assert not procs.alive(pid, start)
    assert reader.read_procs(manager.root, "workloads/always") == (info["pid"],)
    assert info["restart_count"] == 1 and info["pid"] != pid


async def test_a_corrupt_record_never_lets_a_new_workload_into_a_busy_cgroup(
    manager: WorkloadManager,
) -> None:
    old = await manager.create(WorkloadSpec(name="busy", argv=["sleep", "1000"]))
    with open(os.path.join(manager.wl_dir, "busy", "config.json"), "w") as f:
        f.write("{not json")
    # A new agent on the same state: the record is set aside, its workload still runs.
    other = WorkloadManager(manager.root, manager.state_dir, use_fork_server=False)
    await other.start()
    try:
        assert "busy" not in other.states() and len(other.problems) == 1
        with pytest.raises(Conflict, match="still holds processes"):
            await other.create(WorkloadSpec(name="busy", argv=["sleep", "1000"]))
        assert procs.alive(old["pid"], None)
        assert reader.read_procs(manager.root, "workloads/busy") == (old["pid"],)
        assert not os.path.exists(os.path.join(other.wl_dir, "busy"))
    finally:
        await other.close()
