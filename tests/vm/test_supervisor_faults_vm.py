"""Faults of the supervisor, injected on the VM's real cgroup v2 through the dev-server agent:
a full disk under the workloads' state (a 1 MiB tmpfs mounted by the test) and a shim killed
under a `--restart always` workload."""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator

import pytest

from agent.api.client import ApiError
from cgroupfs import reader
from cgroupfs.paths import CgroupRoot
from tests import envcheck
from tests.vm.wlagent import Agent, running_agent

pytestmark = pytest.mark.vm


@pytest.fixture
def small_disk_agent() -> Iterator[Agent]:
    """A dev server whose workload records and logs live on a 1 MiB tmpfs."""
    root = envcheck.require_vm()
    with open(os.path.join(root, "cgroup.subtree_control"), "w") as f:
        f.write("+cpu +memory +pids")
    with envcheck.scratch_cgroup(root, {"cpu", "memory", "pids"}) as cg:
        state = tempfile.mkdtemp(prefix="pystats-enospc-")
        wl = os.path.join(state, "workloads")
        os.mkdir(wl, 0o700)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1M,mode=700", "tmpfs", wl], check=True)
        a = Agent(cg, state, os.path.join(state, "api.sock"))
        try:
            a.start()
            yield a
        finally:
            try:
                a.stop()  # the scratch cgroup's removal kills what is left
            except subprocess.TimeoutExpired:  # a loaded emulated VM can be that slow
                a.sigkill()
            subprocess.run(["umount", "-l", wl], check=False)
            shutil.rmtree(state, ignore_errors=True)


def test_a_full_disk_drops_output_but_keeps_the_workload_and_its_exit_code(
    small_disk_agent: Agent,
) -> None:
    agent = small_disk_agent
    # 3 MB of output into 1 MiB of disk, then a pause (the workload must still be running,
    # its shim alive), then an exit code of its own.
    script = "head -c 3000000 /dev/zero | tr '\\0' x; echo; echo after; sleep 2; exit 7"
    agent.client.create({"name": "noisy", "argv": ["sh", "-c", script]})
    info = agent.wait_state("noisy", {"exited"}, timeout=300)  # TCG, shared cores
    assert (info["state"], info["exit_code"], info["signal"]) == ("exited", 7, None), info
    assert info["error"] is None, info
    wdir = os.path.join(agent.state, "workloads", "noisy")
    shown = json.loads(agent.cli("inspect", "noisy").stdout)
    assert shown["log_bytes_dropped"] == info["log_bytes_dropped"]
    assert 1_000_000 < info["log_bytes_dropped"] <= 3_000_008, info
    with open(os.path.join(wdir, "status.json")) as f:
        assert json.load(f)["log_bytes_dropped"] == info["log_bytes_dropped"]
    assert glob.glob(os.path.join(wdir, "*.tmp*")) == [], os.listdir(wdir)
    # With the disk full to the last page, a new workload is refused with a clear error and
    # leaves nothing behind; with room again it runs.
    filler = os.path.join(agent.state, "workloads", "filler")
    with open(filler, "wb", buffering=0) as f, contextlib.suppress(OSError):
        while True:
            f.write(b"\0" * 4096)
    with pytest.raises(ApiError, match="No space left on device"):
        agent.client.create({"name": "next", "argv": ["sh", "-c", "exit 3"]})
    assert sorted(os.listdir(os.path.join(agent.state, "workloads"))) == ["filler", "noisy"]
    os.unlink(filler)
    agent.client.create({"name": "next", "argv": ["sh", "-c", "exit 3"]})
    assert agent.wait_state("next", {"exited"}, timeout=300)["exit_code"] == 3


def test_a_killed_shim_takes_its_workload_down_before_the_restart() -> None:
    with running_agent("pystats-shimkill-") as agent:
        first = agent.client.create(
            {"name": "always", "argv": ["sleep", "1000"], "restart": "always"}
        )
        pid = first["pid"]
        os.kill(first["shim_pid"], signal.SIGKILL)
        deadline = time.monotonic() + 120
        while True:
            info = agent.client.inspect("always")
            if info["run"] == 2 and info["state"] == "running":
                break
            assert time.monotonic() < deadline, info
            time.sleep(0.1)
        with contextlib.suppress(FileNotFoundError), open(f"/proc/{pid}/cmdline", "rb") as f:
            assert b"sleep" not in f.read(), "the first copy still runs"
        root = CgroupRoot(agent.root)
        assert reader.read_procs(root, "workloads/always") == (info["pid"],)
        assert info["restart_count"] == 1
