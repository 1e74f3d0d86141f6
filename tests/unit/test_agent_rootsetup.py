"""Choosing the agent's cgroup root: never the whole mount, never outside it; sd_notify."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from agent import rootsetup, sdnotify
from agent.rootsetup import RootError, choose_root
from cgroupfs.mount import CgroupMount

V2 = CgroupMount("v2", "/sys/fs/cgroup", frozenset({"cpu", "memory", "pids"}))
NONE = CgroupMount("none", None, frozenset())


def test_default_root_is_a_pystats_child_of_the_mount() -> None:
    assert choose_root(V2, None, env={}) == ("/sys/fs/cgroup/pystats", False)
    assert choose_root(V2, "auto", env={}) == ("/sys/fs/cgroup/pystats", False)


def test_configured_root_must_be_inside_and_not_the_mount() -> None:
    assert choose_root(V2, "/sys/fs/cgroup/batch/x", env={}) == ("/sys/fs/cgroup/batch/x", False)
    with pytest.raises(RootError, match="not inside the cgroup2 mount"):
        choose_root(V2, "/sys/fs/cgroup/../../etc", env={})
    with pytest.raises(RootError, match="whole cgroup2 mount"):
        choose_root(V2, "/sys/fs/cgroup", env={})
    with pytest.raises(RootError, match="needs cgroup v2"):
        choose_root(NONE, None, env={})


def test_systemd_delegated_cgroup_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        rootsetup, "own_cgroup", lambda: "/system.slice/pystats-agent.service/agent"
    )
    env = {"INVOCATION_ID": "x", "PYSTATS_ASSUME_DELEGATED": "1"}
    # systemd (DelegateSubgroup=agent) started the agent in its leaf: the root is the unit's.
    assert choose_root(V2, None, env=env) == (
        "/sys/fs/cgroup/system.slice/pystats-agent.service",
        True,
    )
    # Not delegated (no xattr, no override): it does not write systemd's cgroup.
    assert choose_root(V2, None, env={"INVOCATION_ID": "x"}) == ("/sys/fs/cgroup/pystats", False)


def test_delegated_cgroup_without_a_subgroup_is_left_to_systemd(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # systemd < 254 starts the agent in the unit's cgroup itself. Controllers enabled there for
    # workloads/ would make systemd's next start of the agent fail (219/CGROUP) while any
    # workload runs, so the agent keeps its subtree out of the unit's cgroup.
    monkeypatch.setattr(rootsetup, "own_cgroup", lambda: "/system.slice/pystats-agent.service")
    env = {"INVOCATION_ID": "x", "PYSTATS_ASSUME_DELEGATED": "1"}
    with caplog.at_level("INFO", logger="agent.rootsetup"):
        assert choose_root(V2, None, env=env) == ("/sys/fs/cgroup/pystats", False)
    assert "no DelegateSubgroup=" in caplog.text


def test_own_cgroup_reads_the_unified_line(tmp_path: Path) -> None:
    f = tmp_path / "cgroup"
    f.write_text("12:memory:/user.slice\n0::/user.slice/session-1.scope\n")
    assert rootsetup.own_cgroup(str(f)) == "/user.slice/session-1.scope"
    assert rootsetup.own_cgroup(str(tmp_path / "missing")) is None


def test_sd_notify_sends_a_datagram(tmp_path: Path) -> None:
    path = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.bind(path)
        assert sdnotify.notify("READY=1", env={"NOTIFY_SOCKET": path})
        assert s.recv(100) == b"READY=1"
    assert not sdnotify.notify("READY=1", env={})
    assert not sdnotify.notify("READY=1", env={"NOTIFY_SOCKET": str(tmp_path / "gone")})


def test_watchdog_interval_is_half_and_only_for_us() -> None:
    assert sdnotify.watchdog_interval_s({"WATCHDOG_USEC": "30000000"}) == 15.0
    mine = {"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}
    assert sdnotify.watchdog_interval_s(mine) == 15.0
    other = {"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid() + 1)}
    assert sdnotify.watchdog_interval_s(other) is None
    assert sdnotify.watchdog_interval_s({}) is None
