"""Writer semantics on a temp dir that mimics cgroupfs (regular files stand in for the kernel's).

The kernel's own refusals (EBUSY, ESRCH, EINVAL) are exercised on the host and in the VM; here
the retry and cleanup logic is checked by injecting them.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from cgroupfs import writer
from cgroupfs.errors import CgroupError, CgroupGone, CgroupWriteError, UnsafePath
from cgroupfs.paths import CgroupRoot


def _cgroup(d: Path, controllers: str = "cpu memory pids") -> Path:
    d.mkdir(exist_ok=True)
    for name, body in (
        ("cgroup.controllers", controllers + "\n"),
        ("cgroup.subtree_control", ""),
        ("cgroup.procs", ""),
        ("cgroup.freeze", "0\n"),
        ("cgroup.events", "populated 0\nfrozen 0\n"),
        ("memory.max", "max\n"),
        ("cpu.max", "max 100000\n"),
    ):
        (d / name).write_text(body)
    return d


@pytest.fixture
def root(tmp_path: Path) -> CgroupRoot:
    _cgroup(tmp_path)
    _cgroup(tmp_path / "web")
    return CgroupRoot(str(tmp_path))


def test_write_and_set_limits(root: CgroupRoot, tmp_path: Path) -> None:
    writer.write(root, "web", "memory.max", "536870912")
    assert (tmp_path / "web" / "memory.max").read_text().startswith("536870912")
    writer.set_limits(root, "web", {"memory.max": "1048576", "cpu.max": "50000 100000"})
    assert (tmp_path / "web" / "memory.max").read_text().startswith("1048576")
    assert (tmp_path / "web" / "cpu.max").read_text() == "50000 100000"


def test_write_errors(root: CgroupRoot) -> None:
    with pytest.raises(CgroupGone):
        writer.write(root, "nope", "memory.max", "1")
    with pytest.raises(CgroupWriteError) as info:
        writer.write(root, "web", "pids.max", "10")
    assert info.value.errno == errno.ENOENT
    assert "'10'" in str(info.value) and "pids.max" in str(info.value)
    assert "pids controller is not enabled" in str(info.value)
    with pytest.raises(CgroupWriteError, match="empty value"):
        writer.write(root, "web", "memory.max", "")
    for rel, name in (("../x", "memory.max"), ("web", "../memory.max"), ("cgroup.procs", "x")):
        with pytest.raises(UnsafePath):
            writer.write(root, rel, name, "1")


def test_set_limits_checks_every_name_first(root: CgroupRoot, tmp_path: Path) -> None:
    with pytest.raises(UnsafePath):
        writer.set_limits(root, "web", {"memory.max": "4096", "../memory.max": "1"})
    assert (tmp_path / "web" / "memory.max").read_text() == "max\n"


def test_create_levels_and_return_created(root: CgroupRoot, tmp_path: Path) -> None:
    assert writer.create(root, "web/a/b") == ["web/a", "web/a/b"]
    assert (tmp_path / "web" / "a" / "b").is_dir()
    assert writer.create(root, "web/a/b") == []
    with pytest.raises(UnsafePath):
        writer.create(root, "web/memory.high")
    assert not (tmp_path / "web" / "memory.high").exists()


def test_create_enables_only_available_controllers(root: CgroupRoot, tmp_path: Path) -> None:
    _cgroup(tmp_path / "web", controllers="cpu")
    assert writer.create(root, "web/leaf", ["memory", "cpu", "io"]) == ["web/leaf"]
    assert (tmp_path / "cgroup.subtree_control").read_text() == "+memory +cpu"
    assert (tmp_path / "web" / "cgroup.subtree_control").read_text() == "+cpu"


def test_create_skips_already_enabled(root: CgroupRoot, tmp_path: Path) -> None:
    (tmp_path / "cgroup.subtree_control").write_text("cpu memory\n")
    writer.create(root, "web/x", ["cpu", "memory"])
    assert (tmp_path / "cgroup.subtree_control").read_text() == "cpu memory\n"


def test_create_removes_what_it_made_when_a_later_step_fails(
    root: CgroupRoot, tmp_path: Path
) -> None:
    # "new" is made by mkdir on a plain filesystem, so it lacks cgroup.controllers: enabling
    # controllers in it (the step before making "new/x") fails.
    with pytest.raises(CgroupError, match="not a cgroup directory"):
        writer.create(root, "web/new/x", ["cpu"])
    assert not (tmp_path / "web" / "new").exists()
    assert (tmp_path / "web").is_dir()  # it existed before: kept


def test_create_cleanup_on_injected_failure(
    root: CgroupRoot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_mkdir = os.mkdir

    def failing_mkdir(path: str, *args: object, **kwargs: object) -> None:
        if path.endswith("/c"):
            raise OSError(errno.EAGAIN, "Resource temporarily unavailable")
        real_mkdir(path)

    monkeypatch.setattr(os, "mkdir", failing_mkdir)
    with pytest.raises(writer.CgroupDirError, match=r"max\.descendants"):
        writer.create(root, "web/a/b/c")
    assert not (tmp_path / "web" / "a").exists()


def test_move_pid_retries_einval_and_esrch_is_false(
    root: CgroupRoot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    outcomes = [errno.EINVAL, errno.EINVAL, None]

    def fake(path: str, filename: str, value: str) -> None:
        calls.append(value)
        err = outcomes.pop(0)
        if err is not None:
            raise CgroupWriteError(path, value, err)

    monkeypatch.setattr(writer, "_write_path", fake)
    assert writer.move_pid(root, "web", 123, delay_s=0) is True
    assert calls == ["123"] * 3

    outcomes[:] = [errno.ESRCH]
    assert writer.move_pid(root, "web", 123) is False

    outcomes[:] = [errno.EINVAL] * 3
    with pytest.raises(CgroupWriteError):
        writer.move_pid(root, "web", 123, retries=2, delay_s=0)

    outcomes[:] = [errno.EBUSY]
    with pytest.raises(CgroupWriteError):
        writer.move_pid(root, "web", 123)
    for bad in (0, -1, True):
        with pytest.raises(ValueError):
            writer.move_pid(root, "web", bad)


def test_move_pid_writes_cgroup_procs(root: CgroupRoot, tmp_path: Path) -> None:
    assert writer.move_pid(root, "web", os.getpid()) is True
    assert (tmp_path / "web" / "cgroup.procs").read_text() == str(os.getpid())


def test_freeze_waits_for_events(root: CgroupRoot, tmp_path: Path) -> None:
    assert writer.freeze(root, "web", True, timeout_s=0.05) is False  # events still frozen 0
    assert (tmp_path / "web" / "cgroup.freeze").read_text().startswith("1")
    (tmp_path / "web" / "cgroup.events").write_text("populated 0\nfrozen 1\n")
    assert writer.freeze(root, "web", True) is True
    assert writer.freeze(root, "web", False, timeout_s=0.01) is False


def test_kill_writes_one(root: CgroupRoot, tmp_path: Path) -> None:
    with pytest.raises(CgroupWriteError, match=r"5\.14"):
        writer.kill(root, "web")  # no cgroup.kill file: an old kernel
    (tmp_path / "web" / "cgroup.kill").write_text("")
    writer.kill(root, "web")
    assert (tmp_path / "web" / "cgroup.kill").read_text() == "1"


def test_remove(tmp_path: Path) -> None:
    root = CgroupRoot(str(tmp_path))
    for d in ("a/b/c", "a/d"):
        (tmp_path / d).mkdir(parents=True)
    writer.remove(root, "a")
    assert not (tmp_path / "a").exists()
    writer.remove(root, "a")  # already gone: success
    for rel in ("", "/", "../x"):
        with pytest.raises(UnsafePath):
            writer.remove(root, rel)
    assert tmp_path.is_dir()


def test_remove_gives_up_after_timeout(tmp_path: Path) -> None:
    root = CgroupRoot(str(tmp_path))
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "cgroup.procs").write_text("42\n")  # a file: rmdir says ENOTEMPTY
    with pytest.raises(writer.CgroupDirError, match="PIDs 42"):
        writer.remove(root, "busy", timeout_s=0.05)
