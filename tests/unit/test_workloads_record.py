"""Typed manager <-> shim records: round trip, the old unversioned format, corrupt shapes."""

from __future__ import annotations

import io
import json
import signal
from typing import Any

import pytest

from workloads.supervisor.forkserver import (
    PROTOCOL,
    ProtocolError,
    SpawnReply,
    SpawnRequest,
    _serve,
)
from workloads.supervisor.record import VERSION, RunStatus, ShimConfig, State
from workloads.supervisor.state import CorruptRecord

# Exactly what the shim of the agent before versioned records wrote for a running workload
# (status.json of a `pystats run -d --name web -- sleep 1000`), byte for byte.
OLD_RUNNING = b"""{
 "error": null,
 "exit_code": null,
 "finished_at": null,
 "oom_killed": false,
 "pid": 4242,
 "pid_start": 123456,
 "run": 3,
 "shim_pid": 4240,
 "shim_start": 123450,
 "signal": null,
 "started_at": 1796620000.123456,
 "state": "running"
}
"""
# ... and what its shim wrote when it failed before the workload ran.
OLD_FAILED = {
    "run": 1,
    "state": "exited",
    "exit_code": 125,
    "finished_at": 1796620001.5,
    "error": "the supervisor failed: boom",
}
OLD_CONFIG = {
    "spec": {
        "argv": ["sleep", "1000"],
        "env": {},
        "hostname": None,
        "limits": {"cpus": None, "memory_bytes": None, "pids": 5},
        "name": "web",
        "net": "none",
        "restart": "no",
        "rootfs": None,
        "userns": False,
        "userns_base": 100000,
        "workdir": None,
    },
    "root": "/sys/fs/cgroup/pystats",
    "created_at": 1796619999.0,
    "log_max_bytes": 10485760,
    "log_keep": 3,
}


def test_state_values_are_the_wire_spelling() -> None:
    assert [s.value for s in State] == ["created", "running", "exited", "restarting", "paused"]
    assert State("running") is State.RUNNING and isinstance(State.RUNNING, str)
    assert f"{State.EXITED}" == "exited" and json.dumps(State.EXITED) == '"exited"'


def test_old_unversioned_status_is_read_as_version_1() -> None:
    st = RunStatus.from_json(json.loads(OLD_RUNNING))
    assert st == RunStatus(
        run=3,
        state=State.RUNNING,
        shim_pid=4240,
        shim_start=123450,
        pid=4242,
        pid_start=123456,
        started_at=1796620000.123456,
        version=1,
    )
    failed = RunStatus.from_json(OLD_FAILED)
    assert failed.state is State.EXITED and failed.exit_code == 125 and failed.pid is None
    assert failed.error == "the supervisor failed: boom" and failed.log_bytes_dropped == 0


def test_status_round_trip_writes_the_current_version() -> None:
    st = RunStatus(
        run=2,
        state=State.EXITED,
        shim_pid=1,
        shim_start=2,
        pid=3,
        pid_start=4,
        started_at=5.0,
        finished_at=6.5,
        exit_code=137,
        signal=9,
        oom_killed=True,
        error="x",
        log_bytes_dropped=4096,
        exec_at=5.25,
        version=1,
    )
    d = json.loads(json.dumps(st.to_json()))
    assert d["version"] == VERSION and d["state"] == "exited"
    assert RunStatus.from_json(d) == st.but(version=VERSION)
    assert st.but(state=State.RUNNING).state is State.RUNNING and st.state is State.EXITED


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"state": "zombie"}, "unknown 'zombie'"),
        ({"state": None}, "state missing"),
        ({"run": None}, "run missing"),
        ({"run": "3"}, "run: expected int"),
        ({"pid": 4.5}, "pid: expected int"),
        ({"pid": True}, "pid: expected int"),
        ({"exit_code": "0"}, "exit_code: expected int"),
        ({"oom_killed": 1}, "oom_killed: expected bool"),
        ({"started_at": "now"}, "started_at: expected int or float"),
        ({"error": ["x"]}, "error: expected str"),
        ({"log_bytes_dropped": -1.0}, "log_bytes_dropped: expected int"),
        ({"exec_at": "soon"}, "exec_at: expected int or float"),
        ({"version": 99}, "format version 99"),
        ({"version": "2"}, "version: expected int"),
    ],
)
def test_a_status_of_the_wrong_shape_is_corrupt(change: dict[str, Any], why: str) -> None:
    d = {**json.loads(OLD_RUNNING), **change}
    with pytest.raises(CorruptRecord, match=why):
        RunStatus.from_json(d, "/s/status.json")


def test_old_config_is_read_and_round_trips() -> None:
    cfg = ShimConfig.from_json(OLD_CONFIG)
    assert cfg.version == 1 and cfg.spec.argv == ["sleep", "1000"] and cfg.spec.limits.pids == 5
    assert (cfg.root, cfg.log_max_bytes, cfg.log_keep) == ("/sys/fs/cgroup/pystats", 10485760, 3)
    again = ShimConfig.from_json(json.loads(json.dumps(cfg.to_json())))
    assert again.version == VERSION and again.spec == cfg.spec and again.created_at == 1796619999.0


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"spec": None}, "spec: expected an object"),
        ({"spec": {"name": "x"}}, "spec:"),
        ({"root": 7}, "root: expected str"),
        ({"log_max_bytes": 0}, "must be positive"),
        ({"log_keep": None}, "log_keep missing"),
        ({"created_at": "yesterday"}, "created_at: expected"),
    ],
)
def test_a_config_of_the_wrong_shape_is_corrupt(change: dict[str, Any], why: str) -> None:
    with pytest.raises(CorruptRecord, match=why):
        ShimConfig.from_json({**OLD_CONFIG, **change})


def test_fork_server_messages_round_trip_with_their_version() -> None:
    req = SpawnRequest("/var/lib/pystats/workloads/web", 3)
    line = req.encode()
    assert line.endswith("\n") and json.loads(line)["v"] == PROTOCOL
    assert SpawnRequest.decode(line) == req
    assert SpawnReply.decode(SpawnReply(pid=1234).encode()) == SpawnReply(pid=1234)
    assert SpawnReply.decode(SpawnReply(error="no").encode()) == SpawnReply(error="no")


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ('{"dir": "/w", "run": 1}\n', "protocol version None"),  # version 1: no "v"
        ('{"v": 2, "dir": 5, "run": 1}\n', "dir: expected a path"),
        ('{"v": 2, "dir": "/w", "run": true}\n', "run: expected a positive int"),
        ('{"v": 2, "dir": "/w", "run": 0}\n', "run: expected a positive int"),
        ("[1]\n", "not a JSON object"),
        ("{\n", "not JSON"),
    ],
)
def test_fork_server_refuses_bad_requests(line: str, why: str) -> None:
    with pytest.raises(ProtocolError, match=why):
        SpawnRequest.decode(line)


def test_fork_server_answers_a_bad_request_without_forking() -> None:
    spawned: list[tuple[str, int]] = []

    def no_fork(wdir: str, run: int) -> int:
        spawned.append((wdir, run))
        return 0

    saved = {s: signal.getsignal(s) for s in (signal.SIGCHLD, signal.SIGINT)}
    out = io.StringIO()
    try:
        assert _serve(io.StringIO('{"dir": "/w", "run": 1}\n'), out, no_fork) == 0
    finally:
        for s, h in saved.items():
            signal.signal(s, h)
    reply = SpawnReply.decode(out.getvalue())
    assert reply.pid is None and "bad request: protocol version" in str(reply.error)
    assert spawned == []
    with pytest.raises(ProtocolError, match="no answer"):
        SpawnReply.decode("")
