"""What a workload's filesystem is made of (MountOpts), and the steps that build it.

The model (runc's and docker's defaults, issue 14):
- the root: the --rootfs directory, or else a read-only copy of the host's whole tree (every
  submount read-only and nodev) with the host's /proc, /sys, /dev, /run, /tmp and /var/tmp
  detached from it and private tmpfs at /tmp, /run and /var/tmp; entered with pivot_root and the
  old root detached, so no umount inside can reveal a host mount;
- a fresh /proc; /sys read-only (a fresh sysfs in the workload's own network namespace, else a
  read-only recursive bind of the host's); at /sys/fs/cgroup a fresh read-only cgroup2 mount,
  which in the workload's cgroup namespace shows its own cgroup only;
- a minimal /dev (tmpfs nosuid): null zero full random urandom tty, a new devpts instance, ptmx,
  shm, mqueue, fd and the std* links, plus each --device;
- runc's read-only paths (/proc/sys, /proc/sysrq-trigger, ...) and masked paths (/proc/kcore,
  /proc/keys, /sys/firmware, ...): files covered by /dev/null, directories by an empty
  read-only tmpfs;
- writable host paths only through -v / --mount binds, and --tmpfs; every mount but /dev and its
  devpts is nodev. --read-only makes a --rootfs read-only (as docker: no tmpfs added).

The order is runc's (libcontainer/rootfs_linux.go, standard_init_linux.go): mounts, device
nodes, /dev links, pivot_root, the root made read-only, read-only paths, then masked paths.
Inside a user namespace a fresh proc or sysfs is refused while parts of a visible one are
covered ("mnt_too_revealing"), so both are mounted before anything is masked.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

from cgroupfs import units
from workloads.runtime import linux
from workloads.runtime.errors import SpecError

# runc's spec defaults (libcontainer/specconv/example.go) and docker's addition (powercap).
MASKED_PATHS = (
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/sys/firmware",
    "/proc/scsi",
    "/sys/devices/virtual/powercap",
)
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")
# name, major, minor: runc's default nodes (libcontainer/specconv AllowedDevices), mode 0666.
DEFAULT_DEVICES = (
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
)
DEV_LINKS = (
    ("/proc/self/fd", "fd"),
    ("/proc/self/fd/0", "stdin"),
    ("/proc/self/fd/1", "stdout"),
    ("/proc/self/fd/2", "stderr"),
    ("pts/ptmx", "ptmx"),
)
# Host mounts a default workload must not reach even by umount: removed from its copy of /.
HOST_DETACHED = ("/proc", "/sys", "/dev", "/run", "/tmp", "/var/tmp")
PRIVATE_TMPFS = (("/tmp", 0o1777), ("/run", 0o755), ("/var/tmp", 0o1777))
# Where the copy of the host's / is mounted, in the workload's own mount namespace only.
ROOT_MOUNT_POINT = "/run/pystats-root"
FALLBACK_STAGE = "/tmp"
_PERMS_RE = re.compile(r"^[rwm]{1,3}$")
_NOT_NODEV = ("/dev", "/dev/pts")  # the device nodes' own mounts


def _error(msg: str) -> SpecError:
    return SpecError(msg)


# ---- records ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bind:
    """-v HOST:CONTAINER[:ro] or --mount type=bind: ``source`` on the host at ``target``."""

    source: str
    target: str
    readonly: bool = False


@dataclass(frozen=True)
class Tmpfs:
    """--tmpfs or --mount type=tmpfs. nosuid and nodev always; noexec unless ``exec``."""

    target: str
    size: int | None = None
    mode: int | None = None
    readonly: bool = False
    exec: bool = False


@dataclass(frozen=True)
class Device:
    """--device: the host node ``host`` made at ``target`` in the workload's /dev. ``kind``
    ("c" or "b"), ``major``, ``minor`` and ``perms`` (of "rwm") are what the cgroup device
    allow-list needs; ``mode`` is the host node's permission bits."""

    host: str
    target: str
    perms: str
    kind: str
    major: int
    minor: int
    mode: int = 0o666


@dataclass(frozen=True)
class MountOpts:
    binds: tuple[Bind, ...] = ()
    tmpfs: tuple[Tmpfs, ...] = ()
    read_only: bool = False
    devices: tuple[Device, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: object) -> MountOpts:
        """From a stored record; None (a record older than this field) is the default."""
        if d is None:
            return cls()
        r = _Reader(d, "mounts")
        out = cls(
            binds=tuple(
                Bind(b.text("source"), b.text("target"), b.flag("readonly"))
                for b in r.items("binds")
            ),
            tmpfs=tuple(
                Tmpfs(
                    t.text("target"),
                    t.opt_num("size"),
                    t.opt_num("mode"),
                    t.flag("readonly"),
                    t.flag("exec"),
                )
                for t in r.items("tmpfs")
            ),
            read_only=r.flag("read_only"),
            devices=tuple(
                Device(
                    v.text("host"),
                    v.text("target"),
                    v.text("perms"),
                    v.text("kind"),
                    v.num("major"),
                    v.num("minor"),
                    v.num("mode"),
                )
                for v in r.items("devices")
            ),
        )
        return out

    def user_mounts(self) -> list[Bind | Tmpfs]:
        """Binds and tmpfs, parents before children (docker sorts by path depth)."""
        both: list[Bind | Tmpfs] = [*self.binds, *self.tmpfs]
        return sorted(both, key=lambda m: m.target.count("/"))


class _Reader:
    """Type-checked access to one JSON object of a stored record."""

    def __init__(self, d: object, where: str) -> None:
        if not isinstance(d, dict):
            raise _error(f"{where} must be an object, not {type(d).__name__}")
        self.d: dict[str, object] = d
        self.where = where

    def _get(self, key: str, types: tuple[type, ...], what: str) -> Any:
        v = self.d.get(key)
        if not isinstance(v, types) or (int in types and isinstance(v, bool)):
            raise _error(f"{self.where}.{key} must be {what}, not {v!r}")
        return v

    def text(self, key: str) -> str:
        v: str = self._get(key, (str,), "a string")
        return v

    def num(self, key: str) -> int:
        v: int = self._get(key, (int,), "an integer")
        return v

    def opt_num(self, key: str) -> int | None:
        return None if self.d.get(key) is None else self.num(key)

    def flag(self, key: str) -> bool:
        if key not in self.d:
            return False
        v: bool = self._get(key, (bool,), "true or false")
        return v

    def items(self, key: str) -> Iterator[_Reader]:
        v = self.d.get(key, [])
        if not isinstance(v, list | tuple):  # tuple: to_json() not yet through JSON
            raise _error(f"{self.where}.{key} must be a list, not {v!r}")
        for i, item in enumerate(v):
            yield _Reader(item, f"{self.where}.{key}[{i}]")


# ---- the user's syntax (CLI flags, API body) ----------------------------------------------------


def check_target(path: str, what: str) -> str:
    """An absolute path inside the workload, without '..', normalised; not / nor under /proc."""
    if not path.startswith("/"):
        raise _error(f"invalid {what} target {path!r}: must be an absolute path")
    parts = [p for p in path.split("/") if p and p != "."]
    if ".." in parts:
        raise _error(f"invalid {what} target {path!r}: '..' is not allowed")
    norm = "/" + "/".join(parts)
    if norm == "/":
        raise _error(f"invalid {what} target {path!r}: cannot mount over the root")
    if norm == "/proc" or norm.startswith("/proc/"):
        raise _error(f"invalid {what} target {path!r}: cannot mount over /proc")
    return norm


def _host_path(path: str, what: str) -> str:
    if not path.startswith("/"):
        raise _error(
            f"invalid {what} source {path!r}: must be an absolute host path"
            " (named volumes are not supported)"
        )
    if ".." in path.split("/"):
        raise _error(f"invalid {what} source {path!r}: '..' is not allowed")
    return path


def parse_volume(text: str) -> Bind:
    """-v HOST:CONTAINER[:ro|rw]"""
    parts = text.split(":")
    if len(parts) not in (2, 3) or not all(parts):
        raise _error(f"invalid -v {text!r}: expected HOST:CONTAINER[:ro]")
    mode = parts[2] if len(parts) == 3 else "rw"
    if mode not in ("ro", "rw"):
        raise _error(f"invalid -v {text!r}: the option must be ro or rw, not {mode!r}")
    return Bind(_host_path(parts[0], "-v"), check_target(parts[1], "-v"), mode == "ro")


def _parse_bool(text: str, what: str) -> bool:
    t = text.strip().lower()
    if t in ("true", "1", "yes", ""):
        return True
    if t in ("false", "0", "no"):
        return False
    raise _error(f"invalid {what}: {text!r} is not true or false")


def _parse_size(text: str, what: str) -> int:
    try:
        size = units.parse_bytes(text)
    except ValueError as e:
        raise _error(f"invalid {what} size: {e}") from None
    if isinstance(size, float) or size < 4096:
        raise _error(f"invalid {what} size {text!r}: give at least 4k")
    return size


def _parse_mode(text: str, what: str) -> int:
    if not re.fullmatch(r"[0-7]{1,4}", text):
        raise _error(f"invalid {what} mode {text!r}: expected octal, e.g. 1777")
    return int(text, 8)


def parse_mount(text: str) -> Bind | Tmpfs:
    """--mount type=bind,source=S,target=T[,readonly] | type=tmpfs,target=T[,tmpfs-size=..]"""
    fields: dict[str, str] = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        key = key.strip().lower()
        if not sep and key not in ("readonly", "ro"):
            raise _error(f"invalid --mount {text!r}: {item!r} is not KEY=VALUE")
        key = {"src": "source", "destination": "target", "dst": "target", "ro": "readonly"}.get(
            key, key
        )
        if key in fields:
            raise _error(f"invalid --mount {text!r}: {key} is given twice")
        fields[key] = value
    kind = fields.pop("type", "")
    target = check_target(fields.pop("target", ""), "--mount")
    readonly = (
        _parse_bool(fields.pop("readonly"), "--mount readonly") if "readonly" in fields else False
    )
    out: Bind | Tmpfs
    if kind == "bind":
        if "source" not in fields:
            raise _error(f"invalid --mount {text!r}: type=bind needs source=HOST_PATH")
        out = Bind(_host_path(fields.pop("source"), "--mount"), target, readonly)
    elif kind == "tmpfs":
        size = fields.pop("tmpfs-size", None)
        mode = fields.pop("tmpfs-mode", None)
        out = Tmpfs(
            target,
            None if size is None else _parse_size(size, "--mount tmpfs-size"),
            None if mode is None else _parse_mode(mode, "--mount tmpfs-mode"),
            readonly,
        )
    else:
        raise _error(f"invalid --mount {text!r}: type must be bind or tmpfs")
    if fields:
        raise _error(f"invalid --mount {text!r}: unknown option(s) {', '.join(sorted(fields))}")
    return out


def parse_tmpfs(text: str) -> Tmpfs:
    """--tmpfs PATH[:size=64m,mode=1777,ro,exec]"""
    path, _, opts = text.partition(":")
    target = check_target(path, "--tmpfs")
    size: int | None = None
    mode: int | None = None
    readonly = exec_ = False
    for opt in filter(None, opts.split(",")):
        key, _, value = opt.partition("=")
        if key == "size":
            size = _parse_size(value, "--tmpfs")
        elif key == "mode":
            mode = _parse_mode(value, "--tmpfs")
        elif key in ("ro", "rw"):
            readonly = key == "ro"
        elif key in ("exec", "noexec"):
            exec_ = key == "exec"
        elif key not in ("nosuid", "nodev"):
            raise _error(
                f"invalid --tmpfs {text!r}: unknown option {key!r} (size, mode, ro, rw, exec,"
                " noexec)"
            )
    return Tmpfs(target, size, mode, readonly, exec_)


def split_device(text: str) -> tuple[str, str, str]:
    """--device HOST[:CONTAINER][:PERMS] -> (host, container, perms); no host access."""
    parts = text.split(":")
    if len(parts) == 2 and _PERMS_RE.match(parts[1]):
        parts = [parts[0], parts[0], parts[1]]
    if len(parts) > 3 or not all(parts):
        raise _error(f"invalid --device {text!r}: expected HOST[:CONTAINER[:PERMS]]")
    host = _host_path(parts[0], "--device")
    target = check_target(parts[1] if len(parts) > 1 else host, "--device")
    if not target.startswith("/dev/"):
        raise _error(f"invalid --device {text!r}: the node must be under /dev/ inside")
    perms = parts[2] if len(parts) > 2 else "rwm"
    if not _PERMS_RE.match(perms) or len(set(perms)) != len(perms):
        raise _error(f"invalid --device {text!r}: permissions are some of r, w, m")
    return host, target, perms


def parse_device(text: str) -> Device:
    """--device, with the host node looked at (on the agent's host)."""
    host, target, perms = split_device(text)
    try:
        st = os.stat(host)
    except OSError as e:
        raise _error(f"--device {host!r}: {e.strerror}") from None
    if stat.S_ISCHR(st.st_mode):
        kind = "c"
    elif stat.S_ISBLK(st.st_mode):
        kind = "b"
    else:
        raise _error(f"--device {host!r} is not a character or block device")
    rdev = st.st_rdev
    return Device(host, target, perms, kind, os.major(rdev), os.minor(rdev), st.st_mode & 0o777)


_BODY_KEYS = frozenset({"volumes", "mounts", "tmpfs", "read_only", "devices"})


def _strings(body: dict[str, object], key: str) -> list[str]:
    v = body.get(key) or []
    if not isinstance(v, list) or not all(isinstance(s, str) for s in v):
        raise _error(f"mounts.{key} must be a list of strings")
    return [str(s) for s in v]


def from_body(body: object) -> MountOpts:
    """The API's ``mounts`` object, in the CLI's syntax: {"volumes": ["/h:/c:ro"], "mounts":
    ["type=tmpfs,target=/x"], "tmpfs": ["/t:size=64m"], "read_only": true, "devices": [...]}"""
    if body is None:
        return MountOpts()
    if not isinstance(body, dict) or not set(body) <= _BODY_KEYS:
        raise _error(f"mounts must be an object with some of: {', '.join(sorted(_BODY_KEYS))}")
    read_only = body.get("read_only", False)
    if not isinstance(read_only, bool):
        raise _error("mounts.read_only must be true or false")
    binds = [parse_volume(v) for v in _strings(body, "volumes")]
    tmpfs = [parse_tmpfs(t) for t in _strings(body, "tmpfs")]
    for m in map(parse_mount, _strings(body, "mounts")):
        if isinstance(m, Bind):
            binds.append(m)
        else:
            tmpfs.append(m)
    devices = tuple(parse_device(d) for d in _strings(body, "devices"))
    targets = [m.target for m in binds] + [t.target for t in tmpfs] + [d.target for d in devices]
    dup = sorted({t for t in targets if targets.count(t) > 1})
    if dup:
        raise _error(f"two mounts at {dup[0]}")
    return MountOpts(tuple(binds), tuple(tmpfs), read_only, devices)


def _under(path: str, tops: Iterable[str]) -> bool:
    return any(path == t or path.startswith(t.rstrip("/") + "/") for t in tops)


def check(opts: MountOpts, rootfs: str | None) -> None:
    """At create time, on the host: bind sources exist; without a rootfs, a target outside the
    workload's writable mounts must exist already (the host's / is read-only to it)."""
    for b in opts.binds:
        if not os.path.exists(b.source):
            raise _error(f"bind source {b.source!r} does not exist on the host")
    if rootfs is not None:
        return
    writable = [p for p, _ in PRIVATE_TMPFS] + ["/dev"]
    for m in opts.user_mounts():
        if not _under(m.target, writable) and not os.path.lexists(m.target):
            raise _error(
                f"mount target {m.target!r} does not exist in the host's /, which the workload"
                " sees read-only: use an existing path (or one under /tmp, /run, /var/tmp),"
                " or a --rootfs"
            )
        writable.append(m.target)


# ---- path helpers -------------------------------------------------------------------------------


def resolve_in_root(root: str, path: str) -> str:
    """``path`` as the workload will see it, as a path under ``root``: symlinks followed with
    absolute ones restarting at ``root`` and '..' stopping there (runc's FollowSymlinkInScope),
    so a rootfs's link cannot send a mount outside it. Missing parts are kept as they are."""
    todo = [p for p in path.split("/") if p]
    done: list[str] = []
    hops = 0
    while todo:
        part = todo.pop(0)
        if part == ".":
            continue
        if part == "..":
            if done:
                done.pop()
            continue
        here = os.path.join(root, *done, part)
        if os.path.islink(here):
            hops += 1
            if hops > 40:
                raise OSError(errno.ELOOP, f"too many symlinks under {path}")
            link = os.readlink(here)
            if link.startswith("/"):
                done = []
            todo = [p for p in link.split("/") if p] + todo
        else:
            done.append(part)
    return os.path.join(root, *done)


def _make_mountpoint(path: str, is_dir: bool) -> None:
    if os.path.lexists(path):
        return
    os.makedirs(os.path.dirname(path), 0o755, exist_ok=True)
    if is_dir:
        os.mkdir(path, 0o755)
    else:
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644))


def _mountinfo_points(prefix: str) -> list[str]:
    """Mount points at or under ``prefix``, parents first (mountinfo's order)."""
    out = []
    with open("/proc/self/mountinfo", "rb") as f:
        for line in f:
            raw = line.split(b" ")[4]
            point = re.sub(rb"\\([0-7]{3})", lambda m: bytes([int(m.group(1), 8)]), raw)
            p = os.fsdecode(point)
            if _under(p, [prefix]):
                out.append(p)
    return out


_ST_TO_MS = (
    (os.ST_NOSUID, linux.MS_NOSUID),
    (os.ST_NODEV, linux.MS_NODEV),
    (os.ST_NOEXEC, linux.MS_NOEXEC),
    (os.ST_NOATIME, linux.MS_NOATIME),
    (os.ST_NODIRATIME, linux.MS_NODIRATIME),
    (os.ST_RELATIME, linux.MS_RELATIME),
    (os.ST_RDONLY, linux.MS_RDONLY),
)
_ATTR_TO_MS = (
    (linux.MOUNT_ATTR_RDONLY, linux.MS_RDONLY),
    (linux.MOUNT_ATTR_NOSUID, linux.MS_NOSUID),
    (linux.MOUNT_ATTR_NODEV, linux.MS_NODEV),
    (linux.MOUNT_ATTR_NOEXEC, linux.MS_NOEXEC),
)


def set_attrs(path: str, attrs: int, *, recursive: bool) -> None:
    """Add MOUNT_ATTR_* flags to the mount at ``path`` (and each one below it): mount_setattr
    where the kernel has it (5.12), else a bind remount of each, keeping the flags it has (inside
    a user namespace, dropping a locked flag would be refused)."""
    try:
        linux.mount_setattr(path, attrs, recursive=recursive)
        return
    except OSError as e:
        if e.errno != errno.ENOSYS:
            raise
    extra = sum(ms for attr, ms in _ATTR_TO_MS if attrs & attr)
    for point in _mountinfo_points(path) if recursive else [path]:
        have = os.statvfs(point).f_flag
        keep = sum(ms for st, ms in _ST_TO_MS if have & st)
        linux.mount(None, point, None, linux.MS_BIND | linux.MS_REMOUNT | keep | extra)


def detach_all(path: str) -> None:
    """Unmount every mount stacked at ``path`` with everything below, and the mounts below
    ``path`` when it is no mount itself (a host's /tmp is a plain directory that may hold
    mounts). Inside a user namespace the host's mounts are locked together (EINVAL): they stay,
    to be covered instead."""
    for _ in range(64):
        try:
            linux.umount2(path, linux.MNT_DETACH | linux.UMOUNT_NOFOLLOW)
        except OSError as e:
            if e.errno in (errno.EINVAL, errno.ENOENT):
                break
            raise
    for point in reversed(_mountinfo_points(path)):  # deepest first
        if point == path:
            continue
        try:
            linux.umount2(point, linux.MNT_DETACH | linux.UMOUNT_NOFOLLOW)
        except OSError as e:
            if e.errno not in (errno.EINVAL, errno.ENOENT):  # locked, or gone with its parent
                raise


# ---- the steps, in runc's order -----------------------------------------------------------------


def prepare_rootfs(rootfs: str, opts: MountOpts) -> None:
    """Mount points in a --rootfs the workload will need, made as host root before any user
    namespace (inside one the rootfs's owner is usually unmapped). Links resolve inside it."""
    for d in ("proc", "dev", "sys"):
        _make_mountpoint(os.path.join(rootfs, d), True)
    for m in opts.user_mounts():
        if isinstance(m, Tmpfs) or os.path.isdir(m.source):
            _make_mountpoint(resolve_in_root(rootfs, m.target), True)
        else:
            _make_mountpoint(resolve_in_root(rootfs, m.target), False)


def _mount_point_for_root() -> str:
    """An empty directory to mount the copy of the host's tree on, hiding nothing a bind source
    may need: /run/pystats-root (made once, root's), else a tmpfs over /tmp (which hides the
    host's /tmp from -v sources: only where /run is not writable)."""
    try:
        with contextlib.suppress(FileExistsError):
            os.mkdir(ROOT_MOUNT_POINT, 0o700)
        st = os.lstat(ROOT_MOUNT_POINT)
        if stat.S_ISDIR(st.st_mode) and st.st_uid == 0 and not st.st_mode & 0o022:
            return ROOT_MOUNT_POINT
    except OSError:
        pass
    linux.mount("tmpfs", FALLBACK_STAGE, "tmpfs", linux.MS_NOSUID | linux.MS_NODEV, "mode=755")
    root = os.path.join(FALLBACK_STAGE, "pystats-root")
    os.mkdir(root, 0o755)
    return root


def build_host_root(owner: int = 0) -> str:
    """A read-only, nodev copy of the host's tree, without the host's /proc, /sys, /dev, /run,
    /tmp and /var/tmp mounts, with private tmpfs at /tmp, /run and /var/tmp owned by host uid
    and gid ``owner``; in this (private) mount namespace; returns its path. Run as host root:
    the copies detached here could not be detached inside a user namespace, and there the
    tmpfs come in locked (no umount of /tmp reveals what lies below)."""
    root = _mount_point_for_root()
    linux.mount("/", root, None, linux.MS_BIND | linux.MS_REC)
    for sub in HOST_DETACHED:
        detach_all(root + sub)
    set_attrs(root, linux.MOUNT_ATTR_RDONLY | linux.MOUNT_ATTR_NODEV, recursive=True)
    mount_private_tmp(root, owner)
    return root


def staged_root() -> str:
    """Where build_host_root() left the root (for the workload, after the user namespace)."""
    for path in (ROOT_MOUNT_POINT, os.path.join(FALLBACK_STAGE, "pystats-root")):
        if _mountinfo_points(path):
            return path
    raise OSError(errno.ENOENT, "the copy of the host's root is missing")


def mount_proc(root: str) -> None:
    flags = linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC
    linux.mount("proc", resolve_in_root(root, "/proc"), "proc", flags)


def mount_dev(root: str, *, privileged: bool) -> None:
    """/dev: a tmpfs (nosuid, mode 755) with a new devpts instance, shm and mqueue. Privileged:
    the host's /dev, all of it, with the workload's own pts, shm and mqueue over it."""
    dev = resolve_in_root(root, "/dev")
    detach_all(dev)
    if privileged:
        linux.mount("/dev", dev, None, linux.MS_BIND | linux.MS_REC)
        set_attrs(dev, linux.MOUNT_ATTR_NOSUID, recursive=False)
    else:
        linux.mount("tmpfs", dev, "tmpfs", linux.MS_NOSUID, "mode=755,size=64k")
        for sub in ("pts", "shm", "mqueue"):
            os.mkdir(f"{dev}/{sub}", 0o755)
    nosuid_noexec = linux.MS_NOSUID | linux.MS_NOEXEC
    linux.mount(
        "devpts", dev + "/pts", "devpts", nosuid_noexec, "newinstance,ptmxmode=0666,mode=620,gid=5"
    )
    linux.mount(
        "shm", dev + "/shm", "tmpfs", nosuid_noexec | linux.MS_NODEV, "mode=1777,size=65536k"
    )
    if os.path.isdir(dev + "/mqueue"):  # privileged: the host's /dev may lack it
        linux.mount("mqueue", dev + "/mqueue", "mqueue", nosuid_noexec | linux.MS_NODEV)


def mount_sys(root: str, *, own_net: bool, privileged: bool) -> None:
    """/sys read-only: a fresh sysfs in the workload's own network namespace (else the kernel
    refuses it), else the host's bound recursively. Then the workload's own cgroup at
    /sys/fs/cgroup: a cgroup2 mount made in its cgroup namespace has that cgroup as its root."""
    sys_ = resolve_in_root(root, "/sys")
    flags = linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC
    ro = 0 if privileged else linux.MS_RDONLY
    if own_net:
        linux.mount("sysfs", sys_, "sysfs", flags | ro)
    else:
        detach_all(sys_)
        linux.mount("/sys", sys_, None, linux.MS_BIND | linux.MS_REC)
        attrs = linux.MOUNT_ATTR_NOSUID | linux.MOUNT_ATTR_NODEV | linux.MOUNT_ATTR_NOEXEC
        set_attrs(sys_, attrs | (0 if privileged else linux.MOUNT_ATTR_RDONLY), recursive=True)
        detach_all(sys_ + "/fs/cgroup")
    linux.mount("cgroup2", sys_ + "/fs/cgroup", "cgroup2", flags | ro)


def mount_private_tmp(root: str, owner: int) -> None:
    """Private tmpfs at /tmp, /run and /var/tmp of the host's (read-only) tree."""
    for path, mode in PRIVATE_TMPFS:
        target = resolve_in_root(root, path)
        # Over whatever lies below (a mount left locked in a user namespace is covered); only
        # once per directory: /var/tmp may lead to /tmp.
        if os.path.isdir(target) and target not in _mountinfo_points(target):
            data = f"mode={mode:o},uid={owner},gid={owner}"
            linux.mount("tmpfs", target, "tmpfs", linux.MS_NOSUID | linux.MS_NODEV, data)


def mount_user(root: str, m: Bind | Tmpfs) -> None:
    """One -v / --mount / --tmpfs; always nodev."""
    target = resolve_in_root(root, m.target)
    if isinstance(m, Tmpfs):
        _make_mountpoint(target, True)
        flags = linux.MS_NOSUID | linux.MS_NODEV
        flags |= (0 if m.exec else linux.MS_NOEXEC) | (linux.MS_RDONLY if m.readonly else 0)
        data = ",".join(
            ([f"size={m.size}"] if m.size else [])
            + ([f"mode={m.mode:o}"] if m.mode is not None else [])
        )
        linux.mount("tmpfs", target, "tmpfs", flags, data)
        return
    _make_mountpoint(target, os.path.isdir(m.source))
    linux.mount(m.source, target, None, linux.MS_BIND | linux.MS_REC)
    attrs = linux.MOUNT_ATTR_NODEV | (linux.MOUNT_ATTR_RDONLY if m.readonly else 0)
    set_attrs(target, attrs, recursive=True)


def make_devices(root: str, devices: Iterable[Device], *, mknod: bool) -> None:
    """runc's default nodes and each --device: mknod'ed as host root, bound from the host's
    node inside a user namespace (where mknod is refused)."""
    dev = resolve_in_root(root, "/dev")
    nodes = [(f"/dev/{n}", f"/dev/{n}", "c", ma, mi, 0o666) for n, ma, mi in DEFAULT_DEVICES]
    nodes += [(d.host, d.target, d.kind, d.major, d.minor, d.mode) for d in devices]
    old = os.umask(0)
    try:
        for host, target, kind, major, minor, mode in nodes:
            path = dev + target.removeprefix("/dev")
            if target.count("/") > 2:  # a --device in a subdirectory (/dev/dri/card0)
                os.makedirs(os.path.dirname(path), 0o755, exist_ok=True)
            if mknod:
                # /dev is a fresh tmpfs: the node is made at once, replaced only when a --device
                # names a node made before it (two calls fewer per node than unlink-then-make).
                kind_bits = stat.S_IFCHR if kind == "c" else stat.S_IFBLK
                try:
                    os.mknod(path, kind_bits | mode, os.makedev(major, minor))
                except FileExistsError:
                    os.unlink(path)
                    os.mknod(path, kind_bits | mode, os.makedev(major, minor))
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
                os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o666))
                linux.mount(host, path, None, linux.MS_BIND)
    finally:
        os.umask(old)
    for src, name in DEV_LINKS:
        with contextlib.suppress(FileExistsError):
            os.symlink(src, f"{dev}/{name}")


def pivot(root: str) -> None:
    """pivot_root(".", "."): the old root is stacked under the new one, then detached whole."""
    os.chdir(root)
    linux.pivot_root(".", ".")
    linux.umount2(".", linux.MNT_DETACH)
    os.chdir("/")


def readonly_path(path: str) -> None:
    """runc's readonlyPath: bind onto itself, then read-only."""
    try:
        linux.mount(path, path, None, linux.MS_BIND | linux.MS_REC)
    except FileNotFoundError:
        return
    set_attrs(path, linux.MOUNT_ATTR_RDONLY, recursive=True)


def mask_path(path: str) -> None:
    """runc's maskPath: /dev/null over a file, an empty read-only tmpfs over a directory. The
    kind is looked up first, not learnt from a failed bind as runc does: the kernel refuses a
    file bound over a directory only after copying the mount, and frees the copy with an RCU
    grace period (~0.1 ms per directory natively, more than the stat)."""
    try:
        is_dir = stat.S_ISDIR(os.stat(path).st_mode)
        if is_dir:
            flags = linux.MS_RDONLY | linux.MS_NOSUID | linux.MS_NODEV
            linux.mount("tmpfs", path, "tmpfs", flags)
        else:
            linux.mount("/dev/null", path, None, linux.MS_BIND)
    except FileNotFoundError:  # this kernel has no such file: nothing to hide
        return


@dataclass(frozen=True)
class Plan:
    """What enter() needs to know about the workload, besides its MountOpts."""

    root: str
    host_root: bool  # root is build_host_root()'s copy of the host's tree
    own_net: bool
    in_userns: bool
    privileged: bool


def enter(plan: Plan, opts: MountOpts) -> None:
    """Everything after the namespaces exist, up to (not including) exec."""
    root = plan.root
    if not plan.host_root or plan.in_userns:
        # pivot_root needs a mount point, and one not locked: the copy of the host's tree came
        # into the user namespace locked. nodev: device nodes work only in /dev.
        linux.mount(root, root, None, linux.MS_BIND | linux.MS_REC)
        set_attrs(root, linux.MOUNT_ATTR_NODEV, recursive=False)
    mount_proc(root)
    mount_dev(root, privileged=plan.privileged)
    mount_sys(root, own_net=plan.own_net, privileged=plan.privileged)
    for m in opts.user_mounts():
        mount_user(root, m)
    if not plan.privileged:  # privileged: the host's /dev has them all (and is the host's)
        make_devices(root, opts.devices, mknod=not plan.in_userns)
    pivot(root)
    if opts.read_only and not plan.host_root:
        set_attrs("/", linux.MOUNT_ATTR_RDONLY, recursive=False)
    if plan.privileged:
        return
    for path in READONLY_PATHS:
        readonly_path(path)
    for path in MASKED_PATHS:
        mask_path(path)
