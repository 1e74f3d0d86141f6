"""Mount detection on fixture mount tables (as /proc/self/mounts prints them)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cgroupfs.mount import detect, is_cgroup2, mount_of, parse_mounts

# this development host (Debian 12 guest, kernel 6.18): hybrid, v2 at /sys/fs/cgroup/unified
HYBRID = """\
proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0
/dev/vda / ext4 rw,relatime 0 0
tmpfs /sys/fs/cgroup tmpfs rw,relatime,mode=755 0 0
cgroup /sys/fs/cgroup/cpu cgroup rw,relatime,cpu 0 0
cgroup /sys/fs/cgroup/cpuacct cgroup rw,relatime,cpuacct 0 0
cgroup /sys/fs/cgroup/cpuset cgroup rw,relatime,cpuset 0 0
cgroup /sys/fs/cgroup/memory cgroup rw,relatime,memory 0 0
cgroup /sys/fs/cgroup/devices cgroup rw,relatime,devices 0 0
cgroup /sys/fs/cgroup/freezer cgroup rw,relatime,freezer 0 0
cgroup /sys/fs/cgroup/blkio cgroup rw,relatime,blkio 0 0
cgroup /sys/fs/cgroup/pids cgroup rw,relatime,pids 0 0
cgroup /sys/fs/cgroup/systemd cgroup rw,relatime,name=systemd 0 0
cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0
"""

# the test VM (Debian kernel 6.1 under virtme-ng) and any current distribution: pure v2
PURE_V2 = """\
sysfs /sys sysfs rw,nosuid,nodev,noexec,relatime 0 0
cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid,nodev,noexec,relatime,nsdelegate,memory_recursiveprot 0 0
none /tmp tmpfs rw,relatime 0 0
"""

# Ubuntu 20.04 style hybrid: combined v1 hierarchies, names with commas in the mount point
UBUNTU_HYBRID = """\
tmpfs /sys/fs/cgroup tmpfs ro,nosuid,nodev,noexec,mode=755 0 0
cgroup2 /sys/fs/cgroup/unified cgroup2 rw,nosuid,nodev,noexec,relatime,nsdelegate 0 0
cgroup /sys/fs/cgroup/systemd cgroup rw,nosuid,nodev,noexec,relatime,xattr,name=systemd 0 0
cgroup /sys/fs/cgroup/cpu,cpuacct cgroup rw,nosuid,nodev,noexec,relatime,cpu,cpuacct 0 0
cgroup /sys/fs/cgroup/memory cgroup rw,nosuid,nodev,noexec,relatime,memory 0 0
cgroup /sys/fs/cgroup/blkio cgroup rw,nosuid,nodev,noexec,relatime,blkio 0 0
"""

# CentOS 7 style: cgroup v1 only
V1_ONLY = """\
tmpfs /sys/fs/cgroup tmpfs ro,nosuid,nodev,noexec,mode=755 0 0
cgroup /sys/fs/cgroup/memory cgroup rw,nosuid,nodev,noexec,relatime,memory 0 0
cgroup /sys/fs/cgroup/cpu,cpuacct cgroup rw,nosuid,nodev,noexec,relatime,cpu,cpuacct 0 0
"""


def _setup(tmp_path: Path, table: str, mount: str | None, controllers: str | None) -> str:
    mounts = tmp_path / "mounts"
    mounts.write_text(table)
    if mount is not None and controllers is not None:
        d = tmp_path / "fs" / mount.lstrip("/")
        d.mkdir(parents=True)
        (d / "cgroup.controllers").write_text(controllers + "\n")
    return str(mounts)


def test_pure_v2(tmp_path: Path) -> None:
    mounts = _setup(
        tmp_path, PURE_V2, "/sys/fs/cgroup", "cpuset cpu io memory hugetlb pids rdma misc"
    )
    m = detect(mounts, fs_prefix=str(tmp_path / "fs"))
    assert m.mode == "v2"
    assert m.path == "/sys/fs/cgroup"
    assert {"cpu", "memory", "pids", "io"} <= m.controllers
    assert m.missing == {}
    assert m.usable("memory")


def test_pure_v2_missing_controller_explained(tmp_path: Path) -> None:
    mounts = _setup(tmp_path, PURE_V2, "/sys/fs/cgroup", "cpu memory pids")
    m = detect(mounts, fs_prefix=str(tmp_path / "fs"))
    assert m.mode == "v2"
    assert set(m.missing) == {"io", "cpuset", "hugetlb"}
    assert "not offered in /sys/fs/cgroup/cgroup.controllers" in m.missing["io"]
    assert "cgroup_disable" in m.missing["io"]


def test_hybrid_this_host(tmp_path: Path) -> None:
    mounts = _setup(tmp_path, HYBRID, "/sys/fs/cgroup/unified", "hugetlb")
    m = detect(mounts, fs_prefix=str(tmp_path / "fs"))
    assert m.mode == "hybrid"
    assert m.path == "/sys/fs/cgroup/unified"
    assert m.controllers == frozenset({"hugetlb"})
    assert set(m.missing) == {"cpu", "memory", "pids", "io", "cpuset"}
    why = m.missing["memory"]
    assert "cgroup v1 hierarchy mounted at /sys/fs/cgroup/memory" in why
    assert "cannot limit or measure memory" in why
    assert "systemd.unified_cgroup_hierarchy=1" in why
    assert "/sys/fs/cgroup/blkio" in m.missing["io"]  # v1 calls io blkio
    assert "memory" in m.summary() and "hybrid" in m.summary()


def test_hybrid_combined_v1_hierarchies(tmp_path: Path) -> None:
    mounts = _setup(tmp_path, UBUNTU_HYBRID, "/sys/fs/cgroup/unified", "")
    m = detect(mounts, fs_prefix=str(tmp_path / "fs"))
    assert m.mode == "hybrid"
    assert m.controllers == frozenset()
    assert "/sys/fs/cgroup/cpu,cpuacct" in m.missing["cpu"]
    # pids is on no v1 hierarchy either: the generic reason
    assert "not offered" in m.missing["pids"]


def test_unreadable_controllers_file_is_the_reason(tmp_path: Path) -> None:
    mounts = _setup(tmp_path, PURE_V2, None, None)
    m = detect(mounts, fs_prefix=str(tmp_path / "fs"))
    assert m.mode == "v2"
    assert m.controllers == frozenset()
    assert "could not read /sys/fs/cgroup/cgroup.controllers" in m.missing["memory"]


@pytest.mark.parametrize("table", [V1_ONLY, "", "garbage\n"])
def test_none(tmp_path: Path, table: str) -> None:
    m = detect(_setup(tmp_path, table, None, None))
    assert m.mode == "none"
    assert m.path is None
    assert m.controllers == frozenset()
    assert set(m.missing) == {"cpu", "memory", "pids", "io", "cpuset", "hugetlb"}
    assert all("no cgroup2 filesystem is mounted" in why for why in m.missing.values())
    if table == V1_ONLY:
        assert "/sys/fs/cgroup/memory" in m.missing["memory"]


def test_missing_mounts_file(tmp_path: Path) -> None:
    assert detect(str(tmp_path / "absent")).mode == "none"


def test_v2_outside_sys_fs_cgroup(tmp_path: Path) -> None:
    table = "cgroup2 /mnt/my\\040cgroup cgroup2 rw 0 0\n"
    mounts = _setup(tmp_path, table, "/mnt/my cgroup", "cpu memory pids io")
    m = detect(mounts, fs_prefix=str(tmp_path / "fs"))
    assert m.mode == "v2"
    assert m.path == "/mnt/my cgroup"  # octal escape decoded
    assert "cpuset" in m.missing


def test_parse_mounts_and_mount_of(tmp_path: Path) -> None:
    entries = parse_mounts(HYBRID + "short line\n")
    assert len(entries) == 13
    assert entries[-1].fstype == "cgroup2"
    mounts = tmp_path / "mounts"
    mounts.write_text(HYBRID)
    entry = mount_of("/sys/fs/cgroup/unified/a/b", str(mounts))
    assert entry is not None and entry.path == "/sys/fs/cgroup/unified"
    assert is_cgroup2("/sys/fs/cgroup/unified/a", str(mounts))
    assert not is_cgroup2("/sys/fs/cgroup/unifiedx", str(mounts))  # tmpfs, not the v2 mount
    assert not is_cgroup2("/sys/fs/cgroup/memory", str(mounts))
    assert not is_cgroup2("/etc", str(mounts))
    m = tmp_path / "m2"
    m.write_text(PURE_V2)
    assert is_cgroup2("/sys/fs/cgroup/system.slice", str(m))
