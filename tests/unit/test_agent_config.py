"""The agent's configuration: every error at once, with FILE:LINE:COL; flags and exit codes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.config import AgentConfig, ConfigError, load_config, parse_config, parse_duration


def test_defaults_and_values() -> None:
    cfg = parse_config(
        "interval: 500ms\nhistory: 10m\nsocket_mode: 0640\ninclude: ['system.slice/*']\n"
        "memory_budget: 512M\nmetrics_listen: '[::1]:9999'\n",
        "a.yaml",
    )
    assert cfg.interval_s == 0.5
    assert cfg.history_points == 1200
    assert cfg.socket_mode == 0o640
    assert cfg.include == ("system.slice/*",)
    assert cfg.memory_budget == 512 * 1024 * 1024
    assert cfg.metrics_host_port == ("::1", 9999)
    assert parse_config("", "e.yaml") == AgentConfig()


def test_every_error_is_reported_with_its_position() -> None:
    text = "intervl: 2s\nhistory: banana\nmetrics_listen: x\nmemory_budget: 12Q\nslow_every: 0\n"
    with pytest.raises(ConfigError) as e:
        parse_config(text, "agent.yaml")
    assert e.value.errors == [
        "agent.yaml:1:1: unknown setting 'intervl'; did you mean 'interval'?",
        "agent.yaml:2:10: history: expected a duration such as 1s, 500ms or 10m, got 'banana'",
        "agent.yaml:3:17: metrics_listen: expected HOST:PORT such as 127.0.0.1:9753, got 'x'",
        "agent.yaml:4:16: memory_budget: unknown unit 'Q' in memory size '12Q': "
        'e.g. "512M", "512MiB", "1.5G", "4096" or "max"',
        "agent.yaml:5:13: slow_every: expected a whole number of at least 1, got 0",
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- a\n", "e.yaml:1:1: expected a mapping of settings"),
        ("a: [\n", "e.yaml:2:1: YAML: while parsing a flow node"),
        ("interval: 1s\ninterval: 2s\n", "e.yaml:2:1: duplicate key 'interval'"),
        ("interval: -1\n", "e.yaml:1:11: interval: a duration must be positive"),
        ("log_level: loud\n", "e.yaml:1:12: log_level: expected one of debug"),
    ],
)
def test_bad_documents(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_config(text, "e.yaml")
    assert e.value.errors[0].startswith(message)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300) | st.text(max_size=300))
def test_any_input_is_a_config_or_a_config_error(data: bytes | str) -> None:
    try:
        parse_config(data, "f.yaml")
    except ConfigError as e:
        assert all(line.startswith("f.yaml:") for line in e.errors)


def test_durations() -> None:
    assert parse_duration("250ms") == 0.25
    assert parse_duration("1h") == 3600
    assert parse_duration(2) == 2.0
    for bad in ("fast", True, "0s", "-5s"):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_config(str(tmp_path / "nope.yaml"))


def _agent(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent.daemon_main", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_agent_refuses_a_bad_config_with_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "agent.yaml"
    bad.write_text("interval: soon\nsockett: /x\n")
    r = _agent("--config", str(bad), "--check-config")
    assert r.returncode == 2
    assert f"{bad}:1:11: interval: expected a duration" in r.stderr
    assert f"{bad}:2:1: unknown setting 'sockett'; did you mean 'socket'?" in r.stderr
    assert "Traceback" not in r.stderr


def test_bad_flags_are_refused_like_bad_settings() -> None:
    r = _agent("--metrics-listen", "nope", "--interval", "fast", "--log-level", "debug")
    assert r.returncode == 2
    assert "--metrics-listen: expected HOST:PORT such as 127.0.0.1:9753, got 'nope'" in r.stderr
    assert "--interval: expected a duration" in r.stderr
    assert "Traceback" not in r.stderr


def test_shipped_example_config_is_valid() -> None:
    example = Path(__file__).parents[2] / "deploy" / "agent.yaml"
    cfg = load_config(str(example))
    assert cfg == AgentConfig(source=str(example))  # it documents the defaults


def test_help_explains_signals_and_exit_codes() -> None:
    r = _agent("--help")
    assert r.returncode == 0
    assert "SIGHUP" in r.stdout and "Exit status" in r.stdout
