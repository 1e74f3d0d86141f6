"""Workloads end to end on the VM's real cgroup v2: isolation, limits, survival, bad input.

One dev server (the workload API without the rest of the agent) per module, on a scratch cgroup
root; everything it starts is killed and removed with that cgroup afterwards.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from agent.api.client import ApiError, WorkloadClient
from cgroupfs import reader
from cgroupfs.parsers import parse_cpu_stat, parse_pids_events
from cgroupfs.paths import CgroupRoot
from tests.vm.wlagent import Agent, busybox_rootfs, running_agent

pytestmark = pytest.mark.vm


@pytest.fixture(scope="module")
def agent() -> Iterator[Agent]:
    with running_agent("pystats-wl-") as a:
        yield a


def test_isolation_pid1_hostname_lo_only_no_host_processes(agent: Agent) -> None:
    script = (
        "echo pid=$$; echo host=$(hostname); echo nets=$(ls /sys/class/net);"
        " echo loflags=$(cat /sys/class/net/lo/flags); echo nprocs=$(ls -d /proc/[0-9]* | wc -l);"
        " echo comms=$(cat /proc/[0-9]*/comm | tr '\\n' ' ');"
        " echo cg=$(cat /proc/self/cgroup)"
    )
    agent.client.create({"name": "iso", "hostname": "iso-host", "argv": ["sh", "-c", script]})
    out = agent.output("iso")
    assert "pid=1\n" in out
    assert "host=iso-host\n" in out
    assert "nets=lo\n" in out
    assert "cg=0::/\n" in out  # its own cgroup namespace: the host's layout stays hidden
    flags = int(out.split("loflags=")[1].split()[0], 16)
    assert flags & 0x1, "lo is not up"
    # sh, its subshell, ls and (if already forked) wc: nothing of the host's (pytest, init...)
    assert int(out.split("nprocs=")[1].split()[0]) <= 4
    comms = out.split("comms=")[1].split("\n")[0].split()
    assert comms and set(comms) <= {"sh", "cat", "tr"}, comms
    assert agent.client.inspect("iso")["exit_code"] == 0

    rootfs = busybox_rootfs()
    try:
        agent.client.create(
            {
                "name": "iso-rootfs",
                "rootfs": rootfs,
                "argv": ["/bin/sh", "-c", "echo pid=$$; ls /; cat /proc/1/cmdline"],
            }
        )
        out = agent.output("iso-rootfs")
        assert "pid=1" in out
        assert "work" not in out.split()  # the host's /work is not visible after pivot_root
        assert "bin" in out.split()
    finally:
        shutil.rmtree(rootfs)


def test_memory_limit_oom_kill_is_137_and_recorded(agent: Agent) -> None:
    agent.client.create(
        {"name": "oom", "memory": "20M", "argv": [sys.executable, "-c", "b = b'x' * (200 << 20)"]}
    )
    info = agent.wait_state("oom", {"exited"})
    assert info["exit_code"] == 137
    assert info["oom_killed"] is True
    assert info["limits"]["memory_bytes"] == 20 << 20


def test_pids_limit_stops_a_fork_bomb(agent: Agent) -> None:
    agent.client.create(
        {
            "name": "forks",
            "pids": "10",
            "argv": ["sh", "-c", "for i in $(seq 40); do sleep 30 & done; echo done"],
        }
    )
    out = agent.output("forks")
    root = CgroupRoot(agent.root)
    events = parse_pids_events(reader.read_file(root, "workloads/forks", "pids.events"))
    assert (events.max or 0) > 0, out
    assert "fork" in out.lower() or "resource" in out.lower(), out


def test_cpu_limit_throttles(agent: Agent) -> None:
    agent.client.create(
        {"name": "spin", "cpus": "0.1", "argv": ["timeout", "2", "sh", "-c", "while :; do :; done"]}
    )
    agent.wait_state("spin", {"exited"})
    stat = parse_cpu_stat(reader.read_file(CgroupRoot(agent.root), "workloads/spin", "cpu.stat"))
    assert (stat.nr_throttled or 0) > 0


def _status_of(agent: Agent, name: str) -> dict[str, Any]:
    with open(os.path.join(agent.state, "workloads", name, "status.json")) as f:
        out: dict[str, Any] = json.load(f)
        return out


def test_workloads_survive_agent_sigkill_and_are_readopted(agent: Agent) -> None:
    for name in ("keep1", "keep2"):
        agent.client.create({"name": name, "argv": ["sleep", "1000"]})
    agent.client.create({"name": "quits", "argv": ["sh", "-c", "sleep 6; exit 7"]})
    pids = {n: agent.client.inspect(n)["pid"] for n in ("keep1", "keep2", "quits")}
    agent.sigkill()
    try:
        deadline = time.monotonic() + 120
        while _status_of(agent, "quits")["state"] != "exited":
            assert time.monotonic() < deadline, "the shim did not record the exit"
            time.sleep(0.2)
        for name in ("keep1", "keep2"):
            os.kill(pids[name], 0)  # still running with the agent gone
    finally:
        agent.start()
    listed = {w["name"]: w for w in agent.client.listing(all_=True)}
    for name in ("keep1", "keep2"):
        assert listed[name]["state"] == "running"
        assert listed[name]["pid"] == pids[name]
    assert listed["quits"]["state"] == "exited"
    assert listed["quits"]["exit_code"] == 7
    # And the re-adopted ones are still controllable.
    assert agent.client.stop("keep1", grace_s=0.5)["exit_code"] == 137
    agent.client.rm("keep2", force=True)


def _nothing_left(agent: Agent, name: str) -> None:
    assert not os.path.exists(os.path.join(agent.root, "workloads", name))
    assert not os.path.exists(os.path.join(agent.state, "workloads", name))


def test_bad_input_gives_clear_errors_and_leaves_nothing(agent: Agent) -> None:
    r = agent.cli("run", "--name", "bad1", "--memory", "12Q", "--", "true")
    assert r.returncode == 125 and "--memory" in r.stderr and "Traceback" not in r.stderr
    r = agent.cli("run", "--name", "bad2", "--bogus", "--", "true")
    assert r.returncode == 125 and "--bogus" in r.stderr and "Traceback" not in r.stderr
    with pytest.raises(ApiError, match="memory"):
        agent.client.create({"name": "bad3", "memory": "lots", "argv": ["true"]})
    with pytest.raises(ApiError, match="does not exist"):
        agent.client.create({"name": "bad4", "rootfs": "/no/such/dir", "argv": ["true"]})
    with pytest.raises(ApiError, match="invalid workload name"):
        agent.client.create({"name": "../escape", "argv": ["true"]})
    for name in ("bad1", "bad2", "bad3", "bad4"):
        _nothing_left(agent, name)

    r = agent.cli("run", "--name", "dup", "--", "sh", "-c", "echo out; exit 5")
    assert r.returncode == 5 and r.stdout == "out\n"
    with pytest.raises(ApiError, match="already exists") as e:
        agent.client.create({"name": "dup", "argv": ["true"]})
    assert e.value.status == 409

    r = agent.cli("run", "--name", "missing", "--", "/no/such/binary")
    assert r.returncode == 127 and "command not found" in r.stdout
    assert "command not found" in agent.client.inspect("missing")["error"]


def _as_nobody(sock: str) -> str:
    """The error a client running as nobody gets (in a forked child that drops root)."""
    rd, wr = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(rd)
        msg = "no error"
        try:
            os.setgid(65534)
            os.setuid(65534)
            WorkloadClient(sock).listing()
        except ApiError as e:
            msg = f"{e.status} {e}"
        except BaseException as e:
            msg = repr(e)
        os.write(wr, msg.encode())
        os._exit(0)
    os.close(wr)
    with os.fdopen(rd) as f:
        msg = f.read()
    os.waitpid(pid, 0)
    return msg


def test_non_root_client_is_refused(agent: Agent) -> None:
    assert oct(os.stat(agent.sock).st_mode & 0o777) == "0o600"
    # The socket's own mode refuses nobody (its folder is traversable, as /run/pystats is).
    os.chmod(agent.state, 0o711)
    try:
        assert "permission denied" in _as_nobody(agent.sock)
        # Even on a socket opened up by mistake, the peer credentials are checked.
        os.chmod(agent.sock, 0o666)
        msg = _as_nobody(agent.sock)
    finally:
        os.chmod(agent.sock, 0o600)
        os.chmod(agent.state, 0o700)
    assert msg.startswith("403") and "uid 65534" in msg
