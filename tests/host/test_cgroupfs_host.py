"""cgroupfs on this host's real cgroup v2 tree (no cpu/memory/pids controllers on a hybrid host).

Each test works inside its own scratch cgroup (the host_cgroup fixture), removed afterwards.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from cgroupfs import writer
from cgroupfs.errors import CgroupGone, CgroupWriteError
from cgroupfs.mount import detect, is_cgroup2
from cgroupfs.parsers import parse_cgroup_events, parse_controllers, parse_cpu_stat
from cgroupfs.paths import CgroupRoot
from cgroupfs.reader import KeptReader, read_file, read_procs, walk

pytestmark = pytest.mark.host


@pytest.fixture
def where(host_cgroup: str) -> tuple[CgroupRoot, str]:
    root = CgroupRoot(os.path.dirname(host_cgroup))
    return root, root.rel_of(host_cgroup)


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    p = subprocess.Popen(["sleep", "120"])
    try:
        yield p
    finally:
        p.kill()
        p.wait()


def _events(root: CgroupRoot, rel: str) -> tuple[bool | None, bool | None]:
    ev = parse_cgroup_events(read_file(root, rel, "cgroup.events"))
    return ev.populated, ev.frozen


def test_detect_sees_this_tree(where: tuple[CgroupRoot, str]) -> None:
    root, _rel = where
    m = detect()
    assert m.path == root.path
    assert m.mode in ("v2", "hybrid")
    assert is_cgroup2(root.path)
    assert not is_cgroup2("/proc")
    if m.mode == "hybrid":
        assert "memory" in m.missing and "v1" in m.missing["memory"]


def test_move_pid_seen_in_cgroup_procs(
    where: tuple[CgroupRoot, str], sleeper: subprocess.Popen[bytes]
) -> None:
    root, rel = where
    leaf = f"{rel}/leaf"
    assert writer.create(root, leaf) == [leaf]
    assert writer.move_pid(root, leaf, sleeper.pid) is True
    assert read_procs(root, leaf) == (sleeper.pid,)
    with open(f"/proc/{sleeper.pid}/cgroup") as f:
        assert f"/{leaf}\n" in f.read()
    assert _events(root, leaf)[0] is True  # populated


def test_move_vanished_pid_is_false(where: tuple[CgroupRoot, str]) -> None:
    root, rel = where
    p = subprocess.Popen(["true"])
    p.wait()
    assert writer.move_pid(root, rel, p.pid) is False


def test_freeze_and_thaw(where: tuple[CgroupRoot, str], sleeper: subprocess.Popen[bytes]) -> None:
    root, rel = where
    assert writer.move_pid(root, rel, sleeper.pid)
    assert writer.freeze(root, rel, True, timeout_s=5) is True
    assert _events(root, rel)[1] is True
    assert read_file(root, rel, "cgroup.freeze").strip() == b"1"
    assert writer.freeze(root, rel, False, timeout_s=5) is True
    assert _events(root, rel)[1] is False
    assert sleeper.poll() is None  # thawed, still alive


def test_kill_kills_the_whole_cgroup(where: tuple[CgroupRoot, str]) -> None:
    root, rel = where
    writer.create(root, f"{rel}/a/b")
    procs = [subprocess.Popen(["sleep", "120"]) for _ in range(2)]
    try:
        assert writer.move_pid(root, f"{rel}/a", procs[0].pid)
        assert writer.move_pid(root, f"{rel}/a/b", procs[1].pid)
        writer.kill(root, f"{rel}/a")
        for p in procs:
            assert p.wait(timeout=10) == -9
    finally:
        for p in procs:
            p.kill()
            p.wait()
    deadline = time.monotonic() + 5
    while _events(root, f"{rel}/a")[0] and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _events(root, f"{rel}/a")[0] is False


def test_cpu_stat_through_kept_reader(where: tuple[CgroupRoot, str]) -> None:
    root, rel = where
    spin = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.15: pass\n"
    with KeptReader(root) as reader:
        first = reader.read(rel, "cpu.stat")
        assert first is not None
        assert parse_cpu_stat(first).usage_usec == 0
        fds = reader.open_fd_count()
        # a short CPU burner inside the cgroup (moved before it spins: started stopped via -c)
        p = subprocess.Popen(
            [sys.executable, "-c", "import sys; sys.stdin.read(1)\n" + spin], stdin=subprocess.PIPE
        )
        try:
            assert writer.move_pid(root, rel, p.pid)
            assert p.stdin is not None
            p.stdin.write(b"x")
            p.stdin.close()
            assert p.wait(timeout=30) == 0
        finally:
            p.kill()
            p.wait()
        second = reader.read(rel, "cpu.stat")
        assert second is not None
        assert (parse_cpu_stat(second).usage_usec or 0) >= 100_000
        assert reader.open_fd_count() == fds  # re-read through the kept fd
        pressure = reader.read(rel, "cpu.pressure")
        assert pressure is not None and pressure.startswith(b"some ")
        assert reader.read(rel, "memory.max") is None or detect().usable("memory")


def test_kept_fd_of_removed_cgroup_is_gone(where: tuple[CgroupRoot, str]) -> None:
    root, rel = where
    child = f"{rel}/short-lived"
    writer.create(root, child)
    inode = os.stat(root.resolve(child)).st_ino
    with KeptReader(root) as reader:
        assert reader.read(child, "cpu.stat", inode) is not None
        assert reader.inode_of(child) == inode
        writer.remove(root, child)
        with pytest.raises(CgroupGone):
            reader.read(child, "cpu.stat", inode)  # ENODEV from pread of the kept fd
        assert reader.open_fd_count() == 0
        with pytest.raises(CgroupGone):
            reader.read(child, "cgroup.events", inode)  # ENOENT on open


def test_recreated_cgroup_is_a_new_identity(where: tuple[CgroupRoot, str]) -> None:
    root, rel = where
    child = f"{rel}/again"
    writer.create(root, child)
    with KeptReader(root) as reader:
        old = dict(walk(root, start=rel))[child]
        assert reader.read(child, "cpu.stat", old) is not None
        writer.remove(root, child)
        writer.create(root, child)
        new = dict(walk(root, start=rel))[child]
        assert new != old
        assert reader.read(child, "cpu.stat", new) is not None
        with pytest.raises(CgroupGone, match="replaced"):
            reader.read(child, "cpu.stat", old)


def test_walk_real_tree(where: tuple[CgroupRoot, str]) -> None:
    root, rel = where
    writer.create(root, f"{rel}/x/y")
    writer.create(root, f"{rel}/z")
    got = list(walk(root, start=rel))
    assert [r for r, _ in got] == [rel, f"{rel}/x", f"{rel}/x/y", f"{rel}/z"]
    for r, ino in got:
        assert os.stat(root.resolve(r)).st_ino == ino
    # the whole host tree walks without error and includes ours
    assert f"{rel}/x/y" in {r for r, _ in walk(root)}


def test_remove_waits_for_busy_cgroup(where: tuple[CgroupRoot, str]) -> None:
    root, rel = where
    child = f"{rel}/busy"
    writer.create(root, child)
    p = subprocess.Popen(["sleep", "120"])
    try:
        assert writer.move_pid(root, child, p.pid)
        with pytest.raises(writer.CgroupDirError) as info:
            writer.remove(root, child, timeout_s=0.2)
        assert f"PIDs {p.pid}" in str(info.value)
        assert os.path.isdir(root.resolve(child))
        # the process leaves while remove() backs off: it then succeeds
        errors: list[BaseException] = []

        def remove() -> None:
            try:
                writer.remove(root, child, timeout_s=10)
            except BaseException as e:
                errors.append(e)

        t = threading.Thread(target=remove)
        t.start()
        time.sleep(0.2)
        p.kill()
        p.wait()
        t.join(timeout=15)
        assert not t.is_alive()
        assert errors == []
        assert not os.path.exists(root.resolve(child))
    finally:
        p.kill()
        p.wait()


@pytest.fixture
def hugetlb_cgroup(host_cgroup: str) -> Iterator[CgroupRoot]:
    """Our scratch cgroup as the writer's root, with hugetlb (the one controller a hybrid host
    still gives to v2) available in it. If the tree's root did not enable hugetlb for its
    children, it is enabled for this test and disabled again afterwards."""
    tree = CgroupRoot(os.path.dirname(host_cgroup))
    if "hugetlb" not in parse_controllers(read_file(tree, "", "cgroup.controllers")):
        pytest.skip("this kernel offers no controller at all in the host's v2 tree")
    enabled_here = "hugetlb" not in parse_controllers(read_file(tree, "", "cgroup.subtree_control"))
    if enabled_here:
        writer.write(tree, "", "cgroup.subtree_control", "+hugetlb")
    try:
        yield CgroupRoot(host_cgroup)
    finally:
        if enabled_here:
            # the root can only drop hugetlb once no descendant enables it: empty ours first
            ours = CgroupRoot(host_cgroup)
            writer.kill(ours, "")
            for name, _ino in list(walk(ours, max_depth=1))[1:]:
                writer.remove(ours, name)
            writer.write(ours, "", "cgroup.subtree_control", "-hugetlb")
            with contextlib.suppress(CgroupWriteError):  # another test may use it right now
                writer.write(tree, "", "cgroup.subtree_control", "-hugetlb")


def test_no_internal_processes_on_host(hugetlb_cgroup: CgroupRoot) -> None:
    root = hugetlb_cgroup
    p = subprocess.Popen(["sleep", "120"])
    try:
        assert writer.move_pid(root, "", p.pid)
        with pytest.raises(CgroupWriteError) as info:
            writer.create(root, "child", ["hugetlb"])
        msg = str(info.value)
        assert "no internal processes" in msg and str(p.pid) in msg and "leaf" in msg
        assert info.value.file.endswith("/cgroup.subtree_control")
        assert not os.path.exists(root.resolve("child"))
        # with the process in a leaf, the same request succeeds
        writer.create(root, "leaf")
        assert writer.move_pid(root, "leaf", p.pid)
        assert writer.create(root, "child", ["hugetlb"]) == ["child"]
        assert "hugetlb" in parse_controllers(read_file(root, "child", "cgroup.controllers"))
    finally:
        p.kill()
        p.wait()
