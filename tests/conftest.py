"""Shared fixtures: scratch cgroups on the host's v2 tree or in the VM, always cleaned up."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import envcheck


def pytest_runtest_setup(item: pytest.Item) -> None:
    # Marked tests check their environment before any fixture runs.
    if item.get_closest_marker("vm") is not None:
        envcheck.require_vm()
    elif item.get_closest_marker("host") is not None:
        envcheck.require_host()


@pytest.fixture
def host_cgroup() -> Iterator[str]:
    """A scratch cgroup (absolute path) in this host's writable cgroup v2 tree."""
    tree = envcheck.require_host()
    with envcheck.scratch_cgroup(tree) as path:
        yield path


@pytest.fixture
def vm_cgroup() -> Iterator[str]:
    """A scratch cgroup in the VM with cpu, memory and pids enabled for its children."""
    root = envcheck.require_vm()
    with open(os.path.join(root, "cgroup.subtree_control"), "w") as f:
        f.write("+cpu +memory +pids")
    with envcheck.scratch_cgroup(root, {"cpu", "memory", "pids"}) as path:
        yield path


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A root-owned scratch directory every user may enter, as /etc is (pytest's tmp_path is
    0700): for workloads that run as another user, e.g. a user namespace's mapped root."""
    path = tempfile.mkdtemp(prefix="pystats-open-", dir="/tmp")
    os.chmod(path, 0o755)
    try:
        yield Path(path)
    finally:
        shutil.rmtree(path)
