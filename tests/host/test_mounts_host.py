"""The mount steps on this host's kernel, each in a forked child with a mount namespace of its own
(gone with it): the read-only copy of the host's tree, and the remount fallback for kernels
without mount_setattr (before 5.12)."""

from __future__ import annotations

import errno
import json
import os
import stat
import tempfile
from collections.abc import Callable

import pytest

from workloads.runtime import linux, mounts

pytestmark = pytest.mark.host


def _in_mount_ns(body: Callable[[], dict[str, object]]) -> dict[str, object]:
    """Run ``body`` in a forked child in a new, private mount namespace; its result as JSON."""
    rd, wr = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(rd)
        try:
            linux.unshare(linux.CLONE_NEWNS)
            linux.mount(None, "/", None, linux.MS_REC | linux.MS_PRIVATE)
            out = body()
        except BaseException as e:
            out = {"error": repr(e)}
        os.write(wr, json.dumps(out).encode())
        os._exit(0)
    os.close(wr)
    with os.fdopen(rd) as f:
        data = f.read()
    os.waitpid(pid, 0)
    result: dict[str, object] = json.loads(data)
    assert "error" not in result, result
    return result


def _flags(path: str) -> list[str]:
    f = os.statvfs(path).f_flag
    return [name for name, bit in (("ro", os.ST_RDONLY), ("nodev", os.ST_NODEV)) if f & bit]


def test_host_root_copy_is_read_only_without_the_hosts_runtime_mounts() -> None:
    def body() -> dict[str, object]:
        root = mounts.build_host_root()
        points = mounts._mountinfo_points(root)
        return {
            "root": root,
            "etc": _flags(root + "/etc"),
            "proc_entries": len(os.listdir(root + "/proc")),
            "tmp": _flags(root + "/tmp"),
            "tmp_is_mount": root + "/tmp" in points,
            "proc_is_mount": root + "/proc" in points,
            "sys_is_mount": root + "/sys" in points,
            "nodev_everywhere": all("nodev" in _flags(p) for p in points),
        }

    r = _in_mount_ns(body)
    assert r["etc"] == ["ro", "nodev"]
    assert r["proc_is_mount"] is False and r["sys_is_mount"] is False
    assert r["proc_entries"] == 0  # an empty directory: no host process below
    assert r["tmp_is_mount"] is True and r["tmp"] == ["nodev"]  # the private, writable /tmp
    assert r["nodev_everywhere"] is True
    assert not os.path.ismount(str(r["root"]))  # nothing of it reached this namespace


def test_remount_fallback_when_the_kernel_lacks_mount_setattr(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_setattr(path: str, attr_set: int, *, recursive: bool) -> None:
        raise OSError(errno.ENOSYS, "mount_setattr: Function not implemented")

    monkeypatch.setattr(linux, "mount_setattr", no_setattr)
    top = tempfile.mkdtemp(prefix="pystats-mounts-")
    try:

        def body() -> dict[str, object]:
            linux.mount("tmpfs", top, "tmpfs", linux.MS_NOSUID | linux.MS_NOEXEC, "size=64k")
            os.mkdir(top + "/sub")
            linux.mount("tmpfs", top + "/sub", "tmpfs", linux.MS_NOEXEC, "size=64k")
            mounts.set_attrs(top, linux.MOUNT_ATTR_RDONLY | linux.MOUNT_ATTR_NODEV, recursive=True)
            f = os.statvfs(top).f_flag
            return {
                "top": _flags(top),
                "sub": _flags(top + "/sub"),
                "kept": bool(f & os.ST_NOSUID and f & os.ST_NOEXEC),
            }

        r = _in_mount_ns(body)
    finally:
        os.rmdir(top)
    assert r["top"] == ["ro", "nodev"] and r["sub"] == ["ro", "nodev"]
    assert r["kept"] is True  # the flags it had are kept, as a user namespace requires


def test_a_mount_below_the_hosts_tmp_neither_shows_nor_keeps_tmp_from_being_private() -> None:
    """A host's /tmp is often a plain directory holding mounts (a build's overlay, a test's
    tmpfs): the copy must still get its private /tmp, with nothing of the host's below."""
    sub = tempfile.mkdtemp(prefix="pystats-mounts-sub-")  # removed below; mounted only in the child
    try:

        def body() -> dict[str, object]:
            linux.mount("tmpfs", sub, "tmpfs", 0, "size=64k")
            with open(os.path.join(sub, "host-secret"), "w") as f:
                f.write("x")
            root = mounts.build_host_root()
            return {
                "tmp_is_mount": root + "/tmp" in mounts._mountinfo_points(root),
                "tmp_entries": sorted(os.listdir(root + "/tmp")),
                "sub_points": [p for p in mounts._mountinfo_points(root) if "mounts-sub" in p],
            }

        r = _in_mount_ns(body)
    finally:
        os.rmdir(sub)
    assert r["tmp_is_mount"] is True
    assert r["tmp_entries"] == []  # the private tmpfs: none of the host's /tmp, no mount below
    assert r["sub_points"] == []  # detached from the copy, not just covered


def test_enter_makes_the_minimal_dev_and_masks_as_runc() -> None:
    """mounts.enter on a rootfs, as a default workload's init runs it (not in a user namespace):
    runc's nodes made by mknod with their numbers and mode 0666 (a --device over a default node
    replaces it, one in a subdirectory gets its directory); masked files read empty (/dev/null),
    masked directories are empty and read-only; the read-only paths refuse writes."""
    rootfs = tempfile.mkdtemp(prefix="pystats-enter-")
    extra = (
        mounts.Device("/dev/zero", "/dev/tty", "rwm", "c", 1, 5, 0o640),  # over a default
        mounts.Device("/dev/zero", "/dev/sub/zero2", "rwm", "c", 1, 5, 0o600),
    )
    present = {p: os.path.isdir(p) for p in mounts.MASKED_PATHS if os.path.exists(p)}
    try:

        def body() -> dict[str, object]:
            linux.unshare(linux.CLONE_NEWNET)  # a fresh sysfs, as for --net none
            opts = mounts.MountOpts(devices=extra)
            mounts.prepare_rootfs(rootfs, opts)
            plan = mounts.Plan(rootfs, False, own_net=True, in_userns=False, privileged=False)
            mounts.enter(plan, opts)
            nodes = {}
            for name in [n for n, _, _ in mounts.DEFAULT_DEVICES] + ["sub/zero2"]:
                st = os.lstat("/dev/" + name)
                nodes[name] = [
                    stat.S_ISCHR(st.st_mode),
                    os.major(st.st_rdev),
                    os.minor(st.st_rdev),
                    st.st_mode & 0o7777,
                ]
            masked: dict[str, object] = {}
            for path, is_dir in present.items():
                if is_dir:
                    masked[path] = [os.listdir(path), bool(os.statvfs(path).f_flag & os.ST_RDONLY)]
                else:
                    with open(path, "rb") as f:
                        masked[path] = [f.read(4096).decode(), os.stat(path).st_rdev]
            try:
                with open("/proc/sys/kernel/hostname", "w") as f:
                    f.write("x")
                ro_write = "written"
            except OSError as e:
                ro_write = errno.errorcode[e.errno or 0]
            return {
                "nodes": nodes,
                "masked": masked,
                "ro_write": ro_write,
                "dev_nosuid": bool(os.statvfs("/dev").f_flag & os.ST_NOSUID),
            }

        r = _in_mount_ns(body)
    finally:
        for sub in ("proc", "dev", "sys"):
            os.rmdir(os.path.join(rootfs, sub))
        os.rmdir(rootfs)
    nodes = r["nodes"]
    assert isinstance(nodes, dict)
    for name, major, minor in mounts.DEFAULT_DEVICES:
        if name != "tty":
            assert nodes[name] == [True, major, minor, 0o666], name
    assert nodes["tty"] == [True, 1, 5, 0o640]  # replaced by the --device
    assert nodes["sub/zero2"] == [True, 1, 5, 0o600]
    masked = r["masked"]
    assert isinstance(masked, dict) and set(masked) == set(present)
    assert "/proc/keys" in masked or "/proc/timer_list" in masked  # something was checked
    for path, is_dir in present.items():
        if is_dir:
            assert masked[path] == [[], True], path
        else:
            assert masked[path] == ["", os.makedev(1, 3)], path
    assert r["ro_write"] == "EROFS"
    assert r["dev_nosuid"] is True
