"""Durable history on the VM's real cgroup v2 (issue 18): an OOM kill recorded with its victim
survives an agent SIGKILL and the cgroup's removal; `stats --at` shows the removed cgroup with
its last values; the per-cgroup OOM counter goes on after the restart."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests import envcheck
from tests.vm.promserver import free_port

pytestmark = [pytest.mark.vm, pytest.mark.timeout(1800)]
BIN = Path(sys.executable).parent


class Env:
    def __init__(self, tmp: Path, base: str) -> None:
        self.base = base
        self.state = str(tmp / "state")
        self.socket = str(tmp / "agent.sock")
        self.port = free_port()
        self.config = tmp / "agent.yaml"
        self.config.write_text(
            f"root: {base}\nstate_dir: {self.state}\nsocket: {self.socket}\n"
            f"metrics_listen: 127.0.0.1:{self.port}\ninterval: 1s\n"
        )
        self.log = tmp / "agent.log"
        self.env = dict(os.environ, PYSTATS_SOCKET=self.socket)
        self.agent: subprocess.Popen[bytes] | None = None

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / "pystats"), *args], capture_output=True, text=True, env=self.env,
            timeout=180,
        )  # fmt: skip

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.agent = subprocess.Popen(
                [str(BIN / "pystats-agent"), "--config", str(self.config)],
                stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True,
            )  # fmt: skip

        def up() -> bool:
            assert self.agent is not None
            if self.agent.poll() is not None:
                pytest.fail(f"the agent exited:\n{self.log.read_text(errors='replace')[-3000:]}")
            return self.cli("ps").returncode == 0

        # minutes under TCG while other VMs share the host's cores
        wait_for(f"the agent's API (log: {self.log})", up, timeout=600)

    def history(self, *args: str) -> object:
        r = self.cli(*args, "--state-dir", self.state)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)


def wait_for(what: str, ok: Callable[[], object], timeout: float = 240.0) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = ok()
        if got:
            return got
        time.sleep(1.0)
    pytest.fail(f"timed out waiting for {what}")


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    root = envcheck.require_vm()
    e = Env(tmp_path, os.path.join(root, f"pystats-hist-{uuid.uuid4().hex[:6]}"))
    try:
        yield e
    finally:
        if e.agent is not None and e.agent.poll() is None:
            e.agent.kill()
            e.agent.wait()
        if os.path.isdir(e.base):
            envcheck._kill_and_remove(e.base)


def _oom_events(env: Env) -> list[dict[str, object]]:
    evs = env.history("events", "--filter", "type=oom", "--format", "json")
    assert isinstance(evs, list)
    return [e for e in evs if e["workload"] == "oomer" and e["pid"]]


def _rows_at(env: Env, at: float) -> dict[str, dict[str, object]]:
    doc = env.history("stats", "--at", str(at), "--format", "json", "-a")
    assert isinstance(doc, dict)
    return {r["path"]: r for r in doc["rows"]}


def test_oom_kill_and_removed_cgroup_survive_sigkill(env: Env) -> None:
    env.start()
    hog = "b = bytearray(512 << 20); import time; time.sleep(60)"
    r = env.cli("run", "-d", "--name", "oomer", "--memory", "32M", "--", sys.executable, "-c", hog)
    assert r.returncode == 0, r.stderr
    found = wait_for("the OOM kill recorded with its victim", lambda: _oom_events(env))
    assert isinstance(found, list) and len(found) == 1, found
    kill: dict[str, object] = found[0]
    assert isinstance(kill["pid"], int) and kill["pid"] > 0 and kill["comm"], kill
    cgroup = str(kill["cgroup"])
    assert cgroup.endswith("oomer"), kill
    time.sleep(3)  # a few ticks of the cgroup after the kill
    seen_at = time.time()
    rows = _rows_at(env, seen_at)
    assert rows[cgroup]["memory_max"] == 32 << 20 and rows[cgroup]["name"] == "oomer"

    assert env.agent is not None
    os.kill(env.agent.pid, signal.SIGKILL)  # no stop event, the segment left open
    env.agent.wait()
    env.start()  # recovers the unfinished segment
    r = env.cli("inspect", "oomer")  # the kill and its victim, from the durable history
    assert r.returncode == 0, r.stderr
    kills = json.loads(r.stdout)["oom_kills"]
    assert [(k["pid"], k["command"]) for k in kills] == [(kill["pid"], kill["comm"])], kills
    r = env.cli("rm", "-f", "oomer")
    assert r.returncode == 0, r.stderr
    cgdir = os.path.join(os.path.dirname(env.base), cgroup)
    wait_for("the workload's cgroup to go", lambda: not os.path.exists(cgdir), 120)
    time.sleep(3)

    rows = _rows_at(env, seen_at)  # the cgroup no longer exists: its recorded values do
    row = rows[cgroup]
    assert (
        row["memory_max"] == 32 << 20
        and isinstance(row["oom_kills"], int)
        and row["oom_kills"] >= 1
    ), row
    # ...and today it is gone: kept as the live store keeps it, final and marked gone
    assert _rows_at(env, time.time())[cgroup]["gone"] is True
    (again,) = _oom_events(env)
    assert (again["pid"], again["comm"]) == (kill["pid"], kill["comm"])

    # The counter Prometheus sees went on across the restart (seeded from recorded events).
    def metric() -> str | None:
        with urllib.request.urlopen(f"http://127.0.0.1:{env.port}/metrics", timeout=30) as resp:
            text: str = resp.read().decode()
        lines = [x for x in text.splitlines() if x.startswith("pystats_cgroup_oom_kills_recorded")]
        return next((x for x in lines if f'cgroup="{cgroup}"' in x), None)

    line = wait_for("the recorded OOM counter", metric)
    assert isinstance(line, str) and line.endswith(" 1") and 'workload="oomer"' in line, line
    assert "Traceback" not in env.log.read_text(errors="replace")
