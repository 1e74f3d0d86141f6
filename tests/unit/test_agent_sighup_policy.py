"""SIGHUP and the policy: a new policy is checked before an engine starts for it, and a policy
removed from the configuration is not re-read (its engine keeps it until a restart)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from agent.config import AgentConfig
from agent.daemon import Agent


@dataclass
class _Engine:  # what reload() asks of the hosted engine
    policy_path: str
    reloads: list[str] = field(default_factory=list)

    def reload(self) -> list[str]:
        self.reloads.append(self.policy_path)
        return []


def _reload_new_policy(
    tmp_path: Path, text: str, caplog: pytest.LogCaptureFixture
) -> tuple[Path, list[bool]]:
    """SIGHUP in an agent without an engine whose configuration now names a policy file."""
    path = tmp_path / "p.yaml"
    path.write_text(text)
    agent = Agent(replace(AgentConfig(), policy=str(path)))
    started: list[bool] = []

    def start() -> bool:
        started.append(True)
        return True

    agent._start_engine = start  # type: ignore[method-assign]
    with caplog.at_level(logging.INFO, "pystats.agent"):
        agent.reload()
    return path, started


def test_an_invalid_new_policy_is_rejected_not_turned_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bad, started = _reload_new_policy(tmp_path, "groups:\n  - nme: web\n", caplog)
    assert started == []
    assert f"policy {bad} rejected" in caplog.text and f"{bad}:2:" in caplog.text
    assert "turned on" not in caplog.text


def test_a_valid_new_policy_is_turned_on(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    text = "groups:\n  - name: web\n    match: {comm: nginx}\n"
    _good, started = _reload_new_policy(tmp_path, text, caplog)
    assert started == [True] and "turned on" in caplog.text


def test_a_removed_policy_is_not_reread(caplog: pytest.LogCaptureFixture) -> None:
    agent = Agent(AgentConfig())  # no policy configured (any more)
    engine = _Engine("/etc/pystats/old.yaml")
    agent._late_engine = engine  # type: ignore[assignment]
    with caplog.at_level(logging.INFO, "pystats.agent"):
        agent.reload()
    assert engine.reloads == []
    assert "policy /etc/pystats/old.yaml stays in force until a restart" in caplog.text
    assert "rejected" not in caplog.text


def test_the_agent_reads_a_negative_value_to_its_own_check(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from agent.daemon_main import main

    assert main(["--interval", "-1s"]) == 2
    err = capsys.readouterr().err
    assert "--interval: expected a duration" in err and "'-1s'" in err, err
