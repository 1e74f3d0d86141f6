"""Issue 17 on the VM's real cgroup v2 (controllers present): `pystats update` changing a running
workload's cgroup files, `pause` freezing it with ps saying so, `--init` making `stop` quick with
exit 143. One dev server (the agent's workload API and manager) on a scratch cgroup root."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.vm.wlagent import Agent, running_agent

pytestmark = pytest.mark.vm


@pytest.fixture(scope="module")
def agent() -> Iterator[Agent]:
    with running_agent("pystats-cli-") as a:
        yield a


def _cg(agent: Agent, name: str, file: str) -> str:
    return Path(agent.root, "workloads", name, file).read_text().strip()


def test_update_changes_a_running_workloads_cgroup_files(agent: Agent) -> None:
    p = agent.cli("run", "-d", "--name", "up", "--memory", "128M", "--", "sleep", "1000")
    assert p.returncode == 0, p.stderr
    p = agent.cli(
        "update", "--cpus", "0.5", "--memory", "64M", "--memory-high", "48M",
        "--memory-reservation", "16M", "--pids-limit", "20", "--cpu-weight", "50", "up",
    )  # fmt: skip
    assert (p.returncode, p.stdout) == (0, "up\n"), p.stderr
    assert _cg(agent, "up", "cpu.max") == "50000 100000"
    assert _cg(agent, "up", "memory.max") == str(64 << 20)
    assert _cg(agent, "up", "memory.high") == str(48 << 20)
    assert _cg(agent, "up", "memory.low") == str(16 << 20)
    assert _cg(agent, "up", "pids.max") == "20"
    assert _cg(agent, "up", "cpu.weight") == "50"
    assert agent.client.inspect("up")["state"] == "running"
    p = agent.cli("update", "--cpus", "1000", "up")
    assert p.returncode == 1 and "CPUs" in p.stderr
    assert _cg(agent, "up", "cpu.max") == "50000 100000"


def test_pause_freezes_and_ps_says_paused(agent: Agent) -> None:
    script = "while :; do echo tick >> /tmp/ticks; sleep 0.05; done"
    assert agent.cli("run", "-d", "--name", "fz", "--", "sh", "-c", script).returncode == 0
    assert agent.cli("pause", "fz").returncode == 0
    assert "frozen 1" in _cg(agent, "fz", "cgroup.events").splitlines()
    line = next(x for x in agent.cli("ps").stdout.splitlines() if x.startswith("fz "))
    assert "(Paused)" in line, line
    usage = _cg(agent, "fz", "cpu.stat").splitlines()[0]
    time.sleep(0.5)
    assert _cg(agent, "fz", "cpu.stat").splitlines()[0] == usage  # no CPU used while frozen
    assert agent.cli("unpause", "fz").returncode == 0
    assert "frozen 0" in _cg(agent, "fz", "cgroup.events").splitlines()
    assert agent.client.inspect("fz")["state"] == "running"


# In the VM the setup before exec is slow: a stop right after `run -d` came while the workload,
# PID 1 of its namespace, had no handler yet, and the kernel dropped the SIGTERM (137 after the
# grace period). Fixed by workloads.runtime.startsignals.
def test_init_makes_stop_quick_with_exit_143(agent: Agent) -> None:
    p = agent.cli("run", "-d", "--name", "ini", "--init", "--", "sleep", "1000")
    assert p.returncode == 0, p.stderr
    t0 = time.monotonic()
    info = agent.client.stop("ini")
    took = time.monotonic() - t0
    print(f"\nstop of sleep under --init: {took:.3f} s (API call), exit {info['exit_code']}")
    assert info["exit_code"] == 143
    p = agent.cli("run", "-d", "--name", "noinit", "--stop-timeout", "1", "--", "sleep", "1000")
    assert p.returncode == 0, p.stderr
    assert agent.client.stop("noinit")["exit_code"] == 137  # PID 1 ignores TERM without tini
