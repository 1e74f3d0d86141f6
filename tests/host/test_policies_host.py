"""Policies on this host's controller-less cgroup v2 tree: real placement, connector events, the
engine's event path, removal of dropped groups. Limits are skipped here (no controllers), with
the reason logged. Every test works in its own scratch cgroup, removed afterwards."""

from __future__ import annotations

import asyncio
import logging
import os
import random
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from cgroupfs.paths import CgroupRoot
from policies import procs
from policies.apply import apply, read_current
from policies.connector import ConnectorUnavailable, ProcConnector
from policies.engine import PolicyEngine
from policies.plan import MovePid, RemoveGroup, SetLimit, plan
from policies.validate import check_text

pytestmark = pytest.mark.host


def _policy_text(token: str) -> str:
    return f"""
groups:
  - name: sleepers
    limits: {{memory.max: 64M, pids.max: 10}}
    match:
      - cmdline: ['^sleep {token}$']
"""


@pytest.fixture
def token() -> str:
    return f"{random.randint(1000, 9999)}.{random.randint(100000, 999999)}"


@pytest.fixture
def sleeper(token: str) -> Iterator[subprocess.Popen[bytes]]:
    p = subprocess.Popen(["sleep", token])
    try:
        yield p
    finally:
        p.kill()
        p.wait()


def _cgroup_of(pid: int) -> str:
    with open(f"/proc/{pid}/cgroup", "rb") as f:
        return procs.parse_cgroup(f.read())


def test_apply_moves_a_started_process_and_skips_limits(
    host_cgroup: str,
    token: str,
    sleeper: subprocess.Popen[bytes],
    caplog: pytest.LogCaptureFixture,
) -> None:
    policy, errors = check_text(_policy_text(token), "p.yaml")
    assert policy is not None, errors
    root = CgroupRoot(host_cgroup)
    root_cg = procs.hierarchy_path(host_cgroup)
    assert root_cg is not None and _cgroup_of(os.getpid()) != root_cg
    current = read_current(root, root_cg)
    actions = plan(policy, procs.snapshot(), current, {os.getpid()})
    moves = [a for a in actions if isinstance(a, MovePid)]
    assert [(m.pid, m.rel) for m in moves] == [(sleeper.pid, "sleepers")]
    with caplog.at_level(logging.WARNING, logger="policies.apply"):
        result = apply(root, actions)
    assert result.counts["moves"] == 1 and result.errors == []
    assert _cgroup_of(sleeper.pid) == f"{root_cg}/sleepers"
    # No memory/pids controllers on this host: plan leaves those limits out (apply would only
    # skip them), so a second plan reaches "nothing to do".
    assert not [a for a in actions if isinstance(a, SetLimit)]
    assert result.counts["limits_skipped"] == 0
    again = plan(policy, procs.snapshot(), read_current(root, root_cg), {os.getpid()})
    assert again == []


def test_reused_or_exited_pid_is_skipped(host_cgroup: str, token: str) -> None:
    policy, _ = check_text(_policy_text(token), "p.yaml")
    assert policy is not None
    p = subprocess.Popen(["sleep", token])
    root = CgroupRoot(host_cgroup)
    root_cg = procs.hierarchy_path(host_cgroup)
    assert root_cg is not None
    actions = plan(policy, procs.snapshot(), read_current(root, root_cg), {os.getpid()})
    p.kill()
    p.wait()
    result = apply(root, actions)
    assert result.counts["pids_gone"] == 1 and result.counts["moves"] == 0
    assert result.errors == []


def test_connector_sees_exec_of_a_started_process() -> None:
    try:
        conn = ProcConnector.open()
    except ConnectorUnavailable as e:
        pytest.skip(f"proc connector unavailable on this host: {e}")
    try:
        p = subprocess.Popen(["true"])
        p.wait()
        deadline = time.monotonic() + 5
        seen: list[str] = []
        while time.monotonic() < deadline and "exec" not in seen:
            seen += [e.kind for e in conn.read_ready() if e.pid == p.pid]
            time.sleep(0.01)
        if not seen:
            pytest.skip("proc connector subscribed but delivers no events here (namespace?)")
        assert "exec" in seen and "fork" in seen
    finally:
        conn.stop()


async def _wait_for(cond: object, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():  # type: ignore[operator]
            return True
        await asyncio.sleep(0.005)
    return False


def placed_append(out: list[tuple[int, str, str, str]]) -> Any:
    """An on_placed hook that records (list.append is atomic across threads)."""
    return lambda *a: out.append(a)


async def test_engine_places_new_process_reloads_and_removes(
    host_cgroup: str, token: str, tmp_path: str
) -> None:
    path = os.path.join(tmp_path, "policy.yaml")
    with open(path, "w") as f:
        f.write(_policy_text(token))
    root_cg = procs.hierarchy_path(host_cgroup)
    placed: list[tuple[int, str, str, str]] = []
    eng = PolicyEngine(
        CgroupRoot(host_cgroup),
        path,
        reconcile_s=3600,
        watch_s=0.05,
        on_placed=placed_append(placed),
    )
    task = asyncio.create_task(eng.run())
    p: subprocess.Popen[bytes] | None = None
    try:
        assert await _wait_for(lambda: eng.stats.reconciles >= 1)
        assert os.path.isdir(os.path.join(host_cgroup, "sleepers"))
        p = subprocess.Popen(["sleep", token])
        target = f"{root_cg}/sleepers"
        assert await _wait_for(lambda: _cgroup_of(p.pid) == target)
        assert await _wait_for(lambda: (p.pid, "sleepers") in {(x[0], x[2]) for x in placed})
        if eng.stats.connector_active:
            assert eng.stats.event_moves >= 1  # placed by the exec event, not a reconcile
        # an invalid policy is rejected: nothing moves, the old policy stays
        with open(path, "w") as f:
            f.write("groups:\n  - name: ../escape\n")
        assert await _wait_for(lambda: eng.stats.reload_failures >= 1)
        assert eng.policy is not None and eng.policy.all_groups()[0].path == "sleepers"
        assert _cgroup_of(p.pid) == target
        # the group is dropped: its process goes to default, the cgroup disappears
        with open(path, "w") as f:
            f.write("groups:\n  - name: other\n    match: [{comm: no-such-comm}]\n")
        assert await _wait_for(lambda: not os.path.exists(os.path.join(host_cgroup, "sleepers")))
        assert _cgroup_of(p.pid) == f"{root_cg}/default"
        # the counters are merged when the whole apply returns, just after the rmdir
        assert await _wait_for(lambda: eng.stats.groups_removed >= 1)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        if p is not None:
            p.kill()
            p.wait()


def test_plan_never_removes_a_group_holding_an_excluded_process(host_cgroup: str) -> None:
    # a stray cgroup with our own (excluded: the agent's PID) process in it stays
    os.mkdir(os.path.join(host_cgroup, "stray"))
    p = subprocess.Popen(["sleep", "30"])
    try:
        with open(os.path.join(host_cgroup, "stray", "cgroup.procs"), "w") as f:
            f.write(str(p.pid))
        policy, _ = check_text("groups: []\n", "p.yaml")
        assert policy is not None
        root_cg = procs.hierarchy_path(host_cgroup)
        assert root_cg is not None
        acts = plan(
            policy, procs.snapshot(), read_current(CgroupRoot(host_cgroup), root_cg), {p.pid}
        )
        assert not any(isinstance(a, RemoveGroup) for a in acts)
    finally:
        p.kill()
        p.wait()


def test_read_proc_reads_only_what_is_asked(sleeper: subprocess.Popen[bytes], token: str) -> None:
    full = procs.read_proc(sleeper.pid)
    lean = procs.read_proc(sleeper.pid, fields=frozenset())
    assert full is not None and lean is not None
    assert full.cmdline == ("sleep", token) and full.exe.endswith("sleep") and full.uid == 0
    assert (lean.cmdline, lean.exe, lean.uid, lean.user) == ((), "", -1, "")
    assert (lean.comm, lean.cgroup, lean.start) == (full.comm, full.cgroup, full.start)


def _event_thread() -> threading.Thread | None:
    return next((t for t in threading.enumerate() if t.name == "pystats-proc-events"), None)


async def test_event_thread_places_only_what_it_may(
    host_cgroup: str, token: str, tmp_path: str
) -> None:
    """The event thread: exec'd processes in a protected cgroup or excluded are left where
    they are; a matching one is placed; the thread runs at the engine's nice (root may raise
    it) and is gone once the engine stops."""
    path = os.path.join(tmp_path, "policy.yaml")
    with open(path, "w") as f:
        f.write(
            f"exclude:\n  - cmdline: ['^sleep {token}1$']\n"
            f"groups:\n  - name: sleepers\n    match: [{{cmdline: ['^sleep {token}[0-9]?$']}}]\n"
        )
    root_cg = procs.hierarchy_path(host_cgroup)
    keep = os.path.join(host_cgroup, "keep")  # not under the engine's root: someone else's
    os.mkdir(keep)
    eng_root = os.path.join(host_cgroup, "policies")
    os.mkdir(eng_root)
    eng = PolicyEngine(
        CgroupRoot(eng_root),
        path,
        reconcile_s=3600,
        protected=(f"{root_cg}/keep",),
        event_nice=-5,
    )
    task = asyncio.create_task(eng.run())
    started: list[subprocess.Popen[bytes]] = []
    try:
        assert await _wait_for(lambda: eng.stats.reconciles >= 1)
        if not eng.stats.connector_active:
            pytest.skip("proc connector unavailable on this host")
        thread = _event_thread()
        assert thread is not None and thread.native_id is not None
        assert os.getpriority(os.PRIO_PROCESS, thread.native_id) == -5  # root here
        # in a protected cgroup when it execs (the shell moves itself there first)
        protected = subprocess.Popen(
            ["sh", "-c", f"echo $$ > {keep}/cgroup.procs && exec sleep {token}2"]
        )
        started.append(protected)
        excluded = subprocess.Popen(["sleep", f"{token}1"])
        started.append(excluded)
        await asyncio.sleep(0.2)
        # one thread handles events in order: once this one is placed, the others were seen
        placed = subprocess.Popen(["sleep", token])
        started.append(placed)
        target = f"{root_cg}/policies/sleepers"
        assert await _wait_for(lambda: _cgroup_of(placed.pid) == target)
        assert _cgroup_of(protected.pid) == f"{root_cg}/keep"
        assert _cgroup_of(excluded.pid) == _cgroup_of(os.getpid())
        # the event thread counts a move just after the kernel shows it
        assert await _wait_for(lambda: eng.stats.event_moves >= 1), eng.stats
        assert eng.stats.event_moves == 1 and eng.stats.moves == 0, eng.stats
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        for p in started:
            p.kill()
            p.wait()
    assert _event_thread() is None and eng.stats.connector_active == 0
