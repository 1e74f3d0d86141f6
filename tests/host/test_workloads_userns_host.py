"""--userns on this host (no controllers: limits are in tests/vm/test_workloads_userns_vm.py):
root inside, an unprivileged uid outside, host files out of reach, a rootfs with /dev and /sys,
stop, and the helper's failure path."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cgroupfs.paths import CgroupRoot
from tests.host.test_workloads_host import read_output
from workloads.lifecycle.manager import WorkloadManager
from workloads.runtime.mounts import Bind, MountOpts
from workloads.runtime.spec import WorkloadSpec

pytestmark = pytest.mark.host
BASE = 300_000


@pytest.fixture
async def manager(host_cgroup: str) -> AsyncIterator[WorkloadManager]:
    state = tempfile.mkdtemp(prefix="pystats-wl-userns-")
    m = WorkloadManager(CgroupRoot(host_cgroup), state)
    await m.start()
    task = asyncio.create_task(m.run())
    try:
        yield m
    finally:
        for w in m.listing(all_=True):
            await m.rm(w["name"], force=True)
        await m.close()
        await task
        shutil.rmtree(state, ignore_errors=True)


async def _exited(m: WorkloadManager, name: str) -> str:
    for _ in range(600):
        if m.inspect(name)["state"] == "exited":
            break
        await asyncio.sleep(0.05)
    return read_output(m.log_files(name))


def _status_ids(pid: int) -> dict[str, list[str]]:
    with open(f"/proc/{pid}/status") as f:
        rows = [line.split(":", 1) for line in f]
    return {k: v.split() for k, v in rows if k in ("Uid", "Gid", "Groups", "NSpid")}


async def test_root_inside_is_an_unprivileged_uid_outside(
    manager: WorkloadManager, open_dir: Path
) -> None:
    secret = os.path.join(open_dir, "secret")
    public = os.path.join(open_dir, "public")
    for path, mode in ((secret, 0o600), (public, 0o644)):
        with open(path, "w") as f:
            f.write("host\n")
        os.chmod(path, mode)
    script = (
        "echo uid=$(id -u) gid=$(id -g); cat /proc/self/uid_map /proc/self/gid_map;"
        " cat secret || echo read-denied; echo pwned >> public || echo write-denied;"
        " echo ready; exec sleep 1000"
    )
    info = await manager.create(
        WorkloadSpec(
            name="u",
            argv=["sh", "-c", script],
            workdir=str(open_dir),
            userns=True,
            userns_base=BASE,
            # The workload's /tmp is private: the test's folder is bound in, as `-v` does.
            mounts=MountOpts(binds=(Bind(source=str(open_dir), target=str(open_dir)),)),
        )
    )
    assert info["userns"] == {"uid_map": f"0 {BASE} 65536", "gid_map": f"0 {BASE} 65536"}
    ids = _status_ids(info["pid"])
    assert ids["Uid"] == [str(BASE)] * 4 and ids["Gid"] == [str(BASE)] * 4
    assert ids["Groups"] == []  # host root's supplementary groups were dropped
    assert ids["NSpid"][1:] == ["1"]
    for _ in range(600):
        out = read_output(manager.log_files("u"))
        if "ready" in out:
            break
        await asyncio.sleep(0.05)
    assert "uid=0 gid=0\n" in out
    maps = [line.split() for line in out.splitlines() if line.startswith(" ")]
    assert maps == [["0", str(BASE), "65536"]] * 2
    assert "read-denied" in out and "Permission denied" in out
    assert "write-denied" in out
    with open(public) as f:
        assert f.read() == "host\n"
    # SIGTERM is ignored by a PID 1 without a handler: the grace period ends in cgroup.kill.
    done = await manager.stop("u", grace_s=0.3)
    assert done["state"] == "exited" and done["exit_code"] == 137


async def test_rootfs_with_dev_and_sys_inside_the_user_namespace(
    manager: WorkloadManager, open_dir: Path
) -> None:
    rootfs = os.path.join(open_dir, "rootfs")
    for d in ("bin", "dev", "sys", "tmp"):  # no /proc: the helper makes it as host root
        os.makedirs(os.path.join(rootfs, d))
    shutil.copy("/bin/busybox", os.path.join(rootfs, "bin", "busybox"))
    for tool in ("sh", "ls", "cat", "id", "head", "wc", "touch"):
        os.symlink("busybox", os.path.join(rootfs, "bin", tool))
    os.chown(os.path.join(rootfs, "tmp"), BASE, BASE)  # the workload's own, via the map
    script = (
        "id -u; ls /sys/class/net; head -c 3 /dev/urandom | wc -c; echo x > /dev/null && echo null;"
        " touch /tmp/mine && echo own-tmp; touch /bin/x || echo bin-denied; ls /proc/1/exe"
    )
    await manager.create(
        WorkloadSpec(
            name="r", argv=["/bin/sh", "-c", script], rootfs=rootfs, userns=True, userns_base=BASE
        )
    )
    out = await _exited(manager, "r")
    assert out.splitlines()[:5] == ["0", "lo", "3", "null", "own-tmp"], out
    assert "bin-denied" in out
    assert manager.inspect("r")["exit_code"] == 0
    assert os.stat(os.path.join(rootfs, "tmp", "mine")).st_uid == BASE


async def test_helper_failure_is_exit_125_with_the_reason(
    manager: WorkloadManager, open_dir: Path
) -> None:
    rootfs = os.path.join(open_dir, "rootfs")
    os.mkdir(rootfs)
    with open(os.path.join(rootfs, "proc"), "w"):
        pass  # a file where the /proc mount point should be
    await manager.create(WorkloadSpec(name="f", argv=["/bin/sh"], rootfs=rootfs, userns=True))
    out = await _exited(manager, "f")
    info = manager.inspect("f")
    assert info["exit_code"] == 125
    assert info["error"] == f"runtime setup failed: mount {rootfs}/proc: Not a directory"
    assert info["error"] in out


async def test_missing_binary_inside_the_user_namespace_is_127(manager: WorkloadManager) -> None:
    await manager.create(WorkloadSpec(name="m", argv=["/no/such/binary"], userns=True))
    out = await _exited(manager, "m")
    assert manager.inspect("m")["exit_code"] == 127
    assert "command not found" in out
