"""--userns on the VM's real cgroup v2: root inside, an unprivileged uid outside, limits in force,
stop and exit codes recorded, `pystats run` streaming; and a clear refusal when the kernel's user
namespaces are turned off. Lean: one dev server, four short workloads."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.api.client import ApiError
from tests.vm.wlagent import Agent, busybox_rootfs, running_agent

pytestmark = pytest.mark.vm
BASE = 200_000
MAX_USERNS = "/proc/sys/user/max_user_namespaces"


@pytest.fixture(scope="module")
def agent() -> Iterator[Agent]:
    with running_agent("pystats-wl-userns-") as a:
        yield a


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def test_root_inside_unprivileged_outside_limits_in_force_stop_recorded(
    agent: Agent, open_dir: Path
) -> None:
    secret, public = os.path.join(open_dir, "secret"), os.path.join(open_dir, "public")
    for path, mode in ((secret, 0o600), (public, 0o644)):
        with open(path, "w") as f:
            f.write("host\n")
        os.chmod(path, mode)
    script = (
        "echo uid=$(id -u); echo cg=$(cat /proc/self/cgroup);"
        " cat secret || echo read-denied; echo pwned >> public || echo"
        " write-denied; echo ready; exec sleep 1000"
    )
    # -v: the workload's /tmp is a tmpfs of its own, the host's is hidden.
    r = agent.cli(
        "run", "-d", "--name", "u", "--userns-base", str(BASE), "--memory", "48M",
        "--pids", "20", "-v", f"{open_dir}:{open_dir}", "-w", str(open_dir),
        "--", "sh", "-c", script,
    )  # fmt: skip
    assert r.returncode == 0 and r.stdout == "u\n", r.stderr
    deadline = time.monotonic() + 60
    while "ready" not in (out := b"".join(agent.client.logs("u")).decode()):
        assert time.monotonic() < deadline, out
        time.sleep(0.1)
    info = agent.client.inspect("u")
    assert info["userns"] == {"uid_map": f"0 {BASE} 65536", "gid_map": f"0 {BASE} 65536"}
    # Root inside (uid 0 there) is uid BASE to the host, with no host groups left.
    assert "uid=0\n" in out
    assert "cg=0::/\n" in out  # its own cgroup namespace, rooted at its workload cgroup
    status = dict(line.split(":", 1) for line in _read(f"/proc/{info['pid']}/status").splitlines())
    assert status["Uid"].split() == [str(BASE)] * 4
    assert status["Gid"].split() == [str(BASE)] * 4
    assert status["Groups"].split() == []
    # What host root could do, it cannot.
    assert "read-denied" in out and "write-denied" in out and "Permission denied" in out
    assert _read(public) == "host\n"
    # The limits are in force on the cgroup that holds it.
    cg = info["cgroup_path"]
    assert _read(os.path.join(cg, "memory.max")) == str(48 << 20) + "\n"
    assert _read(os.path.join(cg, "pids.max")) == "20\n"
    assert str(info["pid"]) in _read(os.path.join(cg, "cgroup.procs")).split()
    # PID 1 without a SIGTERM handler ignores it: the grace period ends with cgroup.kill.
    done = agent.client.stop("u", grace_s=0.5)
    assert done["state"] == "exited" and done["exit_code"] == 137
    assert agent.client.inspect("u")["exit_code"] == 137


def test_run_streams_and_exits_with_the_code_oom_and_rootfs(agent: Agent) -> None:
    # Memory is still bounded inside the user namespace: tail buffers /dev/zero until killed.
    r = agent.cli("run", "--name", "oom", "--userns", "--memory", "20M", "--", "sh", "-c",
                  "id -u; exec tail /dev/zero")  # fmt: skip
    assert r.returncode == 137 and r.stdout == "0\n", r.stderr
    assert agent.client.inspect("oom")["oom_killed"] is True

    rootfs = busybox_rootfs()
    os.chmod(rootfs, 0o755)
    try:
        script = "id -u; ls /sys/class/net; echo x > /dev/null && echo null; exit 3"
        r = agent.cli("run", "--name", "rfs", "--userns", "--rootfs", rootfs, "--",
                      "/bin/sh", "-c", script)  # fmt: skip
        assert r.returncode == 3, r.stdout + r.stderr
        assert r.stdout == "0\nlo\nnull\n"
    finally:
        shutil.rmtree(rootfs)


def test_userns_turned_off_is_refused_with_nothing_left(agent: Agent) -> None:
    before = _read(MAX_USERNS)
    with open(MAX_USERNS, "w") as f:
        f.write("0")
    try:
        with pytest.raises(ApiError, match=r"--userns: user namespaces are disabled") as e:
            agent.client.create({"name": "off", "userns": True, "argv": ["true"]})
        assert e.value.status == 400
    finally:
        with open(MAX_USERNS, "w") as f:
            f.write(before)
    assert not os.path.exists(os.path.join(agent.root, "workloads", "off"))
    assert not os.path.exists(os.path.join(agent.state, "workloads", "off"))
