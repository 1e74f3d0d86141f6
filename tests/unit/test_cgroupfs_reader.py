"""KeptReader, walk and one-shot reads on a temp dir that mimics cgroupfs.

What a temp dir cannot mimic (ENODEV from a kept fd of a removed cgroup) is tested on the
host's real cgroup v2 tree (tests/host/test_cgroupfs_host.py).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from cgroupfs.errors import CgroupGone, UnsafePath
from cgroupfs.paths import CgroupRoot
from cgroupfs.reader import KeptReader, read_file, read_procs, walk


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _write_in_place(path: Path, data: bytes) -> None:
    """Rewrite a file keeping its inode, as the kernel regenerates a cgroup file."""
    with open(path, "r+b") as f:
        f.truncate(0)
        f.write(data)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    for rel in ("", "a", "a/b", "c"):
        d = tmp_path / rel
        d.mkdir(exist_ok=True)
        (d / "cpu.stat").write_bytes(f"usage_usec {len(rel)}\n".encode())
        (d / "cgroup.procs").write_bytes(b"")
    return tmp_path


def test_read_keeps_fd_and_sees_new_content(tree: Path) -> None:
    reader = KeptReader(CgroupRoot(str(tree)))
    assert reader.read("a", "cpu.stat") == b"usage_usec 1\n"
    assert reader.open_fd_count() == 2  # dir fd + file fd
    _write_in_place(tree / "a" / "cpu.stat", b"usage_usec 99\n")
    assert reader.read("a", "cpu.stat") == b"usage_usec 99\n"
    assert reader.open_fd_count() == 2  # re-read through the same fd
    assert reader.read("", "cpu.stat") == b"usage_usec 0\n"
    assert reader.open_fd_count() == 4
    reader.close()
    assert reader.open_fd_count() == 0


def test_no_fd_leak(tree: Path) -> None:
    before = _fds()
    with KeptReader(CgroupRoot(str(tree))) as reader:
        for _ in range(3):
            for rel, inode in walk(reader.root):
                reader.read_many(rel, ["cpu.stat", "cgroup.procs", "memory.max"], inode)
        assert _fds() - before == reader.open_fd_count() == 4 * 3
        reader.forget("a")
        assert reader.open_fd_count() == 3 * 3
        reader.forget("a")  # idempotent
    assert _fds() == before


def test_absent_file_is_none_and_rechecked(tree: Path) -> None:
    reader = KeptReader(CgroupRoot(str(tree)), absent_recheck_s=3600)
    assert reader.read("a", "memory.max") is None
    (tree / "a" / "memory.max").write_bytes(b"max\n")
    assert reader.read("a", "memory.max") is None  # still cached as absent
    reader.absent_recheck_s = 0
    assert reader.read("a", "memory.max") == b"max\n"
    reader.close()


def test_removed_cgroup_is_gone_and_forgotten(tree: Path) -> None:
    reader = KeptReader(CgroupRoot(str(tree)))
    assert reader.read("c", "cpu.stat") is not None
    shutil.rmtree(tree / "c")
    with pytest.raises(CgroupGone):
        reader.read("c", "cgroup.procs")  # ENOENT on open, and the directory is gone
    assert "c" not in reader.kept()
    assert reader.open_fd_count() == 0
    with pytest.raises(CgroupGone):
        reader.read("never", "cpu.stat")
    reader.close()


def test_inode_change_reopens_and_stale_inode_is_gone(tree: Path) -> None:
    root = CgroupRoot(str(tree))
    reader = KeptReader(root)
    old = os.stat(tree / "c").st_ino
    assert reader.read("c", "cpu.stat", old) == b"usage_usec 1\n"
    # the cgroup is removed and another made at the same path (keep the old inode busy so
    # the filesystem cannot hand out the same inode number again)
    os.rename(tree / "c", tree / "c-old")
    (tree / "c").mkdir()
    (tree / "c" / "cpu.stat").write_bytes(b"usage_usec 7\n")
    new = os.stat(tree / "c").st_ino
    assert new != old
    assert reader.read("c", "cpu.stat", new) == b"usage_usec 7\n"
    assert reader.inode_of("c") == new
    assert reader.open_fd_count() == 2
    with pytest.raises(CgroupGone, match="replaced"):
        reader.read("c", "cpu.stat", old)
    assert reader.open_fd_count() == 0
    reader.close()


def test_big_file_grows_buffer(tree: Path) -> None:
    body = b"".join(
        b"8:%d rbytes=%d wbytes=0 rios=1 wios=0 dbytes=0 dios=0\n" % (i, i) for i in range(400)
    )
    assert len(body) > 16384
    (tree / "a" / "io.stat").write_bytes(body)
    reader = KeptReader(CgroupRoot(str(tree)))
    assert reader.read("a", "io.stat") == body
    assert reader.read("a", "io.stat") == body
    reader.close()


def test_exact_buffer_size_is_read_whole(tree: Path) -> None:
    body = b"x" * 4095 + b"\n"  # exactly the initial buffer
    (tree / "a" / "memory.stat").write_bytes(body)
    with KeptReader(CgroupRoot(str(tree))) as reader:
        assert reader.read("a", "memory.stat") == body


def test_max_fds_degrades_to_one_shot(tree: Path) -> None:
    with KeptReader(CgroupRoot(str(tree)), max_fds=2) as reader:
        assert reader.read("a", "cpu.stat") == b"usage_usec 1\n"
        assert reader.read("a", "cgroup.procs") == b""
        assert reader.read("a", "cgroup.procs") == b""
        assert reader.open_fd_count() == 2


def test_unsafe_rel_refused(tree: Path) -> None:
    with KeptReader(CgroupRoot(str(tree))) as reader:
        for rel in ("../x", "a/../..", "a//b"):
            with pytest.raises(UnsafePath):
                reader.read(rel, "cpu.stat")
        with pytest.raises(UnsafePath):
            reader.read("a", "../cpu.stat")
        assert reader.open_fd_count() == 0 or reader.kept() == ["a"]


def test_forget_missing(tree: Path) -> None:
    with KeptReader(CgroupRoot(str(tree))) as reader:
        for rel in ("", "a", "c"):
            reader.read(rel, "cpu.stat")
        assert reader.forget_missing(["", "a"]) == ["c"]
        assert sorted(reader.kept()) == ["", "a"]


def test_walk_order_inodes_depth(tree: Path) -> None:
    (tree / "a" / "b" / "d").mkdir()
    (tree / "a" / "file").write_bytes(b"")  # files are not cgroups
    os.symlink(tree / "c", tree / "a" / "link")  # symlinks are not followed
    root = CgroupRoot(str(tree))
    got = list(walk(root))
    assert [rel for rel, _ in got] == ["", "a", "a/b", "a/b/d", "c"]
    assert all(ino == os.stat(root.resolve(rel)).st_ino for rel, ino in got)
    assert [rel for rel, _ in walk(root, max_depth=1)] == ["", "a", "c"]
    assert [rel for rel, _ in walk(root, max_depth=0)] == [""]
    assert [rel for rel, _ in walk(root, start="a")] == ["a", "a/b", "a/b/d"]
    assert list(walk(root, start="nope")) == []


def test_walk_skips_cgroup_vanishing_mid_walk(tree: Path) -> None:
    root = CgroupRoot(str(tree))
    seen = []
    for rel, _ino in walk(root):
        seen.append(rel)
        if rel == "a":
            shutil.rmtree(tree / "a")  # listed, then gone before its children are listed
    assert seen == ["", "a", "c"]


def test_walk_yields_dotted_existing_names(tree: Path) -> None:
    (tree / "cpu.service").mkdir()
    assert "cpu.service" in [rel for rel, _ in walk(CgroupRoot(str(tree)))]
    with KeptReader(CgroupRoot(str(tree))) as reader:
        assert reader.read("cpu.service", "cpu.stat") is None


def test_read_file_and_procs(tree: Path) -> None:
    root = CgroupRoot(str(tree))
    assert read_file(root, "a", "cpu.stat") == b"usage_usec 1\n"
    with pytest.raises(FileNotFoundError):
        read_file(root, "a", "memory.max")
    with pytest.raises(CgroupGone):
        read_file(root, "nope", "cpu.stat")
    (tree / "a" / "cgroup.procs").write_bytes(b"12\n7\n12\n")
    assert read_procs(root, "a") == (12, 7)
    assert read_procs(root, "c") == ()
    with pytest.raises(CgroupGone):
        read_procs(root, "nope")


def test_file_outgrowing_its_fitted_buffer_is_read_whole(tree: Path) -> None:
    # After the first read the buffer is sized to the content (plus room); a file that then
    # grows far past it must still come back whole, through read and read_files.
    with KeptReader(CgroupRoot(str(tree))) as reader:
        assert reader.read("a", "cpu.stat") == b"usage_usec 1\n"
        big = b"".join(b"key%d %d\n" % (i, i) for i in range(2000))
        _write_in_place(tree / "a" / "cpu.stat", big)
        assert reader.read("a", "cpu.stat") == big
        _write_in_place(tree / "a" / "cpu.stat", b"usage_usec 2\n")
        assert reader.read_files("a", ("cpu.stat",)) == [b"usage_usec 2\n"]
        _write_in_place(tree / "a" / "cpu.stat", big + big)
        assert reader.read_files("a", ("cpu.stat",)) == [big + big]


def test_read_files_in_order_with_absent_and_gone(tree: Path) -> None:
    root = CgroupRoot(str(tree))
    with KeptReader(root) as reader:
        ino = os.stat(tree / "a").st_ino
        got = reader.read_files("a", ("cpu.stat", "memory.max", "cgroup.procs"), ino)
        assert got == [b"usage_usec 1\n", None, b""]
        assert reader.read_files("a", ("cpu.stat", "cgroup.procs"), ino) == got[::2]
        assert reader.open_fd_count() == 3
        shutil.rmtree(tree / "c")
        with pytest.raises(CgroupGone):
            reader.read_files("c", ("cpu.stat",))
        with pytest.raises(CgroupGone, match="replaced"):
            reader.read_files("a", ("cpu.stat",), ino + 1)


def test_read_files_repeated_reads_see_changes_and_growth(tree: Path) -> None:
    names = ("cpu.stat", "cgroup.procs")
    with KeptReader(CgroupRoot(str(tree))) as reader:
        assert reader.read_files("a", names) == [b"usage_usec 1\n", b""]
        assert reader.read_files("a", names) == [b"usage_usec 1\n", b""]  # by the kept fds
        _write_in_place(tree / "a" / "cpu.stat", b"usage_usec 22\n")
        _write_in_place(tree / "a" / "cgroup.procs", b"1\n2\n")
        assert reader.read_files("a", names) == [b"usage_usec 22\n", b"1\n2\n"]
        big = b"9" * 10_000 + b"\n"  # fills the fitted buffer: read again whole
        _write_in_place(tree / "a" / "cgroup.procs", big)
        assert reader.read_files("a", names) == [b"usage_usec 22\n", big]
        assert reader.read_files("a", names) == [b"usage_usec 22\n", big]
        assert reader.open_fd_count() == 3
