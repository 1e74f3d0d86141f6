# ruff: noqa: F811  (pytest fixtures imported from the agent tests are named as parameters)
"""Issue 17.2 against the real agent on this host's v2 tree (cgroup.freeze works without
controllers): pause/unpause with ps saying so, start, restart, wait, several names per
stop/kill/rm, container prune."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.api.client import WorkloadClient
from tests.host.test_agent_host import Agent, agent  # noqa: F401 (a fixture)
from tests.host.test_cli_defects_host import cli, wagent  # noqa: F401 (a fixture)

pytestmark = pytest.mark.host


def _frozen(agent_root: str, name: str) -> bool:
    events = Path(agent_root, "workloads", name, "cgroup.events").read_text()
    return "frozen 1" in events.split("\n")


def test_pause_freezes_and_ps_says_paused(wagent: Agent, host_cgroup: str) -> None:
    wagent.start(wagent.config(host_cgroup))
    c = WorkloadClient(wagent.sock)
    c.create({"name": "p1", "argv": ["sleep", "1000"]})
    p = cli(wagent.sock, "pause", "p1")
    assert (p.returncode, p.stdout) == (0, "p1\n"), p.stderr
    assert _frozen(wagent.root, "p1")
    ps = cli(wagent.sock, "ps").stdout.splitlines()
    assert ps[1].startswith("p1 ") and "(Paused)" in ps[1], ps
    assert cli(wagent.sock, "ps", "-q", "--filter", "status=paused").stdout == "p1\n"
    again = cli(wagent.sock, "pause", "p1")
    assert again.returncode == 1 and "already paused" in again.stderr
    assert cli(wagent.sock, "unpause", "p1").returncode == 0
    assert not _frozen(wagent.root, "p1")
    assert c.inspect("p1")["state"] == "running"
    # A paused workload still stops (thawed first, then SIGTERM; sleep as PID 1 ignores it).
    assert cli(wagent.sock, "pause", "p1").returncode == 0
    p = cli(wagent.sock, "stop", "-t", "0.2", "p1")
    assert p.returncode == 0, p.stderr
    assert c.inspect("p1")["state"] == "exited"


def test_start_wait_restart_and_several_names(wagent: Agent, host_cgroup: str) -> None:
    wagent.start(wagent.config(host_cgroup))
    c = WorkloadClient(wagent.sock)
    c.create({"name": "a", "argv": ["sh", "-c", "exit 3"]})
    c.create({"name": "b", "argv": ["sh", "-c", "exit 4"]})
    p = cli(wagent.sock, "wait", "a", "b")
    assert (p.returncode, p.stdout) == (0, "3\n4\n"), p.stderr
    p = cli(wagent.sock, "start", "a")
    assert p.returncode == 0, p.stderr
    assert cli(wagent.sock, "wait", "a").stdout == "3\n"
    assert c.inspect("a")["run"] == 2
    c.create({"name": "s1", "argv": ["sleep", "1000"]})
    c.create({"name": "s2", "argv": ["sleep", "1000"]})
    p = cli(wagent.sock, "restart", "-t", "0", "s1")
    assert p.returncode == 0, p.stderr
    assert c.inspect("s1")["state"] == "running" and c.inspect("s1")["run"] == 2
    p = cli(wagent.sock, "kill", "s1", "ghost", "s2")
    assert p.returncode == 1 and p.stdout == "s1\ns2\n", (p.stdout, p.stderr)
    assert "ghost" in p.stderr
    p = cli(wagent.sock, "rm", "a", "b")
    assert (p.returncode, p.stdout) == (0, "a\nb\n"), p.stderr
    p = cli(wagent.sock, "container", "prune", "-f")
    assert p.returncode == 0 and p.stdout.split("\n")[1:3] == ["s1", "s2"], p.stdout
    assert c.listing(all_=True) == []
