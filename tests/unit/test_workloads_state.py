"""Durable records: atomic writes, corrupt records reported and set aside, re-adoption."""

from __future__ import annotations

import errno
import json
import os
import time
from pathlib import Path

import pytest

from cgroupfs.paths import CgroupRoot
from workloads.lifecycle.manager import WorkloadManager
from workloads.runtime.spec import WorkloadSpec
from workloads.supervisor import procs, state


def test_atomic_write_replaces_whole_and_leaves_no_temp(tmp_path: Path) -> None:
    path = str(tmp_path / "status.json")
    state.write_json_atomic(path, {"a": 1})
    state.write_json_atomic(path, {"a": 2, "b": [1, 2]})
    assert state.read_json(path) == {"a": 2, "b": [1, 2]}
    assert os.listdir(tmp_path) == ["status.json"]
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"


@pytest.mark.parametrize("raw", [b'{"a": 1', b"[1, 2]", b"\xff\xfe", b""])
def test_corrupt_records_raise_and_can_be_set_aside(tmp_path: Path, raw: bytes) -> None:
    path = tmp_path / "config.json"
    path.write_bytes(raw)
    with pytest.raises(state.CorruptRecord, match="corrupt record"):
        state.read_json(str(path))
    dest = state.set_aside(str(path))
    assert not path.exists()
    assert Path(dest).read_bytes() == raw and ".corrupt-" in dest


def test_proc_identity_and_exit_codes() -> None:
    me = os.getpid()
    ticks = procs.start_ticks(me)
    assert ticks is not None and procs.alive(me, ticks)
    assert not procs.alive(me, ticks + 1)  # same PID, another process: not ours
    assert not procs.alive(None, None)
    assert procs.exit_code_of(3 << 8) == (3, None)
    assert procs.exit_code_of(9) == (137, 9)


def _record(state_dir: Path, name: str, status: dict[str, object] | None) -> Path:
    wdir = state_dir / "workloads" / name
    wdir.mkdir(parents=True)
    spec = WorkloadSpec(name=name, argv=["true"], restart="no")
    state.write_json_atomic(
        str(wdir / "config.json"),
        {
            "spec": spec.to_json(),
            "root": "/x",
            "created_at": time.time(),
            "log_max_bytes": 100,
            "log_keep": 1,
        },
    )
    if status is not None:
        state.write_json_atomic(str(wdir / "status.json"), status)
    return wdir


async def test_start_readopts_records_and_sets_corrupt_ones_aside(tmp_path: Path) -> None:
    cg = tmp_path / "cg"
    cg.mkdir()
    st = tmp_path / "state"
    me, ticks = os.getpid(), procs.start_ticks(os.getpid())
    # A run whose shim (here: this process) is alive, one that exited while the agent was down,
    # one whose shim vanished without a record, and a corrupt one.
    _record(
        st,
        "alive",
        {
            "run": 1,
            "state": "running",
            "shim_pid": me,
            "shim_start": ticks,
            "pid": me,
            "pid_start": ticks,
        },
    )
    _record(st, "done", {"run": 1, "state": "exited", "exit_code": 7})
    _record(
        st,
        "lost",
        {"run": 1, "state": "running", "shim_pid": me, "shim_start": 1, "pid": me, "pid_start": 1},
    )
    bad = st / "workloads" / "bad"
    bad.mkdir()
    (bad / "config.json").write_text("{not json")

    m = WorkloadManager(CgroupRoot(str(cg)), str(st), use_fork_server=False)
    await m.start()
    assert m.states() == {"alive": "running", "done": "exited", "lost": "exited"}
    assert m.inspect("done")["exit_code"] == 7
    assert "supervisor lost" in m.inspect("lost")["error"]
    assert len(m.problems) == 1 and "'bad'" in m.problems[0]
    assert not bad.exists()
    assert os.listdir(st / "corrupt")[0].startswith("bad-")
    # The recorded state of the lost run was made durable too.
    assert json.loads((st / "workloads" / "lost" / "status.json").read_text())["state"] == "exited"
    assert m.labels_for_cgroup("workloads/alive") == "alive"
    assert m.labels_for_cgroup("/workloads/alive/sub") == "alive"
    assert m.labels_for_cgroup("workloads/nope") is None
    assert m.labels_for_cgroup("other/alive") is None
    await m.close()


async def test_failed_create_leaves_no_record_and_no_cgroup(tmp_path: Path) -> None:
    # A plain directory is no cgroup tree: creating the workload's cgroup fails half-way.
    cg = tmp_path / "cg"
    cg.mkdir()
    m = WorkloadManager(CgroupRoot(str(cg)), str(tmp_path / "state"), use_fork_server=False)
    await m.start()
    with pytest.raises(Exception, match="cgroup"):
        await m.create(WorkloadSpec(name="w", argv=["true"]))
    assert m.states() == {}
    assert os.listdir(tmp_path / "state" / "workloads") == []
    assert not (cg / "workloads" / "w").exists()
    await m.close()


def test_a_failed_atomic_write_leaves_no_temp_and_the_old_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = str(tmp_path / "status.json")
    state.write_json_atomic(path, {"a": 1})

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match="No space"):
        state.write_json_atomic(path, {"a": 2})
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["status.json"]
    assert state.read_json(path) == {"a": 1}


async def test_one_failing_workload_does_not_stop_the_watcher_for_the_others(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cg = tmp_path / "cg"
    cg.mkdir()
    st = tmp_path / "state"
    me, ticks = os.getpid(), procs.start_ticks(os.getpid())
    running = {
        "run": 1,
        "state": "running",
        "shim_pid": me,
        "shim_start": ticks,
        "pid": me,
        "pid_start": ticks,
    }
    bad = _record(st, "a-bad", running)
    good = _record(st, "b-good", running)
    m = WorkloadManager(CgroupRoot(str(cg)), str(st), use_fork_server=False)
    await m.start()
    # a-bad (looked at first) can no longer be read: its record became a directory.
    os.unlink(bad / "status.json")
    os.mkdir(bad / "status.json")
    state.write_json_atomic(str(good / "status.json"), {**running, "state": "exited"})
    await m._tick()
    await m._tick()
    assert m.states()["b-good"] == "exited"
    assert m.states()["a-bad"] == "running"
    failures = [r.getMessage() for r in caplog.records if "a-bad" in r.getMessage()]
    assert len(failures) == 1 and "IsADirectoryError" in failures[0]  # logged once, not per tick
    await m.close()
