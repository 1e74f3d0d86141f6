"""Issue 17.7 against the real agent on this host's controller-less v2 tree: the CLI behind a
closed pipe, signals checked, the socket removed by a clean stop, SIGHUP turning a policy on,
and `pystats policy plan|explain` working on the running agent's root."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.api.client import WorkloadClient
from tests.host.test_agent_host import Agent, agent, request  # noqa: F401 (a fixture)

pytestmark = pytest.mark.host
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def wagent(agent: Agent) -> Iterator[Agent]:  # noqa: F811 (the imported fixture)
    """test_agent_host's real agent, whose workloads are removed before it stops."""
    yield agent
    if agent.proc is not None and agent.proc.poll() is None:
        for w in WorkloadClient(agent.sock).listing(all_=True):
            WorkloadClient(agent.sock).rm(w["name"], force=True)


def cli(sock: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent.cli", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=dict(os.environ, PYSTATS_SOCKET=sock),
        timeout=120,
    )


def _closed_pipe(sock: str, *args: str) -> tuple[int, str]:
    """Run the CLI with its stdout a pipe whose reader has already gone (`| head -1`)."""
    r, w = os.pipe()
    os.close(r)
    p = subprocess.run(
        [sys.executable, "-m", "agent.cli", *args],
        cwd=REPO,
        stdout=w,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYSTATS_SOCKET=sock),
        timeout=120,
    )
    os.close(w)
    return p.returncode, p.stderr


def test_ps_and_inspect_into_a_closed_pipe_exit_141_quietly(
    wagent: Agent, host_cgroup: str
) -> None:
    wagent.start(wagent.config(host_cgroup))
    WorkloadClient(wagent.sock).create({"name": "pipe", "argv": ["sleep", "1000"]})
    for args in (("ps", "-a"), ("inspect", "pipe"), ("ps", "--json")):
        code, err = _closed_pipe(wagent.sock, *args)
        assert (code, err) == (141, ""), (args, code, err)


def test_bad_signal_and_empty_name_are_one_line_errors(wagent: Agent, host_cgroup: str) -> None:
    wagent.start(wagent.config(host_cgroup))
    WorkloadClient(wagent.sock).create({"name": "sig", "argv": ["sleep", "1000"]})
    p = cli(wagent.sock, "kill", "-s", "999", "sig")
    assert p.returncode == 125 and "a signal number is 1 to 64" in p.stderr, p.stderr
    status, text = request(wagent.sock, "POST", "/v1/workloads/sig/kill?signal=999")
    assert status == 400 and "unknown signal" in text
    p = cli(wagent.sock, "inspect", "")
    assert p.returncode == 125 and "a workload name cannot be empty" in p.stderr, p.stderr
    p = cli(wagent.sock, "run", "--memory", "-5M", "--", "true")
    assert p.returncode == 125 and "expected one argument" not in p.stderr, p.stderr
    assert "argument --memory: cannot read memory size '-5M'" in p.stderr
    assert WorkloadClient(wagent.sock).inspect("sig")["state"] == "running"
    assert "Traceback" not in wagent.log.read_text()


def test_a_clean_stop_removes_the_socket(wagent: Agent, host_cgroup: str) -> None:
    wagent.start(wagent.config(host_cgroup))
    assert os.path.exists(wagent.sock)
    wagent.stop()
    assert wagent.proc is not None and wagent.proc.returncode == 0
    assert not os.path.lexists(wagent.sock)


def test_sighup_turns_a_policy_on_and_policy_cli_uses_the_agents_root(
    wagent: Agent, host_cgroup: str, tmp_path: Path
) -> None:
    token = f"{random.randint(1000, 9999)}.{random.randint(100000, 999999)}"
    policy = tmp_path / "p.yaml"
    policy.write_text(
        "groups:\n  - name: batch\n    limits: {memory.max: 64M}\n"
        f"    match:\n      - cmdline: ['^sleep {token}$']\n"
    )
    config = wagent.config(host_cgroup)
    wagent.start(config)
    sleeper = subprocess.Popen(["sleep", token])
    try:
        wagent.config(host_cgroup, f"policy: {policy}\n")  # the same file, now with a policy
        assert wagent.proc is not None
        wagent.proc.send_signal(signal.SIGHUP)
        batch = f"{wagent.root}/policies/batch"
        deadline = time.monotonic() + 30
        while not _holds(batch, sleeper.pid):
            assert time.monotonic() < deadline, wagent.log.read_text()
            time.sleep(0.2)
        assert "policy engine starts" in wagent.log.read_text()
        # No --root: the running agent's, asked on its socket.
        p = cli(wagent.sock, "policy", "explain", str(sleeper.pid), "--policy", str(policy))
        assert p.returncode == 0, p.stderr
        assert "result: already in batch" in p.stdout, p.stdout
        # memory.max cannot be set on this controller-less tree: the plan does not list it.
        p = cli(wagent.sock, "policy", "plan", str(policy))
        assert p.returncode == 0, p.stderr
        assert p.stdout.strip() == "nothing to do: the tree already matches the policy", p.stdout
        p = cli(wagent.sock, "policy", "explain", "999999", "--policy", str(policy))
        assert p.returncode == 1 and "process 999999 does not exist" in p.stderr, p
    finally:
        sleeper.kill()
        sleeper.wait()


def _holds(cgroup: str, pid: int) -> bool:
    try:
        with open(f"{cgroup}/cgroup.procs") as f:
            return str(pid) in f.read().split()
    except FileNotFoundError:
        return False


async def test_a_removed_workload_keeps_its_label_while_its_series_live(host_cgroup: str) -> None:
    import asyncio
    import shutil
    import tempfile

    from cgroupfs.paths import CgroupRoot
    from workloads.lifecycle.manager import WorkloadManager
    from workloads.runtime.spec import WorkloadSpec

    state = tempfile.mkdtemp(prefix="pystats-cli-host-")
    m = WorkloadManager(CgroupRoot(host_cgroup), state, use_fork_server=False)
    await m.start()
    task = asyncio.create_task(m.run())
    try:
        await m.create(WorkloadSpec(name="gone", argv=["true"]))
        await m.rm("gone", force=True)
        assert "gone" not in m.states()
        # Prometheus keeps the last samples 5 minutes: they still say which workload it was.
        assert m.labels_for_cgroup("workloads/gone") == "gone"
        assert m.labels_for_cgroup("workloads/never") is None
    finally:
        await m.close()
        await task
        shutil.rmtree(state, ignore_errors=True)
