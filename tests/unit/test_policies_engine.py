"""Engine reload semantics without a cgroup tree: a bad file is rejected, the last good stays."""

from __future__ import annotations

import os

from cgroupfs.paths import CgroupRoot
from policies.engine import PolicyEngine

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
    assert eng.stats["reload_failures"] == 1 and eng.stats["reloads"] == 1
    with open(path, "w") as f:
        f.write(GOOD2)
    assert eng.reload() == []
    assert [g.path for g in eng.policy.all_groups()] == ["db"]
    assert 1 in eng.self_pids and os.getpid() in eng.self_pids


def test_missing_file_is_an_error(tmp_path: str) -> None:
    eng = PolicyEngine(CgroupRoot(str(tmp_path)), os.path.join(tmp_path, "none.yaml"))
    errors = eng.reload()
    assert len(errors) == 1 and "cannot read the file" in errors[0]
    assert eng.policy is None and eng.stats["policy_loaded"] == 0
