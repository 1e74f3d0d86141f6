# ruff: noqa: F811  (pytest fixtures imported from the agent tests are named as parameters)
"""Issue 17.3 against the real agent on this host's controller-less v2 tree: limits whose
controller is missing are refused in one line before any write, --oom-score-adj (a /proc file)
is applied, and run/update values beyond the host are refused."""

from __future__ import annotations

import pytest

from agent.api.client import WorkloadClient
from tests.host.test_agent_host import Agent, agent  # noqa: F401 (a fixture)
from tests.host.test_cli_defects_host import cli, wagent  # noqa: F401 (a fixture)

pytestmark = pytest.mark.host


def test_update_on_a_controller_less_tree(wagent: Agent, host_cgroup: str) -> None:
    wagent.start(wagent.config(host_cgroup))
    c = WorkloadClient(wagent.sock)
    c.create({"name": "u", "argv": ["sleep", "1000"]})
    pid = c.inspect("u")["pid"]
    p = cli(wagent.sock, "update", "--oom-score-adj", "300", "u")
    assert (p.returncode, p.stdout) == (0, "u\n"), p.stderr
    with open(f"/proc/{pid}/oom_score_adj") as f:
        assert f.read().strip() == "300"
    assert c.inspect("u")["updated_limits"] == {"oom_score_adj": "300"}
    p = cli(wagent.sock, "update", "--memory", "64M", "--oom-score-adj", "-100", "u")
    assert p.returncode == 1 and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert "controller memory is not available" in p.stderr
    with open(f"/proc/{pid}/oom_score_adj") as f:
        assert f.read().strip() == "300"  # nothing was written
    p = cli(wagent.sock, "update", "--cpus", "1000", "u")
    assert p.returncode == 1 and "CPUs" in p.stderr, p.stderr
    p = cli(wagent.sock, "run", "--cpus", "1000", "--", "true")
    assert p.returncode == 125 and "this host has" in p.stderr, p.stderr
    p = cli(wagent.sock, "run", "--memory", "99999999T", "--", "true")
    assert p.returncode == 125 and "more than this host's memory" in p.stderr, p.stderr
