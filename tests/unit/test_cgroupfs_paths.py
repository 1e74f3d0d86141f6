"""Path safety: names validated, every resolved path stays beneath the root."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cgroupfs.errors import UnsafePath
from cgroupfs.paths import CgroupRoot, check_filename, join_rel, split_rel, validate_name


@pytest.mark.parametrize(
    "name",
    [
        "",
        ".",
        "..",
        "a/b",
        "../x",
        "/",
        "a\0b",
        "a\nb",
        "x" * 256,
        "cgroup.procs",
        "memory.max",
        "cpu.stat",
        "cgroup.subtree_control",
        "pids.max",
        "io.weight",
        "cpuset.cpus",
    ],
)
def test_unsafe_names_refused(name: str) -> None:
    with pytest.raises(UnsafePath):
        validate_name(name)


def test_refusal_says_why() -> None:
    with pytest.raises(UnsafePath, match="control file"):
        validate_name("cgroup.procs")
    with pytest.raises(UnsafePath, match="'/'"):
        validate_name("a/b")
    with pytest.raises(UnsafePath, match="leave"):
        validate_name("..")
    with pytest.raises(UnsafePath, match="NUL"):
        validate_name("a\0")


@pytest.mark.parametrize(
    "name", ["web", "system.slice", "docker-abc.scope", "x" * 255, "memory", "cpu-hog", "été"]
)
def test_plain_names_accepted(name: str) -> None:
    assert validate_name(name) == name


def test_non_strict_allows_existing_dotted_names_only() -> None:
    assert validate_name("cpu.service", strict=False) == "cpu.service"
    with pytest.raises(UnsafePath):
        validate_name("cpu.service")
    for bad in ("", "..", "a/b", "a\0"):
        with pytest.raises(UnsafePath):
            validate_name(bad, strict=False)


def test_split_rel() -> None:
    assert split_rel("") == []
    assert split_rel("/") == []
    assert split_rel("a/b/") == ["a", "b"]
    assert split_rel("/a") == ["a"]
    for bad in ("a//b", "a/../b", "../x", "a/./b", "a/cgroup.procs"):
        with pytest.raises(UnsafePath):
            split_rel(bad)


def test_resolve_stays_beneath_root(tmp_path: Path) -> None:
    root = CgroupRoot(str(tmp_path) + "/")
    assert root.path == str(tmp_path)
    assert root.resolve("") == str(tmp_path)
    assert root.resolve("a/b") == str(tmp_path / "a" / "b")
    for bad in ("../x", "a/../../x", "..", "a/b/..", "cgroup.procs", "a/memory.max"):
        with pytest.raises(UnsafePath):
            root.resolve(bad)


def test_resolve_refuses_symlink_escape(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    tree = tmp_path / "tree"
    (tree / "a").mkdir(parents=True)
    os.symlink(outside, tree / "a" / "link")
    os.symlink("../..", tree / "a" / "up")
    root = CgroupRoot(str(tree))
    with pytest.raises(UnsafePath, match="outside"):
        root.resolve("a/link")
    with pytest.raises(UnsafePath, match="outside"):
        root.resolve("a/link/deeper")
    with pytest.raises(UnsafePath, match="outside"):
        root.resolve("a/up")
    # a symlink that stays inside is fine
    os.symlink("..", tree / "a" / "parent")
    assert root.resolve("a/parent") == str(tree / "a" / "parent")


def test_root_itself_behind_symlink(tmp_path: Path) -> None:
    real = tmp_path / "real"
    (real / "a").mkdir(parents=True)
    os.symlink(real, tmp_path / "alias")
    root = CgroupRoot(str(tmp_path / "alias"))
    assert root.resolve("a") == str(tmp_path / "alias" / "a")


def test_rel_of(tmp_path: Path) -> None:
    root = CgroupRoot(str(tmp_path))
    assert root.rel_of(str(tmp_path)) == ""
    assert root.rel_of(str(tmp_path / "a" / "b")) == "a/b"
    assert root.rel_of(str(tmp_path) + "/a/b/") == "a/b"
    for bad in ("/etc", str(tmp_path) + "x/a", str(tmp_path / "a" / ".." / ".."), "relative"):
        with pytest.raises(UnsafePath):
            root.rel_of(bad)


def test_file_and_filename(tmp_path: Path) -> None:
    root = CgroupRoot(str(tmp_path))
    assert root.file("a", "memory.max") == str(tmp_path / "a" / "memory.max")
    for bad in ("", "..", "a/b", "x\0"):
        with pytest.raises(UnsafePath):
            check_filename(bad)
    assert join_rel("", "a") == "a"
    assert join_rel("a/", "b") == "a/b"


_PARTS = st.sampled_from(["a", "b", "..", ".", "", "cgroup.procs", "x\0", "link", "up", "c.d"])


@given(st.lists(_PARTS, max_size=6), st.booleans())
def test_resolve_never_escapes(
    tmp_path_factory: pytest.TempPathFactory, parts: list[str], strict: bool
) -> None:
    base = tmp_path_factory.getbasetemp() / "escape"
    tree = base / "tree"
    if not tree.exists():
        (tree / "a" / "b").mkdir(parents=True)
        (base / "outside").mkdir()
        os.symlink(base / "outside", tree / "a" / "link")
        os.symlink("../..", tree / "a" / "up")
    root = CgroupRoot(str(tree))
    try:
        path = root.resolve("/".join(parts), strict=strict)
    except UnsafePath:
        return
    real = os.path.realpath(path)
    assert real == str(tree) or real.startswith(str(tree) + "/")
    assert ".." not in path.split("/")
