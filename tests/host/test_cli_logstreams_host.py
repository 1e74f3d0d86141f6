# ruff: noqa: F811  (pytest fixtures imported from the agent tests are named as parameters)
"""Issue 17.5 against the real agent on this host's v2 tree: `pystats logs` keeps stdout and
stderr apart, -t puts docker's RFC3339Nano time before each line, --since/--until/--tail pick
lines, and raw logs of an earlier version are still shown."""

from __future__ import annotations

import os
import re
import time
from datetime import datetime

import pytest

from agent.api.client import WorkloadClient
from tests.host.test_agent_host import Agent, agent  # noqa: F401 (a fixture)
from tests.host.test_cli_defects_host import cli, wagent  # noqa: F401 (a fixture)

pytestmark = pytest.mark.host

STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z "


def _wait_exit(c: WorkloadClient, name: str) -> dict[str, object]:
    deadline = time.monotonic() + 30
    while (info := c.inspect(name))["state"] != "exited" and time.monotonic() < deadline:
        time.sleep(0.05)
    return info


def test_logs_streams_timestamps_and_time_window(wagent: Agent, host_cgroup: str) -> None:
    wagent.start(wagent.config(host_cgroup))
    c = WorkloadClient(wagent.sock)
    script = "echo out1; echo err1 >&2; sleep 1.2; printf 'out2\\npart'; echo err2 >&2"
    p = cli(wagent.sock, "run", "-d", "--name", "lg", "--", "sh", "-c", script)
    assert p.returncode == 0, p.stderr
    assert _wait_exit(c, "lg")["exit_code"] == 0

    p = cli(wagent.sock, "logs", "lg")
    assert (p.returncode, p.stdout, p.stderr) == (0, "out1\nout2\npart", "err1\nerr2\n")

    p = cli(wagent.sock, "logs", "-t", "lg")
    assert re.fullmatch(f"{STAMP}out1\n{STAMP}out2\n{STAMP}part", p.stdout), p.stdout
    assert re.fullmatch(f"{STAMP}err1\n{STAMP}err2\n", p.stderr), p.stderr
    # The times are the shim's reading times: out2 came 1.2 s after out1.
    first = p.stdout.splitlines()[0].split()[0]
    soon = str(datetime.fromisoformat(first[:26] + "+00:00").timestamp() + 0.6)  # Unix seconds
    p = cli(wagent.sock, "logs", "--since", first, "--until", soon, "lg")
    assert (p.stdout, p.stderr) == ("out1\n", "err1\n")
    p = cli(wagent.sock, "logs", "--since", soon, "lg")
    assert (p.stdout, p.stderr) == ("out2\npart", "err2\n")
    p = cli(wagent.sock, "logs", "--until", "10m", "lg")  # none until 10 minutes ago
    assert (p.returncode, p.stdout, p.stderr) == (0, "", "")
    p = cli(wagent.sock, "logs", "--since", "10m", "--until", soon, "lg")
    assert (p.stdout, p.stderr) == ("out1\n", "err1\n")
    p = cli(wagent.sock, "logs", "--tail", "2", "lg")
    assert (p.stdout, p.stderr) == ("out2\npart", "err2\n")  # "part" is no line yet
    p = cli(wagent.sock, "logs", "--since", "yesterday-ish", "lg")
    assert p.returncode == 125 and "RFC3339" in p.stderr and "Traceback" not in p.stderr


def test_follow_keeps_streams_apart(wagent: Agent, host_cgroup: str) -> None:
    wagent.start(wagent.config(host_cgroup))
    script = "sleep 0.5; echo a; echo b >&2; sleep 0.5; echo c"
    p = cli(wagent.sock, "run", "-d", "--name", "fl", "--", "sh", "-c", script)
    assert p.returncode == 0, p.stderr
    p = cli(wagent.sock, "logs", "-f", "fl")
    assert (p.returncode, p.stdout, p.stderr) == (0, "a\nc\n", "b\n")


def test_raw_logs_of_an_earlier_version_are_still_shown(wagent: Agent, host_cgroup: str) -> None:
    wagent.start(wagent.config(host_cgroup))
    c = WorkloadClient(wagent.sock)
    p = cli(wagent.sock, "run", "-d", "--name", "old", "--", "sh", "-c", "echo new; echo e >&2")
    assert p.returncode == 0, p.stderr
    assert _wait_exit(c, "old")["exit_code"] == 0
    wdir = os.path.dirname(str(c.inspect("old")["log_path"]))
    with open(os.path.join(wdir, "output.log"), "wb") as f:  # what an earlier shim wrote
        f.write(b"earlier 1\nearlier 2\n")
    p = cli(wagent.sock, "logs", "old")
    assert (p.stdout, p.stderr) == ("earlier 1\nearlier 2\nnew\n", "e\n")
    p = cli(wagent.sock, "logs", "--tail", "3", "old")
    assert (p.stdout, p.stderr) == ("earlier 2\nnew\n", "e\n")
    p = cli(wagent.sock, "logs", "--since", "1h", "old")  # no times in the old file
    assert (p.stdout, p.stderr) == ("new\n", "e\n")
