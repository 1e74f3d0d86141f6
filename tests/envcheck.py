"""Where the environment-dependent tests can run, and what to do when they cannot.

A host or VM test skips, with the reason, on a developer machine that lacks its environment.
Under scripts/test (and so in CI) PYSTATS_REQUIRE_ENV=1 turns that skip into a failure: CI
provides the environment, so a test that could not run there is a broken test run.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

WANTED_CONTROLLERS = {"cpu", "memory", "pids"}


def unavailable(reason: str) -> None:
    """Skip (developer machine) or fail (CI) because the environment is missing."""
    if os.environ.get("PYSTATS_REQUIRE_ENV") == "1":
        pytest.fail(f"required test environment missing: {reason}", pytrace=False)
    pytest.skip(reason)


def _cgroup2_mounts() -> list[str]:
    try:
        with open("/proc/self/mounts") as f:
            return [line.split()[1] for line in f if line.split()[2:3] == ["cgroup2"]]
    except OSError:
        return []


def host_v2_tree() -> str | None:
    """A writable cgroup2 mount (the hybrid host's /sys/fs/cgroup/unified, or a pure v2 root)."""
    if os.geteuid() != 0:
        return None
    for mnt in _cgroup2_mounts():
        if os.access(os.path.join(mnt, "cgroup.procs"), os.W_OK):
            return mnt
    return None


def vm_v2_root() -> str | None:
    """The VM's pure cgroup v2 root with cpu, memory and pids controllers."""
    if os.geteuid() != 0 or "/sys/fs/cgroup" not in _cgroup2_mounts():
        return None
    try:
        with open("/sys/fs/cgroup/cgroup.controllers") as f:
            have = set(f.read().split())
    except OSError:
        return None
    return "/sys/fs/cgroup" if have >= WANTED_CONTROLLERS else None


def require_host() -> str:
    tree = host_v2_tree()
    if tree is None:
        unavailable("needs root and a writable cgroup v2 tree (e.g. /sys/fs/cgroup/unified)")
    assert tree is not None
    return tree


def require_vm() -> str:
    root = vm_v2_root()
    if root is None:
        unavailable(
            "needs a cgroup v2 kernel with cpu/memory/pids controllers: run it with scripts/test-vm"
        )
    assert root is not None
    return root


def _kill_and_remove(path: str) -> None:
    """Remove a test cgroup tree depth first, killing anything left in it."""
    for dirpath, _dirs, _files in sorted(os.walk(path), key=lambda w: -w[0].count("/")):
        kill = os.path.join(dirpath, "cgroup.kill")
        if os.path.exists(kill):
            try:
                with open(kill, "w") as f:
                    f.write("1")
            except OSError:
                pass
    for dirpath, _dirs, _files in sorted(os.walk(path), key=lambda w: -w[0].count("/")):
        for _ in range(100):
            try:
                os.rmdir(dirpath)
                break
            except FileNotFoundError:
                break
            except OSError:
                import time

                time.sleep(0.05)


@contextmanager
def scratch_cgroup(parent: str, controllers: set[str] | None = None) -> Iterator[str]:
    """A fresh cgroup of our own under ``parent``, removed (with anything in it) afterwards."""
    path = os.path.join(parent, f"pystats-test-{uuid.uuid4().hex[:8]}")
    os.mkdir(path)
    try:
        if controllers:
            with open(os.path.join(path, "cgroup.subtree_control"), "w") as f:
                f.write(" ".join(f"+{c}" for c in sorted(controllers)))
        yield path
    finally:
        _kill_and_remove(path)
