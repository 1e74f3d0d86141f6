"""Issue 17.1 in the VM's real cgroup v2 (the workload API's dev server, a busybox rootfs):
`run -it --rootfs DIR sh` driven through a pty (type, read, detach with ctrl-p ctrl-q, attach
again, exit with a code), and `exec` seeing the workload's PID 1 and hostname with no capability
beyond the workload's, into a plain and a --userns workload."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.host.test_interactive_host import Term
from tests.vm.wlagent import REPO, Agent, busybox_rootfs, running_agent

pytestmark = pytest.mark.vm
TOOLS = ("grep", "id", "sleep", "tr", "stty", "tty", "echo")


@pytest.fixture(scope="module")
def agent() -> Iterator[Agent]:
    with running_agent("pystats-it-") as a:
        yield a


@pytest.fixture(scope="module")
def rootfs() -> Iterator[str]:
    root = busybox_rootfs()
    for tool in TOOLS:
        os.symlink("busybox", os.path.join(root, "bin", tool))
    os.mkdir(os.path.join(root, "etc"))
    Path(root, "etc", "passwd").write_text(
        "root:x:0:0::/:/bin/sh\nnobody:x:65534:65534::/:/bin/sh\n"
    )
    Path(root, "etc", "group").write_text("root:x:0:\nnogroup:x:65534:\n")
    os.chmod(root, 0o755)  # --userns: root inside is host uid 100000
    yield root
    shutil.rmtree(root, ignore_errors=True)


def _status(pid: int) -> dict[str, str]:
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except FileNotFoundError:
        return {}
    return {k: v.strip() for k, _, v in (line.partition(":") for line in lines)}


def _up(agent: Agent, body: dict[str, object]) -> int:
    agent.client.create(body)
    info = agent.wait_state(str(body["name"]), {"running"})
    assert info["state"] == "running", info
    time.sleep(0.5)  # past the runtime's setup
    return int(info["pid"])


def test_run_it_shell_detach_attach_exit(agent: Agent, rootfs: str) -> None:
    env = ("run", "-it", "--rootfs", rootfs, "--name", "vt1", "--hostname", "vmbox", "--", "sh")
    t = Term(agent.sock, *env)
    t.type(b"echo hi$((1+1)); hostname\r")
    t.expect(b"hi2", timeout=60)
    t.expect(b"vmbox", timeout=30)
    t.type(b"\x10\x11")
    assert t.wait(timeout=60) == 0
    assert agent.client.inspect("vt1")["state"] == "running"
    t = Term(agent.sock, "attach", "vt1")
    time.sleep(2)
    t.type(b"echo again$((2+2))\r")
    t.expect(b"again4", timeout=60)
    t.type(b"exit 7\r")
    assert t.wait(timeout=60) == 7
    assert "hi2" in agent.cli("logs", "vt1").stdout


def test_exec_sees_pid1_hostname_and_no_extra_capability(agent: Agent, rootfs: str) -> None:
    pid = _up(
        agent, {"name": "vx1", "rootfs": rootfs, "hostname": "vxbox", "argv": ["sleep", "1000"]}
    )
    p = agent.cli(
        "exec",
        "vx1",
        "sh",
        "-c",
        "cat /proc/1/cmdline; echo; hostname;"
        " grep -E '^(Cap|NoNewPrivs|Seccomp:)' /proc/self/status",
    )
    lines = p.stdout.splitlines()
    assert lines[0].split("\0")[0] == "sleep" and lines[1] == "vxbox", p
    mine = {k: v.strip() for k, _, v in (line.partition(":") for line in lines[2:])}
    theirs = _status(pid)
    for field in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp"):
        assert mine[field] == theirs[field], (field, mine, theirs)
    p = agent.cli("exec", "-u", "nobody", "vx1", "id", "-u")
    assert p.stdout.strip() == "65534", p
    assert agent.cli("exec", "vx1", "no-such").returncode == 127
    t = Term(agent.sock, "exec", "-it", "vx1", "sh")
    t.type(b"tty; echo in$((3*3)); exit 4\r")
    t.expect(b"in9", timeout=60)
    assert t.wait(timeout=60) == 4
    assert b"/dev/" in t.seen or b"not a tty" in t.seen  # stdin is a terminal


def test_exec_into_a_userns_workload(agent: Agent, rootfs: str) -> None:
    pid = _up(agent, {"name": "vu1", "rootfs": rootfs, "userns": True, "argv": ["sleep", "1000"]})
    bg = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "agent.cli",
            "exec",
            "vu1",
            "sh",
            "-c",
            "cat /proc/self/uid_map; grep CapEff /proc/self/status; sleep 3",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYSTATS_SOCKET=agent.sock),
    )
    deadline, seen = time.monotonic() + 60, None
    while seen is None and time.monotonic() < deadline:
        pids = agent.client._json("GET", "/v1/workloads/vu1/top")["pids"]
        seen = next((p for p in pids if p != pid and _status(p).get("Name") == "sleep"), None)
        time.sleep(0.2)
    assert seen is not None, "the exec'd process never showed in the workload's cgroup"
    assert _status(seen)["Uid"].split()[0] == "100000"  # root inside, the workload's mapping
    out, _ = bg.communicate(timeout=60)
    assert bg.returncode == 0, out
    assert out.split()[:3] == ["0", "100000", "65536"], out
    assert out.split()[-1] == _status(pid)["CapEff"], out
