# ruff: noqa: F811  (pytest fixtures imported from the agent tests are named as parameters)
"""Issue 17.2 --init: with --rootfs (the host's static tini bound read-only into the root, as
docker binds docker-init), and a stop signal sent before the workload has exec'd is not lost
(PID 1 of a new PID namespace drops signals it has no handler for: the workload is started with
them blocked, and acts on them just before exec; workloads.runtime.startsignals)."""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

import pytest

from agent.api.client import WorkloadClient
from tests.host.test_agent_host import Agent, agent  # noqa: F401 (a fixture)
from tests.host.test_cli_defects_host import cli, wagent  # noqa: F401 (a fixture)
from workloads.runtime import linux, startsignals

pytestmark = pytest.mark.host


def _busybox_rootfs(tmp_path: Path) -> str:
    root = tmp_path / "rootfs"
    for d in ("bin", "proc", "dev", "sys", "tmp"):
        (root / d).mkdir(parents=True)
    tmp_path.chmod(0o755)
    shutil.copy("/bin/busybox", root / "bin" / "busybox")
    for tool in ("sh", "sleep", "ps", "cat"):
        (root / "bin" / tool).symlink_to("busybox")
    return str(root)


def test_init_with_rootfs_is_pid_1_and_stop_ends_at_once_with_143(
    wagent: Agent, host_cgroup: str, tmp_path: Path
) -> None:
    wagent.start(wagent.config(host_cgroup))
    c = WorkloadClient(wagent.sock)
    root = _busybox_rootfs(tmp_path)
    p = cli(wagent.sock, "run", "--rootfs", root, "--init", "--", "cat", "/proc/1/cmdline")
    assert p.returncode == 0, p.stderr
    assert p.stdout.split("\0")[:2] == ["/run/pystats-init", "--"]  # tini is PID 1
    p = cli(wagent.sock, "run", "-d", "--name", "ri", "--rootfs", root, "--init", "--",
            "sleep", "1000")  # fmt: skip
    assert p.returncode == 0, p.stderr
    t0 = time.monotonic()
    info = c.stop("ri")
    took = time.monotonic() - t0
    print(f"\nstop of sleep under --init in a rootfs: {took:.3f} s")
    assert info["exit_code"] == 143, info
    assert took < 5  # the grace period (10 s) did not run out


def _pid1_child(block: bool) -> int:
    """Fork PID 1 of a new PID namespace, SIGTERM it during its 'setup' (before it could have a
    handler), and return its exit status: 128 + 15 when the signal was kept for it."""
    r, w = os.pipe()
    mask = startsignals.block_all() if block else None
    pid = os.fork()
    if pid == 0:
        try:
            os.close(w)
            os.read(r, 1)  # the setup: the parent signals meanwhile
            fatal = startsignals.release()
            os._exit(0 if fatal is None else 128 + fatal)
        finally:
            os._exit(1)
    if mask is not None:
        startsignals.restore(mask)
    os.close(r)
    time.sleep(0.1)
    os.kill(pid, signal.SIGTERM)
    time.sleep(0.1)
    os.close(w)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def _in_new_pid_namespace(block: bool) -> int:
    pid = os.fork()  # unshare(CLONE_NEWPID) changes where this process's children go: in a child
    if pid == 0:
        try:
            linux.unshare(linux.CLONE_NEWPID)
            os._exit(_pid1_child(block))
        finally:
            os._exit(99)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_a_signal_before_exec_is_kept_only_when_blocked() -> None:
    # Unblocked, PID 1 without a handler loses the SIGTERM (the kernel's rule: the bug)...
    assert _in_new_pid_namespace(block=False) == 0
    # ...blocked, it is pending when the workload is released, which ends as tini would.
    assert _in_new_pid_namespace(block=True) == 128 + signal.SIGTERM
