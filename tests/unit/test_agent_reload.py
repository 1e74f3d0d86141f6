"""SIGHUP's configuration reload: what applies live, what waits for a restart, what is refused."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from agent.config import AgentConfig, ConfigError, load_config
from agent.daemon import Agent
from agent.reloadcfg import apply


@dataclass
class FakeEngine:
    policy_path: str = "/etc/pystats/a.yaml"
    reconcile_s: float = 30.0


@dataclass
class FakeMonitor:
    budget: int = 1


def test_live_keys_are_applied_and_the_rest_wait_for_restart() -> None:
    old = AgentConfig(policy="/etc/pystats/a.yaml")
    new = replace(
        old,
        policy="/etc/pystats/b.yaml",
        reconcile_interval_s=5.0,
        memory_budget=64 << 20,
        socket="/run/other.sock",
        log_level="debug",
    )
    engine, monitor = FakeEngine(), FakeMonitor()
    root = logging.getLogger()
    level = root.level
    try:
        notes = apply(old, new, engine, monitor)
        assert root.level == logging.DEBUG
    finally:
        root.setLevel(level)
    assert engine.policy_path == "/etc/pystats/b.yaml"
    assert engine.reconcile_s == 5.0
    assert monitor.budget == 64 << 20
    assert "socket: '/run/pystats/agent.sock' -> '/run/other.sock' takes effect on restart" in notes
    assert sum(n.endswith(" applied") for n in notes) == 4


def test_adding_a_policy_without_an_engine_starts_one() -> None:
    # issue 17: SIGHUP turns a newly configured policy on (the daemon starts the engine)
    notes = apply(AgentConfig(), AgentConfig(policy="/p.yaml"), None, None)
    assert notes == ["policy: None -> '/p.yaml' applied: the policy engine starts"]
    removed = apply(AgentConfig(policy="/p.yaml"), AgentConfig(), None, None)
    assert removed == ["policy: '/p.yaml' -> None takes effect on restart"]


def test_unchanged_config_changes_nothing() -> None:
    assert apply(AgentConfig(), AgentConfig(source="elsewhere"), None, None) == []


def test_sighup_with_a_broken_file_keeps_the_old_config(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text("interval: 2s\n")
    agent = Agent(load_config(str(path)), reread=lambda: load_config(str(path)))
    path.write_text("interval: 2s\nmemory_budget: lots\n")
    with caplog.at_level(logging.INFO, logger="pystats.agent"):
        agent.reload()
    assert agent.config.interval_s == 2.0 and agent.config.memory_budget == 256 << 20
    assert "configuration rejected" in caplog.text
    assert f"{path}:2:" in caplog.text  # the error keeps its FILE:LINE:COL
    path.write_text("interval: 2s\nmemory_budget: 128M\n")
    with caplog.at_level(logging.INFO, logger="pystats.agent"):
        agent.reload()
    assert agent.config.memory_budget == 128 << 20
    with pytest.raises(ConfigError):
        load_config(str(tmp_path / "missing.yaml"))
