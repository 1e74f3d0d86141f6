"""The whole agent, end to end, on the VM's real cgroup v2 (issue 8).

One agent with a config and a policy; workloads launched with the CLI; an existing process
placed; /metrics and `pystats stats` show them; a broken policy on SIGHUP keeps the old one;
SIGKILL + restart re-adopts the workloads; SIGTERM stops cleanly with workloads left running.
Timeouts are generous: Python under the VM's software emulation is ~10x slower.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import envcheck
from tests.unixhttp import UnixHTTPConnection
from tests.vm.promserver import (
    PROMETHEUS,
    free_port,
    prom_api,
    prometheus_server,
    scraped_up,
    wait_for,
)

# Many agent starts and CLI calls under TCG emulation: far longer than the 300 s default.
pytestmark = [pytest.mark.vm, pytest.mark.timeout(900)]

BIN = Path(sys.executable).parent
MARKER = "pystats-e2e-marker"


def _cgroup_of(pid: int) -> str:
    with open(f"/proc/{pid}/cgroup") as f:
        return f.read().strip().split("::", 1)[1]


class Env:
    def __init__(self, tmp: Path, base: str) -> None:
        self.tmp = tmp
        self.base = base
        self.socket = str(tmp / "agent.sock")
        self.port = free_port()
        self.policy = tmp / "policy.yaml"
        self.config = tmp / "agent.yaml"
        self.log = tmp / "agent.log"
        self.agent: subprocess.Popen[bytes] | None = None
        # systemd's side of Type=notify and WatchdogSec=2s: the agent must say READY, then pet.
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(str(tmp / "notify.sock"))
        self.env = dict(
            os.environ,
            PYSTATS_SOCKET=self.socket,
            NOTIFY_SOCKET=str(tmp / "notify.sock"),
            WATCHDOG_USEC="2000000",
        )

    def start_agent(self) -> subprocess.Popen[bytes]:
        with open(self.log, "ab") as log:
            self.agent = subprocess.Popen(
                [str(BIN / "pystats-agent"), "--config", str(self.config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,
            )
        wait_for("the agent's API socket", lambda: self.cli("ps").returncode == 0)
        return self.agent

    def cli(self, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / "pystats"), *args],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=timeout,
        )

    def ps(self) -> dict[str, dict[str, object]]:
        r = self.cli("ps", "-a", "--json")
        assert r.returncode == 0, r.stderr
        return {w["name"]: w for w in json.loads(r.stdout)}

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    root = envcheck.require_vm()
    base = os.path.join(root, f"pystats-e2e-{uuid.uuid4().hex[:6]}")
    e = Env(tmp_path, base)
    e.policy.write_text(
        "version: 1\ngroups:\n  - name: placed\n    limits: {memory.max: 64M}\n"
        f"    match:\n      - cmdline: ['{MARKER}']\n"
    )
    e.config.write_text(
        f"root: {base}\nstate_dir: {tmp_path / 'state'}\nsocket: {e.socket}\n"
        f"metrics_listen: 127.0.0.1:{e.port}\npolicy: {e.policy}\ninterval: 1s\n"
        "reconcile_interval: 2s\nlog_level: info\n"
    )
    try:
        yield e
    finally:
        if e.agent is not None and e.agent.poll() is None:
            e.agent.kill()
            e.agent.wait()
        # Workloads and their shims outlive the agent by design: remove them explicitly.
        if os.path.isdir(base):
            envcheck._kill_and_remove(base)


def test_agent_end_to_end(env: Env) -> None:
    existing = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(900)", MARKER], start_new_session=True
    )
    try:
        _run_scenario(env, existing.pid)
    finally:
        existing.kill()
        existing.wait()


def _notifications(sock: socket.socket, want: set[str], timeout: float = 60.0) -> list[str]:
    got: list[str] = []
    sock.settimeout(timeout)
    while not want <= {m.split("=")[0] for m in got}:
        got += sock.recv(4096).decode().splitlines()
    return got


def _run_scenario(env: Env, existing: int) -> None:
    agent = env.start_agent()
    # READY=1 (after the first tick), then WATCHDOG=1 every second.
    got = _notifications(env.notify, {"READY", "WATCHDOG"})
    assert "READY=1" in got and "WATCHDOG=1" in got, got
    env.notify.close()  # from now on the agent's notifications fail; it must not care

    # Workloads through the CLI, each in its own limited cgroup.
    for name in ("w1", "w2", "w3"):
        r = env.cli("run", "-d", "--name", name, "--memory", "64M", "--", "sleep", "900")
        assert r.returncode == 0, r.stderr
    r = env.cli("run", "-d", "--name", "short", "--", "sh", "-c", "sleep 8; exit 7")
    assert r.returncode == 0, r.stderr
    # The agent raised its own fd limit for the collector; a workload gets the usual 1024.
    r = env.cli("run", "-d", "--name", "nofile", "--", "sh", "-c", "ulimit -n")
    assert r.returncode == 0, r.stderr
    with open(os.path.join(env.base, "workloads", "w1", "memory.max")) as f:
        assert f.read().strip() == str(64 * 1024 * 1024)

    # The process that existed before the agent is placed by the policy, limit in force.
    placed = os.path.join(env.base, "policies", "placed")
    rel = "/" + os.path.relpath(placed, "/sys/fs/cgroup")
    wait_for("the existing process to be placed", lambda: _cgroup_of(existing).startswith(rel))
    with open(os.path.join(placed, "memory.max")) as f:
        assert f.read().strip() == str(64 * 1024 * 1024)

    # /metrics serves the workloads with their label.
    def metrics() -> str:
        url = f"http://127.0.0.1:{env.port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as resp:
            return str(resp.read().decode())

    wait_for("w1 in /metrics", lambda: 'workload="w1"' in metrics())
    text = metrics()
    assert "pystats_cgroup_cpu_usage_seconds_total" in text
    assert "pystats_build_info" in text
    assert "pystats_agent_resident_memory_bytes" in text
    assert int(env.ps()["nofile"]["exit_code"]) == 0  # type: ignore[call-overload]
    assert env.cli("logs", "nofile").stdout.strip() == "1024"

    # A real Prometheus scrapes the agent and sees the workloads by name.
    if os.access(PROMETHEUS, os.X_OK) or os.environ.get("PYSTATS_REQUIRE_ENV") == "1":
        (env.tmp / "prom").mkdir()
        with prometheus_server(env.tmp / "prom", env.port) as prom:
            wait_for("Prometheus to scrape the agent", lambda: scraped_up(prom))
            q = 'pystats_workload_state{workload="w1",state="running"}'
            wait_for("w1 in Prometheus", lambda: prom_api(prom, "/api/v1/query", query=q)["result"])

    # `pystats stats` through the agent shows the workloads by name.
    r = env.cli("stats", "--no-stream", "--format", "json", "--socket", env.socket)
    assert r.returncode == 0, r.stderr
    assert "w1" in r.stdout and "w3" in r.stdout

    # The detail pane's recent events for w1's cgroup include its launch (the agent's own event).
    def history(cgroup: str) -> dict[str, object]:
        conn = UnixHTTPConnection(env.socket, timeout=30)
        conn.request("GET", "/v1/history?" + urllib.parse.urlencode({"cgroup": cgroup}))
        resp = conn.getresponse()
        assert resp.status == 200, resp.read()
        return dict(json.loads(resp.read()))

    def kinds(cgroup: str) -> set[str]:
        return {e["kind"] for e in history(os.path.relpath(cgroup, "/sys/fs/cgroup"))["events"]}  # type: ignore[attr-defined]

    assert "launch" in kinds(os.path.join(env.base, "workloads", "w1"))
    assert "placement" in kinds(placed)  # the pre-existing process, moved by the policy

    # SIGHUP with a broken policy: rejected, the old one stays, nothing moves.
    good = env.policy.read_text()
    env.policy.write_text(good.replace("memory.max: 64M", "memory.max: 64 parsecs"))
    agent.send_signal(signal.SIGHUP)
    wait_for("the rejection in the log", lambda: "rejected" in env.log_text(), timeout=60)
    time.sleep(3)  # a reconcile or two under the broken file
    assert _cgroup_of(existing).startswith(rel)
    assert agent.poll() is None
    env.policy.write_text(good)

    # SIGKILL: the workloads keep running; "short" exits while the agent is down.
    pids = {n: int(env.ps()[n]["pid"]) for n in ("w1", "w2", "w3")}  # type: ignore[call-overload]
    agent.kill()
    agent.wait()
    time.sleep(10)
    for name, pid in pids.items():
        os.kill(pid, 0)  # raises if the workload died with the agent
        assert _cgroup_of(pid).endswith(f"/workloads/{name}"), name

    # Restart: re-adopted, and the exit that happened meanwhile is known.
    agent = env.start_agent()
    ps = env.ps()
    assert {ps[n]["state"] for n in ("w1", "w2", "w3")} == {"running"}
    wait_for("short's exit code", lambda: env.ps()["short"]["exit_code"] == 7, timeout=60)

    # SIGTERM: a clean stop, exit status 0, workloads still running.
    agent.terminate()
    assert agent.wait(timeout=60) == 0
    for pid in pids.values():
        os.kill(pid, 0)
