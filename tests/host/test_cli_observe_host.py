# ruff: noqa: F811  (pytest fixtures imported from the agent tests are named as parameters)
"""Issue 17.5 against the real agent on this host's v2 tree: ps STATUS/CREATED, -q, --filter,
--format, inspect --format, stats NAME..., top NAME."""

from __future__ import annotations

import json
import re

import pytest

from agent.api.client import WorkloadClient
from tests.host.test_agent_host import Agent, agent  # noqa: F401 (a fixture)
from tests.host.test_cli_defects_host import cli, wagent  # noqa: F401 (a fixture)

pytestmark = pytest.mark.host


def test_ps_and_inspect_read_like_dockers(wagent: Agent, host_cgroup: str) -> None:
    wagent.start(wagent.config(host_cgroup))
    c = WorkloadClient(wagent.sock)
    c.create({"name": "up", "argv": ["sleep", "1000"]})
    c.create({"name": "done", "argv": ["sh", "-c", "exit 3"]})
    assert cli(wagent.sock, "wait", "done").stdout == "3\n"
    lines = cli(wagent.sock, "ps", "-a").stdout.splitlines()
    assert lines[0].split()[:3] == ["NAME", "STATUS", "CREATED"], lines
    by_name = {line.split()[0]: line for line in lines[1:]}
    assert re.search(r"\bExited \(3\) (Less than a second|\d+ seconds?) ago\b", by_name["done"])
    assert re.search(r"\bUp (Less than a second|\d+ seconds?)\b", by_name["up"])
    assert cli(wagent.sock, "ps", "-q").stdout == "up\n"
    assert cli(wagent.sock, "ps", "-aq", "--filter", "status=exited").stdout == "done\n"
    p = cli(wagent.sock, "ps", "-a", "--format", "{{.Names}}:{{.State}}", "-f", "name=o")
    assert p.stdout.splitlines() == ["done:exited"], p.stderr
    p = cli(wagent.sock, "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "done", "up")
    assert p.stdout == "exited 3\nrunning 0\n", p.stderr
    pid = cli(wagent.sock, "inspect", "--format", "{{.State.Pid}}", "up").stdout.strip()
    assert pid == str(c.inspect("up")["pid"])
    both = json.loads(cli(wagent.sock, "inspect", "up", "done").stdout)
    assert [w["name"] for w in both] == ["up", "done"]
    bad = cli(wagent.sock, "ps", "--format", "{{range .Names}}")
    assert bad.returncode == 125 and "unknown function 'range'" in bad.stderr


def test_top_and_stats_of_named_workloads(wagent: Agent, host_cgroup: str) -> None:
    wagent.start(wagent.config(host_cgroup))
    c = WorkloadClient(wagent.sock)
    c.create({"name": "t1", "argv": ["sh", "-c", "sleep 1001 & sleep 1002"]})
    c.create({"name": "t2", "argv": ["sleep", "1003"]})
    p = cli(wagent.sock, "top", "t1")
    assert p.returncode == 0, p.stderr
    assert p.stdout.split("\n")[0].split()[:3] == ["UID", "PID", "PPID"]
    assert "sleep 1001" in p.stdout and "sleep 1002" in p.stdout and "1003" not in p.stdout
    p = cli(wagent.sock, "top", "t2", "-o", "pid,comm")
    assert p.stdout.split() == ["PID", "COMMAND", str(c.inspect("t2")["pid"]), "sleep"]
    p = cli(wagent.sock, "stats", "--no-stream", "--format", "json", "t1")
    assert p.returncode == 0, p.stderr
    rows = json.loads(p.stdout)["rows"]
    assert [r["workload"] for r in rows] == ["t1"]
    p = cli(wagent.sock, "stats", "--no-stream", "t1", "ghost")
    assert p.returncode == 1 and "no such workload: ghost" in p.stderr


def test_logs_tail(wagent: Agent, host_cgroup: str) -> None:
    wagent.start(wagent.config(host_cgroup))
    p = cli(
        wagent.sock, "run", "--name", "lg", "--", "sh", "-c", "for i in 1 2 3 4 5; do echo $i; done"
    )
    assert p.returncode == 0, p.stderr
    assert cli(wagent.sock, "logs", "--tail", "2", "lg").stdout == "4\n5\n"
    assert cli(wagent.sock, "logs", "-n", "all", "lg").stdout == "1\n2\n3\n4\n5\n"
    assert cli(wagent.sock, "logs", "-f", "--tail", "1", "lg").stdout == "5\n"
    bad = cli(wagent.sock, "logs", "--tail", "x", "lg")
    assert bad.returncode == 125 and "not a number of lines" in bad.stderr


def test_launch_is_among_the_workloads_events_at_once(wagent: Agent, host_cgroup: str) -> None:
    """The create path saw the workload start, not the watcher: it must still wake the event
    log, so the detail pane lists the launch by the next tick, not at the watcher's next
    periodic look (5 s later)."""
    import time
    import urllib.parse

    from tests.unixhttp import UnixHTTPConnection

    def get(url: str) -> dict[str, object]:
        conn = UnixHTTPConnection(wagent.sock, timeout=30)
        conn.request("GET", url)
        resp = conn.getresponse()
        body = resp.read()
        assert resp.status == 200, body
        return dict(json.loads(body))

    wagent.start(wagent.config(host_cgroup))
    WorkloadClient(wagent.sock).create({"name": "w1", "argv": ["sleep", "1000"]})
    deadline = time.monotonic() + 30
    while True:  # the first tick that collects w1's cgroup (ticks are 1 s apart)
        rows = get("/v1/stats?all=1")["rows"]
        paths = [r["path"] for r in rows if str(r["path"]).endswith("workloads/w1")]  # type: ignore[attr-defined]
        if paths or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert paths, "w1 never collected"
    events = get("/v1/history?" + urllib.parse.urlencode({"cgroup": paths[0]}))["events"]
    assert "launch" in [e["kind"] for e in events], events  # type: ignore[attr-defined]
