"""Writing to cgroups: create (with controllers), limits, moving PIDs, freeze, kill, remove.

One write path: every file is opened O_WRONLY|O_NONBLOCK (so lowering memory.max does not block
in synchronous reclaim, as systemd does), errors quote the value and the file and carry a hint,
and a cgroup that vanished is CgroupGone. Names given to these functions are validated strictly
(paths.validate_name), except remove(), which must be able to clean up any existing cgroup.
"""

from __future__ import annotations

import contextlib
import errno
import os
import time
from collections.abc import Iterable, Mapping

from cgroupfs.errors import CgroupError, CgroupGone, CgroupWriteError, UnsafePath
from cgroupfs.parsers import parse_cgroup_events, parse_controllers
from cgroupfs.paths import CgroupRoot, check_filename, join_rel, split_rel
from cgroupfs.reader import read_file, read_procs

_WRITE_FLAGS = os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC


class CgroupDirError(CgroupError):
    """Creating or removing a cgroup directory failed; says which, why, and what to do."""

    def __init__(self, path: str, action: str, errno_: int, hint: str = "") -> None:
        msg = f"{action} cgroup {path} failed: {os.strerror(errno_)}"
        if hint:
            msg += f" ({hint})"
        super().__init__(msg)
        self.path = path
        self.action = action
        self.errno = errno_
        self.hint = hint


# -- hints ----------------------------------------------------------------------------------

_VALUE_FORMATS = {
    "memory": "a number of bytes or 'max', e.g. '536870912'",
    "cpu.max": "'<quota> <period>' or 'max <period>' in microseconds, quota at least 1000, "
    "e.g. '50000 100000'",
    "cpu.weight": "a weight from 1 to 10000, e.g. '100'",
    "cpu.weight.nice": "a nice value from -20 to 19",
    "pids.max": "a number of processes or 'max', e.g. '100'",
    "io.weight": "'default <1-10000>' or '<major>:<minor> <1-10000>', e.g. 'default 100'",
    "io.max": "'<major>:<minor> rbps=<n> wbps=<n> riops=<n> wiops=<n>' (each may be 'max')",
    "cgroup.subtree_control": "'+<controller>' or '-<controller>' for controllers listed in "
    "cgroup.controllers, e.g. '+memory +cpu'",
    "cgroup.procs": "one PID of a live process",
    "cgroup.freeze": "'0' or '1'",
    "cgroup.kill": "'1'",
}

_SINCE = {"cgroup.kill": "5.14", "cgroup.freeze": "5.2", "memory.peak": "5.19"}


def _value_format(filename: str) -> str | None:
    if filename in _VALUE_FORMATS:
        return _VALUE_FORMATS[filename]
    if filename.startswith("memory."):
        return _VALUE_FORMATS["memory"]
    return None


def _missing_file_hint(filename: str) -> str:
    if filename in _SINCE:
        return f"{filename} needs Linux {_SINCE[filename]} or newer"
    controller = filename.partition(".")[0]
    if controller != "cgroup":
        return (
            f"the {controller} controller is not enabled for this cgroup: either cgroup v2 does "
            f"not have it on this host (on a hybrid v1/v2 host it is bound to v1; "
            f"`pystats-agent --check-config` says why) or the parent's cgroup.subtree_control "
            f"does not list it"
        )
    return "the kernel has no such cgroup file"


def _error_hint(filename: str, err: int) -> str:
    if err == errno.EINVAL:
        if filename == "cgroup.procs":
            return "the kernel refused this process: a kernel thread, or a task still starting"
        fmt = _value_format(filename)
        return f"the kernel expects {fmt}" if fmt else "the kernel rejected the value"
    if err == errno.EBUSY and filename == "cgroup.procs":
        return (
            "this cgroup has controllers enabled in its cgroup.subtree_control, and cgroup v2's "
            "'no internal processes' rule keeps processes out of such cgroups: put the process "
            "in a leaf cgroup below it"
        )
    if err == errno.EOPNOTSUPP:
        return (
            "the cgroup is threaded or 'domain invalid' (see its cgroup.type), which does not "
            "support this operation"
        )
    if err in (errno.EACCES, errno.EPERM):
        return "needs root, or write access to a cgroup delegated to this user"
    if err == errno.ENOENT:
        return _missing_file_hint(filename)
    return ""


# -- the one write path --------------------------------------------------------------------


def _write_path(path: str, filename: str, value: str) -> None:
    data = value.encode()
    if not data:
        raise CgroupWriteError(path, value, errno.EINVAL, "empty value")
    cgroup_dir = os.path.dirname(path)
    try:
        fd = os.open(path, _WRITE_FLAGS)
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.ENOTDIR) and not os.path.isdir(cgroup_dir):
            raise CgroupGone(cgroup_dir, "no such cgroup") from None
        raise CgroupWriteError(
            path, value, e.errno or errno.EIO, _error_hint(filename, e.errno or 0)
        ) from None
    try:
        written = os.write(fd, data)
    except OSError as e:
        if e.errno == errno.ENODEV:
            raise CgroupGone(cgroup_dir, "removed") from None
        raise CgroupWriteError(
            path, value, e.errno or errno.EIO, _error_hint(filename, e.errno or 0)
        ) from None
    finally:
        os.close(fd)
    if written != len(data):
        raise CgroupWriteError(
            path, value, errno.EIO, f"short write: {written} of {len(data)} bytes"
        )


def write(root: CgroupRoot, rel: str, filename: str, value: str) -> None:
    """Write ``value`` to ``filename`` of cgroup ``rel`` in one write(2).

    CgroupWriteError (value and file quoted, with a hint) when the kernel refuses it;
    CgroupGone when the cgroup does not exist or vanished.
    """
    _write_path(root.file(rel, filename), filename, value)


def set_limits(root: CgroupRoot, rel: str, limits: Mapping[str, str]) -> None:
    """Write each ``{filename: value}`` in order, e.g. {"memory.max": "536870912",
    "cpu.max": "50000 100000"}. All file names are checked before anything is written; on a
    refused value the earlier ones stay written (each is valid on its own)."""
    path = root.resolve(rel)
    for filename in limits:
        check_filename(filename)
    for filename, value in limits.items():
        _write_path(os.path.join(path, filename), filename, value)


# -- controllers and creation ---------------------------------------------------------------


def _controllers(root: CgroupRoot, rel: str, filename: str) -> frozenset[str]:
    try:
        return parse_controllers(read_file(root, rel, filename), filename)
    except FileNotFoundError:
        raise CgroupError(
            f"{root.resolve(rel, strict=False)} is not a cgroup directory (it has no {filename})"
        ) from None


def _busy_hint(root: CgroupRoot, rel: str) -> str:
    name = rel or "the root cgroup"
    try:
        pids = read_procs(root, rel)
    except (CgroupError, OSError):
        pids = ()
    if not pids:
        return (
            f"{name} refused: it may hold processes or threads (see its cgroup.procs and "
            "cgroup.threads); controllers can only be enabled for children of a cgroup "
            "without processes"
        )
    shown = ", ".join(map(str, pids[:5])) + (", ..." if len(pids) > 5 else "")
    leaf = join_rel(rel, "leaf")
    return (
        f"cgroup {name!r} holds processes (PIDs {shown}); cgroup v2's 'no internal processes' "
        "rule forbids enabling controllers for its children while it does: move them into a "
        f"leaf cgroup such as {leaf!r} first"
    )


def enable_controllers(root: CgroupRoot, rel: str, controllers: Iterable[str]) -> frozenset[str]:
    """Enable ``controllers`` for the children of cgroup ``rel`` (its cgroup.subtree_control),
    skipping those not available in its cgroup.controllers. Returns the requested controllers
    now enabled. EBUSY from the "no internal processes" rule becomes a CgroupWriteError whose
    hint names the cgroup that holds processes."""
    wanted = list(dict.fromkeys(controllers))
    for c in wanted:
        if not c or not (c.isascii() and c.replace("_", "").isalnum()):
            raise ValueError(f"{c!r} is not a controller name, e.g. 'memory'")
    if not wanted:
        return frozenset()
    available = _controllers(root, rel, "cgroup.controllers")
    enabled = _controllers(root, rel, "cgroup.subtree_control")
    todo = [c for c in wanted if c in available and c not in enabled]
    if todo:
        value = " ".join(f"+{c}" for c in todo)
        try:
            write(root, rel, "cgroup.subtree_control", value)
        except CgroupWriteError as e:
            if e.errno != errno.EBUSY:
                raise
            raise CgroupWriteError(e.file, value, e.errno, _busy_hint(root, rel)) from None
    return frozenset(c for c in wanted if c in available)


def create(root: CgroupRoot, rel: str, controllers: Iterable[str] = ()) -> list[str]:
    """Create cgroup ``rel`` and each missing level above it, enabling ``controllers`` in the
    cgroup.subtree_control of every ancestor from the root down (those each one offers), so
    ``rel`` gets them. Returns the rels it created, top first. If a step fails, the
    directories created so far are removed before the error is re-raised (controllers it
    enabled in pre-existing ancestors stay enabled)."""
    parts = split_rel(rel)
    wanted = list(controllers)
    created: list[str] = []
    try:
        current = ""
        for name in parts:
            if wanted:
                enable_controllers(root, current, wanted)
            child = join_rel(current, name)
            path = root.resolve(child)
            try:
                os.mkdir(path)
                created.append(child)
            except FileExistsError:
                if not os.path.isdir(path):
                    raise CgroupDirError(
                        path, "creating", errno.EEXIST, "a file has this name"
                    ) from None
            except FileNotFoundError:
                raise CgroupGone(os.path.dirname(path), "parent cgroup vanished") from None
            except OSError as e:
                hint = ""
                if e.errno == errno.EAGAIN:
                    hint = "cgroup.max.descendants or cgroup.max.depth of an ancestor reached"
                elif e.errno in (errno.EACCES, errno.EPERM):
                    hint = "needs root, or a cgroup delegated to this user"
                raise CgroupDirError(path, "creating", e.errno or errno.EIO, hint) from None
            current = child
    except BaseException:
        for done in reversed(created):
            with contextlib.suppress(OSError):  # best effort: the original error matters
                os.rmdir(root.resolve(done))
        raise
    return created


# -- processes ------------------------------------------------------------------------------


def move_pid(
    root: CgroupRoot, rel: str, pid: int, *, retries: int = 5, delay_s: float = 0.005
) -> bool:
    """Move process ``pid`` (all its threads) into cgroup ``rel`` via cgroup.procs.

    Returns False when the process is gone (ESRCH); raises CgroupGone when the cgroup is.
    EINVAL is retried ``retries`` times with growing sleeps (a task still starting, as runc
    does); other refusals are CgroupWriteError.
    """
    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
        raise ValueError(f"PID {pid!r} must be a positive integer")
    path = root.file(rel, "cgroup.procs")
    for attempt in range(retries + 1):
        try:
            _write_path(path, "cgroup.procs", str(pid))
            return True
        except CgroupWriteError as e:
            if e.errno == errno.ESRCH:
                return False
            if e.errno != errno.EINVAL or attempt == retries:
                raise
        time.sleep(delay_s * (2**attempt))
    raise AssertionError("unreachable")  # pragma: no cover


def _frozen_state(root: CgroupRoot, rel: str) -> bool | None:
    return parse_cgroup_events(read_file(root, rel, "cgroup.events")).frozen


def freeze(root: CgroupRoot, rel: str, frozen: bool = True, *, timeout_s: float = 0.0) -> bool:
    """Freeze (or thaw, ``frozen=False``) cgroup ``rel`` and its descendants via cgroup.freeze.

    Freezing completes asynchronously; with ``timeout_s`` > 0 this waits until cgroup.events
    reports ``frozen`` in the requested state. Returns whether it does (on return).
    """
    write(root, rel, "cgroup.freeze", "1" if frozen else "0")
    deadline = time.monotonic() + timeout_s
    delay = 0.001
    while True:
        if _frozen_state(root, rel) is frozen:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def kill(root: CgroupRoot, rel: str) -> None:
    """SIGKILL every process in cgroup ``rel`` and its descendants (cgroup.kill, Linux 5.14+)."""
    write(root, rel, "cgroup.kill", "1")


def open_dir(root: CgroupRoot, rel: str) -> int:
    """An O_RDONLY|O_DIRECTORY fd on cgroup ``rel``'s directory, the handle bpf(2) attaches
    cgroup programs to (BPF_PROG_ATTACH's target_fd). The caller closes it. O_NOFOLLOW: the
    cgroup itself may not be a symlink (resolve() already keeps its ancestors inside the root);
    CgroupGone when it does not exist."""
    path = root.resolve(rel)
    try:
        return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        raise CgroupGone(path, "no such cgroup") from None
    except OSError as e:
        raise CgroupDirError(path, "opening", e.errno or errno.EIO) from None


# -- removal --------------------------------------------------------------------------------


def _remove_hint(path: str, err: int) -> str:
    if err not in (errno.EBUSY, errno.ENOTEMPTY):
        return ""
    try:
        with open(os.path.join(path, "cgroup.procs"), "rb") as f:
            pids = f.read().split()
    except OSError:
        pids = []
    if pids:
        shown = ", ".join(p.decode() for p in pids[:5]) + (", ..." if len(pids) > 5 else "")
        return f"it still holds processes (PIDs {shown}): kill them (kill()) or move them out"
    return "it is still in use (processes exiting, or child cgroups being created)"


def _rmtree(path: str, deadline: float) -> None:
    delay = 0.005
    while True:
        try:
            with os.scandir(path) as it:
                subdirs = [e.path for e in it if e.is_dir(follow_symlinks=False)]
        except (FileNotFoundError, NotADirectoryError):
            return
        for sub in subdirs:
            _rmtree(sub, deadline)
        try:
            os.rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError as e:
            err = e.errno or errno.EIO
            if err in (errno.EBUSY, errno.ENOTEMPTY) and time.monotonic() < deadline:
                time.sleep(delay)
                delay = min(delay * 2, 0.1)
                continue
            raise CgroupDirError(path, "removing", err, _remove_hint(path, err)) from None


def remove(root: CgroupRoot, rel: str, timeout_s: float = 5.0) -> None:
    """Remove cgroup ``rel`` and everything below it, depth first. EBUSY (processes still
    exiting) is retried with backoff until ``timeout_s``; a cgroup already gone is success.
    Never removes the root itself (UnsafePath)."""
    if not split_rel(rel, strict=False):
        raise UnsafePath("refusing to remove the cgroup root itself")
    _rmtree(root.resolve(rel, strict=False), time.monotonic() + timeout_s)
