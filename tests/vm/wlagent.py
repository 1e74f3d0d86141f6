"""The workload API's dev server (agent.api.devserver) run for VM tests, and a tiny rootfs."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from agent.api.client import WorkloadClient
from tests import envcheck

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@dataclass
class Agent:
    root: str
    state: str
    sock: str
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "agent.api.devserver",
                "--root",
                self.root,
                "--state",
                self.state,
                "--socket",
                self.sock,
            ],
            cwd=REPO,
            stdout=subprocess.PIPE,
            # Its log goes to a file: a pipe nobody reads would block it once full.
            stderr=open(os.path.join(self.state, "devserver.log"), "ab"),  # noqa: SIM115
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # "devserver: ready" once the socket is bound
        assert b"ready" in line, line

    def sigkill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)

    @property
    def client(self) -> WorkloadClient:
        return WorkloadClient(self.sock)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "agent.cli", *args],
            cwd=REPO,
            capture_output=True,
            text=True,
            env=dict(os.environ, PYSTATS_SOCKET=self.sock),
            timeout=300,
        )

    def wait_state(self, name: str, states: set[str], timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            info = self.client.inspect(name)
            if info["state"] in states or time.monotonic() > deadline:
                return info
            time.sleep(0.1)

    def output(self, name: str) -> str:
        return b"".join(self.client.logs(name, follow=True)).decode()


@contextlib.contextmanager
def running_agent(prefix: str) -> Iterator[Agent]:
    """A dev server on a scratch cgroup of the VM with cpu, memory and pids enabled; its
    workloads are removed and the cgroup with them afterwards."""
    root = envcheck.require_vm()
    with open(os.path.join(root, "cgroup.subtree_control"), "w") as f:
        f.write("+cpu +memory +pids")
    with envcheck.scratch_cgroup(root, {"cpu", "memory", "pids"}) as cg:
        state = tempfile.mkdtemp(prefix=prefix)
        a = Agent(cg, state, os.path.join(state, "api.sock"))
        a.start()
        try:
            yield a
        finally:
            # Best effort, each alone (a pod's infra refuses rm: its pod goes with pod rm);
            # scratch_cgroup kills the rest.
            names: list[str] = []
            with contextlib.suppress(Exception):
                names = [w["name"] for w in a.client.listing(all_=True)]
            for name in names:
                with contextlib.suppress(Exception):
                    a.client.rm(name, force=True)
            a.stop()
            shutil.rmtree(state, ignore_errors=True)


def busybox_rootfs() -> str:
    """A tiny busybox rootfs (the benchmark uses the same shape)."""
    rootfs = tempfile.mkdtemp(prefix="pystats-rootfs-")
    for d in ("bin", "proc", "dev", "sys", "tmp"):
        os.mkdir(os.path.join(rootfs, d))
    shutil.copy("/bin/busybox", os.path.join(rootfs, "bin", "busybox"))
    for tool in ("sh", "ls", "cat", "hostname"):
        os.symlink("busybox", os.path.join(rootfs, "bin", tool))
    return rootfs
