"""The agent refuses, at start, what would have it run uselessly: a collect_root nothing will
create (it ran 'ready: 0 cgroups') and a policy that does not validate (it ran without one)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.host.test_agent_host import Agent, agent  # noqa: F401 (a fixture)

pytestmark = pytest.mark.host


def test_a_collect_root_nothing_makes_stops_the_start(
    agent: Agent,  # noqa: F811 (the imported fixture)
    host_cgroup: str,
) -> None:
    proc = agent.run(agent.config(f"{host_cgroup}/no-such-tree"))
    assert proc.wait(60) == 2
    text = agent.log.read_text()
    assert f"collect_root '{host_cgroup}/no-such-tree' does not exist" in text, text
    assert "Traceback" not in text and not Path(agent.sock).exists()
    assert not Path(agent.root).exists()  # nothing created for a start that was refused


def test_an_invalid_policy_stops_the_start_naming_file_and_line(
    agent: Agent,  # noqa: F811
    host_cgroup: str,
    tmp_path: Path,
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("groups:\n  - name: web\n    limitz: {}\n")
    proc = agent.run(agent.config(host_cgroup, f"policy: {policy}\n"))
    assert proc.wait(60) == 2
    text = agent.log.read_text()
    assert f"{policy}:3:5: unknown key 'limitz'" in text, text
    assert "Traceback" not in text and not Path(agent.sock).exists()
