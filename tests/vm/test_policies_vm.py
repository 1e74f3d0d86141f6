"""Policies on the VM's real cgroup v2 with controllers: limits in force after a move, exec'd
processes placed by the proc connector, reload safety, leaf-to-parent evacuation, removal."""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import subprocess
import time
from collections.abc import Callable, Iterator

import pytest

from cgroupfs.paths import CgroupRoot
from policies import procs
from policies.engine import PolicyEngine

pytestmark = pytest.mark.vm


def _policy(token: str, extra: str = "") -> str:
    return f"""
groups:
  - name: sleepers
    limits: {{memory.max: 64M, pids.max: 10, cpu.max: "0.5"}}
    match:
      - cmdline: ['^sleep {token}$']
{extra}"""


@pytest.fixture
def token() -> str:
    return f"{random.randint(1000, 9999)}.{random.randint(100000, 999999)}"


@pytest.fixture
def policy_file(tmp_path: str, token: str) -> str:
    path = os.path.join(tmp_path, "policy.yaml")
    with open(path, "w") as f:
        f.write(_policy(token))
    return path


@pytest.fixture
def sleepers(token: str) -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    try:
        yield started
    finally:
        for p in started:
            p.kill()
            p.wait()


def _cgroup_of(pid: int) -> str:
    with open(f"/proc/{pid}/cgroup", "rb") as f:
        return procs.parse_cgroup(f.read())


def _read(path: str) -> str:
    with open(path) as f:
        return f.read().strip()


async def _wait_for(cond: Callable[[], bool], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        await asyncio.sleep(0.01)
    return False


def test_existing_process_moved_with_limits_in_force(
    vm_cgroup: str, policy_file: str, token: str, sleepers: list[subprocess.Popen[bytes]]
) -> None:
    p = subprocess.Popen(["sleep", token])
    sleepers.append(p)
    eng = PolicyEngine(CgroupRoot(vm_cgroup), policy_file, use_connector=False)
    assert eng.reload() == []
    assert eng.reconcile() == []
    group = os.path.join(vm_cgroup, "sleepers")
    assert _cgroup_of(p.pid) == procs.hierarchy_path(group)
    assert _read(os.path.join(group, "memory.max")) == str(64 << 20)
    assert _read(os.path.join(group, "pids.max")) == "10"
    assert _read(os.path.join(group, "cpu.max")) == "50000 100000"
    assert str(p.pid) in _read(os.path.join(group, "cgroup.procs")).split()
    assert eng.stats.limits_set == 3 and eng.stats.limits_skipped == 0
    # idempotent: a second pass changes nothing
    before = eng.stats
    assert eng.reconcile() == []
    after = eng.stats
    assert after.moves == before.moves and after.limits_set == before.limits_set
    assert after.groups_created == before.groups_created
    assert after.groups_removed == before.groups_removed


async def test_new_process_placed_on_exec(
    vm_cgroup: str, policy_file: str, token: str, sleepers: list[subprocess.Popen[bytes]]
) -> None:
    eng = PolicyEngine(CgroupRoot(vm_cgroup), policy_file, reconcile_s=3600, watch_s=0.2)
    task = asyncio.create_task(eng.run())
    try:
        assert await _wait_for(lambda: eng.stats.reconciles >= 1)
        assert eng.stats.connector_active == 1, "the VM kernel has the proc connector"
        target = procs.hierarchy_path(os.path.join(vm_cgroup, "sleepers"))
        for _ in range(5):
            p = subprocess.Popen(["sleep", token])
            sleepers.append(p)
            assert await _wait_for(lambda p=p: _cgroup_of(p.pid) == target, 10)  # type: ignore[misc]
        # The event thread counts a move just after the kernel shows it: wait for the count too.
        assert await _wait_for(lambda: eng.stats.event_moves >= 5), eng.stats
        assert eng.stats.event_moves == 5 and eng.stats.reconciles == 1, eng.stats
        lat = sorted(eng.placement_latency_ns)
        print(
            f"\nexec -> placed (n={len(lat)}): median {statistics.median(lat) / 1e6:.2f} ms,"
            f" max {lat[-1] / 1e6:.2f} ms"
        )
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_reload_invalid_keeps_policy_then_evacuate_and_remove(
    vm_cgroup: str, policy_file: str, token: str, sleepers: list[subprocess.Popen[bytes]]
) -> None:
    p = subprocess.Popen(["sleep", token])
    sleepers.append(p)
    eng = PolicyEngine(CgroupRoot(vm_cgroup), policy_file, reconcile_s=3600, watch_s=0.1)
    task = asyncio.create_task(eng.run())
    hp = procs.hierarchy_path
    group = os.path.join(vm_cgroup, "sleepers")
    try:
        assert await _wait_for(lambda: _cgroup_of(p.pid) == hp(group))
        # invalid: rejected, nothing moves, limits untouched
        with open(policy_file, "w") as f:
            f.write("groups:\n  - name: sleepers\n    limits: {memory.max: 50%}\n")
        assert await _wait_for(lambda: eng.stats.reload_failures == 1)
        await asyncio.sleep(0.3)
        assert _cgroup_of(p.pid) == hp(group)
        assert _read(os.path.join(group, "memory.max")) == str(64 << 20)
        assert eng.policy is not None and eng.policy.all_groups()[0].limits.as_dict()[
            "memory.max"
        ] == str(64 << 20)
        # the leaf becomes a parent: its process moves into sleepers/_ and the child gets memory
        with open(policy_file, "w") as f:
            f.write(
                _policy(
                    token,
                    "    children:\n      - name: small\n        limits: {memory.max: 32M}\n",
                )
            )
        assert await _wait_for(lambda: _cgroup_of(p.pid) == hp(os.path.join(group, "_")))
        small = os.path.join(group, "small")
        # the reconcile creates the cgroup, then writes its limit: wait for the limit itself
        limit = os.path.join(small, "memory.max")
        assert await _wait_for(lambda: os.path.exists(limit) and _read(limit) == str(32 << 20))
        assert "memory" in _read(os.path.join(group, "cgroup.subtree_control")).split()
        # the group is dropped: its process goes to default, the cgroups disappear
        with open(policy_file, "w") as f:
            f.write("groups:\n  - name: other\n    match: [{comm: no-such-comm}]\n")
        assert await _wait_for(lambda: not os.path.exists(group))
        assert _cgroup_of(p.pid) == hp(os.path.join(vm_cgroup, "default"))
        assert os.path.isdir(os.path.join(vm_cgroup, "other"))
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
