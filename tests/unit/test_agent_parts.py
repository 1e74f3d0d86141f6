"""The composition root and the daemon's start-up gates: Parts as a value, part failures
counted and exported, one agent per state directory and cgroup root, API settings checked."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent import pidlock
from agent.config import AgentConfig, ConfigError, parse_config
from agent.daemon import Agent
from agent.exporter import AgentInfo, Exporter
from agent.exporter.agentinfo import FOOTPRINT, SELF_METRICS
from agent.health import Health
from agent.parts import Part, Parts
from agent.selfmon import SelfMonitor
from collectors.store import Store

REPO = Path(__file__).parents[2]


def test_the_composition_root_does_not_import_the_daemon() -> None:
    code = "import sys, agent.parts; print('agent.daemon' in sys.modules)"
    r = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"


def test_parts_is_a_frozen_value() -> None:
    async def nothing() -> None:
        return None

    monitor = SelfMonitor(64 << 20, Store(), None, Health())
    parts = Parts(runs={"selfmon": Part(nothing, False)}, monitor=monitor, engine=None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        parts.engine = None  # type: ignore[misc]
    assert parts.closers == () and parts.sync_closers == ()


async def test_a_failing_optional_part_is_counted_restarted_and_exported() -> None:
    agent = Agent(AgentConfig())
    calls = 0

    async def flaky() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("first run fails")

    await asyncio.wait_for(agent._guard("policies", Part(flaky, False)), 10)
    assert calls == 2 and agent.health.part_failures == {"policies": 1}
    info = AgentInfo(version="t", part_failures=lambda: agent.health.part_failures)
    text = Exporter(Store(), info).render().decode()
    assert "# TYPE pystats_agent_part_failures_total counter" in text
    assert 'pystats_agent_part_failures_total{part="policies"} 1' in text
    om = Exporter(Store(), info).render(openmetrics=True).decode()
    assert "# TYPE pystats_agent_part_failures counter" in om


def test_every_footprint_value_has_a_metric() -> None:
    monitor = SelfMonitor(64 << 20, Store(), None, Health())
    assert list(monitor.values()) == list(FOOTPRINT)
    text = Exporter(Store(), AgentInfo(footprint=monitor.values)).render().decode()
    for name in ("resident_memory_bytes", "memory_budget_bytes", "shed_level", "open_fds"):
        assert f"\npystats_agent_{name} " in text
    assert len({m.name for m in SELF_METRICS}) == len(SELF_METRICS)


# --- one agent per state directory and cgroup root ---------------------------------------------


def test_a_held_lock_names_its_holder_and_dies_with_it(tmp_path: Path) -> None:
    path = str(tmp_path / "agent.pid")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from agent import pidlock; pidlock.acquire(sys.argv[1], 'x'); "
            "print('held', flush=True); sys.stdin.read()",
            path,
        ],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        with pytest.raises(pidlock.AlreadyRunning, match=f"PID {holder.pid}\\) already uses"):
            pidlock.acquire(path, "state directory X")
    finally:
        holder.kill()
        holder.wait()
    lock = pidlock.acquire(path, "state directory X")  # the kernel released it
    try:
        assert Path(path).read_text() == f"{os.getpid()}\n"
        with pytest.raises(pidlock.AlreadyRunning, match=f"PID {os.getpid()}"):
            pidlock.acquire(path, "state directory X")
    finally:
        lock.release()
    assert not os.path.exists(path)  # a clean stop leaves nothing behind


def test_root_lock_paths_follow_the_real_path(tmp_path: Path) -> None:
    a = pidlock.root_lock_path("/sys/fs/cgroup/pystats", str(tmp_path))
    assert a == pidlock.root_lock_path("/sys/fs/cgroup/x/../pystats", str(tmp_path))
    assert a != pidlock.root_lock_path("/sys/fs/cgroup/pystats2", str(tmp_path))
    assert os.path.dirname(a) == str(tmp_path / "roots")
    assert len(os.path.basename(pidlock.root_lock_path("/x" * 200, str(tmp_path)))) < 100


async def test_a_second_agent_on_the_state_dir_touches_nothing(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    lock = pidlock.acquire(str(state / "agent.pid"), "state directory")
    try:
        cfg = AgentConfig(state_dir=str(state), socket=str(tmp_path / "run" / "agent.sock"))
        with pytest.raises(pidlock.AlreadyRunning, match=f"PID {os.getpid()}.*{state}"):
            await Agent(cfg).run()
        assert not (tmp_path / "run").exists()
    finally:
        lock.release()


# --- API settings ----------------------------------------------------------------------------


def test_socket_modes_for_other_users_are_refused() -> None:
    with pytest.raises(ConfigError) as e:
        parse_config("socket_mode: 0666\n", "agent.yaml")
    assert e.value.errors == [
        "agent.yaml:1:14: socket_mode: 0666 lets every user of the host connect: the API "
        "launches workloads as root; use 0600, or 0660 with socket_group"
    ]
    cfg = parse_config("socket_mode: 0660\nsocket_group: adm\napi_group: ops\n", "a.yaml")
    assert (cfg.socket_mode, cfg.socket_group, cfg.api_group) == (0o660, "adm", "ops")


def test_an_unknown_api_group_is_a_one_line_start_error(tmp_path: Path) -> None:
    cfg = tmp_path / "agent.yaml"
    cfg.write_text(f"api_group: no-such-group\nstate_dir: {tmp_path / 'state'}\n")
    r = subprocess.run(
        [sys.executable, "-m", "agent.daemon_main", "--config", str(cfg)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2
    assert "cannot start: api_group: no group named 'no-such-group'" in r.stderr
    assert "Traceback" not in r.stderr


def test_check_config_names_the_api_users(tmp_path: Path) -> None:
    cfg = tmp_path / "agent.yaml"
    for group, expect, code in (
        ("daemon", "API users: root and members of group daemon", None),
        ("no-such-group", "error: api_group: no group named 'no-such-group'", 2),
    ):
        cfg.write_text(f"api_group: {group}\n")
        r = subprocess.run(
            [sys.executable, "-m", "agent.daemon_main", "--config", str(cfg), "--check-config"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert expect in r.stdout + r.stderr
        assert code is None or r.returncode == code
