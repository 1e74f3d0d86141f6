"""The harness itself: the VM tests really run on a cgroup v2 kernel with controllers."""

from __future__ import annotations

import os

import pytest


@pytest.mark.vm
def test_guest_has_controllers_and_is_marked(vm_cgroup: str) -> None:
    assert os.environ.get("PYSTATS_IN_VM") == "1"
    with open(os.path.join(vm_cgroup, "cgroup.subtree_control")) as f:
        assert {"cpu", "memory", "pids"} <= set(f.read().split())
