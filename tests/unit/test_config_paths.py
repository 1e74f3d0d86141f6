"""Paths in the agent's configuration are absolute: a relative one would name a different place
depending on where the agent was started (/ under systemd, a shell's directory by hand)."""

from __future__ import annotations

import pytest

from agent.config import ConfigError, parse_config


@pytest.mark.parametrize("key", ["state_dir", "socket", "root", "collect_root"])
def test_a_relative_path_is_refused_with_file_line_and_value(key: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_config(f"interval: 1s\n{key}: relative/x\n", "agent.yaml")
    assert e.value.errors == [
        f"agent.yaml:2:{len(key) + 3}: {key}: expected an absolute path, got 'relative/x'"
    ]


def test_absolute_paths_and_auto_are_taken() -> None:
    cfg = parse_config(
        "root: auto\ncollect_root: /sys/fs/cgroup\nstate_dir: /var/lib/x\nsocket: /run/x.sock\n",
        "agent.yaml",
    )
    assert (cfg.root, cfg.collect_root, cfg.state_dir, cfg.socket) == (
        "auto",
        "/sys/fs/cgroup",
        "/var/lib/x",
        "/run/x.sock",
    )
    with pytest.raises(ConfigError, match="state_dir: expected an absolute path, got 'auto'"):
        parse_config("state_dir: auto\n", "agent.yaml")


def test_a_size_error_names_its_setting_once() -> None:
    with pytest.raises(ConfigError) as e:
        parse_config("history_max_bytes: 1\n", "a.yaml")
    assert e.value.errors == [
        "a.yaml:1:20: history_max_bytes: must be a size of at least 64M, got 1"
    ]
