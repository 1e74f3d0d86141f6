"""cgroupfs on the test VM's real cgroup v2 kernel, with cpu, memory, pids (and io) controllers.

Each test works below its own scratch cgroup (the vm_cgroup fixture: +cpu +memory +pids enabled
for its children), removed afterwards. Kept lean: Python is ~10x slower under emulation.
"""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Callable, Iterator

import pytest

from cgroupfs import parsers, writer
from cgroupfs.errors import CgroupGone, CgroupWriteError
from cgroupfs.mount import detect
from cgroupfs.paths import CgroupRoot
from cgroupfs.reader import KeptReader, read_file, read_procs, walk
from cgroupfs.types import UNLIMITED
from cgroupfs.units import cpu_max_value, parse_bytes

pytestmark = pytest.mark.vm

MIB = 1024 * 1024


@pytest.fixture
def where(vm_cgroup: str) -> tuple[CgroupRoot, str]:
    root = CgroupRoot(os.path.dirname(vm_cgroup))
    return root, root.rel_of(vm_cgroup)


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    p = subprocess.Popen(["sleep", "300"])
    try:
        yield p
    finally:
        p.kill()
        p.wait()


def test_detect_pure_v2() -> None:
    m = detect()
    assert m.mode == "v2"
    assert m.path == "/sys/fs/cgroup"
    assert {"cpu", "memory", "pids", "io"} <= m.controllers
    assert not {"cpu", "memory", "pids", "io"} & set(m.missing)


def test_each_limit_written_then_read_back(where: tuple[CgroupRoot, str]) -> None:
    root, rel = where
    leaf = f"{rel}/limits"
    assert writer.create(root, leaf, ["cpu", "memory", "pids", "io"]) == [leaf]
    limits = {
        "memory.max": str(parse_bytes("64M")),
        "memory.high": str(parse_bytes("48MiB")),
        "memory.low": str(parse_bytes("8M")),
        "memory.min": str(parse_bytes("4M")),
        "pids.max": "50",
        "cpu.max": cpu_max_value(0.5),
        "cpu.weight": "200",
    }
    optional = {"memory.swap.max": str(parse_bytes("16M")), "io.weight": "default 300"}
    with KeptReader(root) as reader:
        present = {f: v for f, v in optional.items() if reader.read(leaf, f) is not None}
        print("optional limit files present:", " ".join(sorted(present)) or "none")
        writer.set_limits(root, leaf, {**limits, **present})
        got = reader.read_many(leaf, [*limits, *present])
    assert all(v is not None for v in got.values()), got

    def b(name: str) -> bytes:
        value = got[name]
        assert value is not None
        return value

    assert parsers.parse_limit(b("memory.max"), "memory.max") == 64 * MIB
    assert parsers.parse_limit(b("memory.high"), "memory.high") == 48 * MIB
    assert parsers.parse_int(b("memory.low"), "memory.low") == 8 * MIB
    assert parsers.parse_int(b("memory.min"), "memory.min") == 4 * MIB
    assert parsers.parse_limit(b("pids.max"), "pids.max") == 50
    cpu_max = parsers.parse_cpu_max(b("cpu.max"))
    assert (cpu_max.quota_usec, cpu_max.period_usec) == (50000, 100000)
    assert parsers.parse_cpu_weight(b("cpu.weight")) == 200
    if "memory.swap.max" in present:
        assert parsers.parse_limit(b("memory.swap.max"), "memory.swap.max") == 16 * MIB
    if "io.weight" in present:
        assert b("io.weight").split(b"\n")[0] == b"default 300"
    # and back to unlimited
    writer.set_limits(
        root, leaf, {"memory.max": "max", "pids.max": "max", "cpu.max": cpu_max_value(None)}
    )
    assert parsers.parse_limit(read_file(root, leaf, "memory.max")) == UNLIMITED
    assert parsers.parse_limit(read_file(root, leaf, "pids.max"), "pids.max") == UNLIMITED
    assert parsers.parse_cpu_max(read_file(root, leaf, "cpu.max")).quota_usec == UNLIMITED


def test_bad_limit_is_quoted(where: tuple[CgroupRoot, str]) -> None:
    root, rel = where
    leaf = f"{rel}/bad"
    writer.create(root, leaf)
    with pytest.raises(CgroupWriteError) as info:
        writer.write(root, leaf, "cpu.weight", "0")
    assert info.value.errno == errno.ERANGE or info.value.errno == errno.EINVAL
    assert "'0'" in str(info.value) and "cpu.weight" in str(info.value)
    with pytest.raises(CgroupWriteError, match="the kernel expects"):
        writer.write(root, leaf, "memory.max", "lots")


def test_pid_moved_and_seen(
    where: tuple[CgroupRoot, str], sleeper: subprocess.Popen[bytes]
) -> None:
    root, rel = where
    leaf = f"{rel}/app"
    writer.create(root, leaf)
    assert writer.move_pid(root, leaf, sleeper.pid) is True
    assert read_procs(root, leaf) == (sleeper.pid,)
    pids = parsers.parse_int(read_file(root, leaf, "pids.current"), "pids.current")
    assert pids == 1


def test_no_internal_processes_is_a_clear_error(
    where: tuple[CgroupRoot, str], sleeper: subprocess.Popen[bytes]
) -> None:
    root, rel = where
    # the scratch cgroup has controllers enabled for its children: it cannot hold a process
    with pytest.raises(CgroupWriteError) as info:
        writer.move_pid(root, rel, sleeper.pid)
    assert info.value.errno == errno.EBUSY
    assert "no internal processes" in str(info.value)
    # a cgroup holding a process cannot enable controllers for children
    leaf = f"{rel}/busy"
    writer.create(root, leaf)
    assert writer.move_pid(root, leaf, sleeper.pid)
    with pytest.raises(CgroupWriteError) as info:
        writer.create(root, f"{leaf}/child", ["memory"])
    msg = str(info.value)
    assert info.value.errno == errno.EBUSY
    assert f"cgroup {leaf!r} holds processes (PIDs {sleeper.pid})" in msg
    assert "no internal processes" in msg and f"{leaf}/leaf" in msg
    assert not os.path.exists(root.resolve(f"{leaf}/child"))


def test_removed_between_listing_and_reading_is_gone(where: tuple[CgroupRoot, str]) -> None:
    root, rel = where
    for name in ("a", "b", "c"):
        writer.create(root, f"{rel}/{name}")
    listed = list(walk(root, start=rel))
    writer.remove(root, f"{rel}/b")
    outcomes: dict[str, str] = {}
    with KeptReader(root) as reader:
        for r, ino in listed:
            try:
                reader.read_many(r, ["cpu.stat", "memory.current", "pids.current"], ino)
                outcomes[r] = "read"
            except CgroupGone:
                outcomes[r] = "gone"
        assert outcomes == {rel: "read", f"{rel}/a": "read", f"{rel}/b": "gone", f"{rel}/c": "read"}
        # a kept fd of a cgroup removed afterwards: ENODEV on pread, the same outcome
        writer.remove(root, f"{rel}/c")
        with pytest.raises(CgroupGone):
            reader.read(f"{rel}/c", "memory.current")
        assert f"{rel}/c" not in reader.kept()


def test_create_removes_what_it_made_when_a_later_step_fails(
    where: tuple[CgroupRoot, str],
) -> None:
    root, rel = where
    # the kernel refuses cgroups deeper than cgroup.max.depth: the third level fails
    writer.write(root, rel, "cgroup.max.depth", "2")
    with pytest.raises(writer.CgroupDirError) as info:
        writer.create(root, f"{rel}/x/y/z", ["memory"])
    assert info.value.errno == errno.EAGAIN
    assert "max.depth" in str(info.value)
    assert not os.path.exists(root.resolve(f"{rel}/x"))
    writer.write(root, rel, "cgroup.max.depth", "max")
    assert writer.create(root, f"{rel}/x/y/z", ["memory"]) == [
        f"{rel}/x",
        f"{rel}/x/y",
        f"{rel}/x/y/z",
    ]
    assert "memory" in parsers.parse_controllers(
        read_file(root, f"{rel}/x/y/z", "cgroup.controllers")
    )


def test_kept_reader_reads_the_whole_tree(where: tuple[CgroupRoot, str]) -> None:
    """Every file the collectors read, on every cgroup of a real kernel, parses or is None."""
    root, _rel = where
    files: dict[str, Callable[[bytes, str], object]] = {
        "cpu.stat": parsers.parse_cpu_stat,
        "memory.current": parsers.parse_int,
        "memory.stat": parsers.parse_memory_stat,
        "memory.events": parsers.parse_memory_events,
        "io.stat": parsers.parse_io_stat,
        "cpu.pressure": parsers.parse_pressure,
        "cgroup.events": parsers.parse_cgroup_events,
    }
    seen = 0
    with KeptReader(root) as reader:
        for r, ino in walk(root):
            try:
                for name, data in reader.read_many(r, files, ino).items():
                    if data is not None:
                        files[name](data, name)
                        seen += 1
            except CgroupGone:
                continue
        fds = reader.open_fd_count()
        assert fds > 0
    assert seen > 10
    assert reader.open_fd_count() == 0
