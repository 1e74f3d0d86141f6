"""Engine reload semantics without a cgroup tree: a bad file is rejected, the last good stays."""

from __future__ import annotations

import os

import pytest

from cgroupfs.errors import UnsafePath
from cgroupfs.paths import CgroupRoot
from policies.connector import PROC_EVENT_EXEC, PROC_EVENT_FORK, PROC_EVENT_UID
from policies.engine import PolicyEngine, _ResolvedRoot

GOOD = "groups:\n  - name: web\n    match: [{comm: nginx}]\n"
GOOD2 = "groups:\n  - name: db\n    match: [{comm: postgres}]\n"
BAD = "groups:\n  - name: ../x\n    limits: {memory.max: lots}\n"


def test_reload_keeps_last_good_policy(tmp_path: str) -> None:
    path = os.path.join(tmp_path, "p.yaml")
    with open(path, "w") as f:
        f.write(GOOD)
    eng = PolicyEngine(CgroupRoot(str(tmp_path)), path, self_pids={1})
    assert eng.reload() == []
    assert eng.policy is not None and [g.path for g in eng.policy.all_groups()] == ["web"]
    with open(path, "w") as f:
        f.write(BAD)
    errors = eng.reload()
    assert [e.split(": ", 1)[0] for e in errors] == [f"{path}:2:11", f"{path}:3:26"]
    assert [g.path for g in eng.policy.all_groups()] == ["web"]
    assert eng.stats.reload_failures == 1 and eng.stats.reloads == 1
    with open(path, "w") as f:
        f.write(GOOD2)
    assert eng.reload() == []
    assert [g.path for g in eng.policy.all_groups()] == ["db"]
    assert 1 in eng.self_pids and os.getpid() in eng.self_pids


def test_missing_file_is_an_error(tmp_path: str) -> None:
    eng = PolicyEngine(CgroupRoot(str(tmp_path)), os.path.join(tmp_path, "none.yaml"))
    errors = eng.reload()
    assert len(errors) == 1 and "cannot read the file" in errors[0]
    assert eng.policy is None and eng.stats.policy_loaded == 0


def test_fork_events_are_counted_not_placed(tmp_path: str) -> None:
    eng = PolicyEngine(CgroupRoot(str(tmp_path)), os.path.join(tmp_path, "p.yaml"))
    placed: list[int] = []

    def place_one(pid: int) -> bool:
        placed.append(pid)
        return True

    eng.place_one = place_one  # type: ignore[method-assign]
    eng.on_event(PROC_EVENT_FORK, 10, 1)
    eng.on_event(PROC_EVENT_EXEC, 11, 1)
    eng.on_event(PROC_EVENT_UID, 12, 0)  # no timestamp: placed, no latency recorded
    assert placed == [11, 12]
    assert eng.stats.events == 3 and len(eng.placement_latency_ns) == 1


def test_event_path_without_policy_or_tree_places_nothing(tmp_path: str) -> None:
    path = os.path.join(tmp_path, "p.yaml")
    with open(path, "w") as f:
        f.write(GOOD)
    eng = PolicyEngine(CgroupRoot(str(tmp_path)), path)
    assert eng.place_one(os.getpid()) is False  # no policy yet
    assert eng.reload() == []
    assert eng.place_one(1) is False  # policy, but no reconcile has read the tree yet
    assert eng.stats.event_moves == eng.stats.errors == 0


def test_resolved_root_remembers_only_safe_answers(tmp_path: str) -> None:
    base = CgroupRoot(str(tmp_path))
    root = _ResolvedRoot(str(tmp_path))
    assert root.resolve("a/b") == base.resolve("a/b")
    assert root.file("a/b", "cgroup.procs") == base.file("a/b", "cgroup.procs")
    os.symlink("/", os.path.join(tmp_path, "out"))
    for _ in range(2):  # refused every time, never remembered
        with pytest.raises(UnsafePath):
            root.resolve("out/x")
        with pytest.raises(UnsafePath):
            root.resolve("../x")
    # remembered until forget() (the engine forgets on every reconcile and reload): safe on
    # cgroup2, which has no symlinks; here a plain directory can be swapped for one
    os.mkdir(os.path.join(tmp_path, "c"))
    assert root.resolve("c/x") == os.path.join(str(tmp_path), "c", "x")
    os.rmdir(os.path.join(tmp_path, "c"))
    os.symlink("/", os.path.join(tmp_path, "c"))
    assert root.resolve("c/x") == os.path.join(str(tmp_path), "c", "x")
    root.forget()
    with pytest.raises(UnsafePath):
        root.resolve("c/x")


def test_stats_are_a_frozen_snapshot_of_every_counter(tmp_path: str) -> None:
    from dataclasses import FrozenInstanceError, fields
    from typing import get_args

    from policies.engine import EngineStats, StatName

    assert [f.name for f in fields(EngineStats)] == list(get_args(StatName))
    eng = PolicyEngine(CgroupRoot(str(tmp_path)), os.path.join(tmp_path, "none.yaml"))
    before = eng.stats
    assert eng.reload() != []
    assert before.reload_failures == 0 and eng.stats.reload_failures == 1
    with pytest.raises(FrozenInstanceError):
        before.reloads = 1  # type: ignore[misc]
