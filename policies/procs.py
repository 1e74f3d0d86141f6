"""A snapshot of processes from /proc: what matching needs, read with raw os calls.

/proc is not a cgroup root, so reading it here does not break the "only cgroupfs touches cgroup
files" rule. One process costs five small reads (stat, status, cmdline, exe link, cgroup); a
process that exits part way is simply left out (``read_proc`` returns None).

Kernel threads are recognised by PF_KTHREAD in /proc/PID/stat's flags, zombies by state Z; both
are in the snapshot (so explain can say why they are never moved) and the planner skips them.
"""

from __future__ import annotations

import grp
import os
import pwd
from collections.abc import Iterable
from dataclasses import dataclass

PF_KTHREAD = 0x00200000
_PROC = "/proc"


@dataclass(frozen=True, slots=True)
class Proc:
    pid: int
    ppid: int
    comm: str
    exe: str  # "" when unreadable (kernel threads, exited, no permission)
    cmdline: tuple[str, ...]
    uid: int  # effective
    gid: int  # effective
    user: str  # name, or the number as text when it has none
    group: str
    cgroup: str  # cgroup v2 path in the hierarchy ("/user.slice/..."), "" if unknown
    kthread: bool = False
    zombie: bool = False
    start: int = 0  # start time in clock ticks since boot: tells a reused PID apart


class _Names:
    """uid/gid -> name, cached for one snapshot (NSS lookups are slow)."""

    def __init__(self) -> None:
        self.users: dict[int, str] = {}
        self.groups: dict[int, str] = {}

    def user(self, uid: int) -> str:
        name = self.users.get(uid)
        if name is None:
            try:
                name = pwd.getpwuid(uid).pw_name
            except KeyError:
                name = str(uid)
            self.users[uid] = name
        return name

    def group(self, gid: int) -> str:
        name = self.groups.get(gid)
        if name is None:
            try:
                name = grp.getgrgid(gid).gr_name
            except KeyError:
                name = str(gid)
            self.groups[gid] = name
        return name


_CHUNK = 65536
# What read_proc can leave out when no rule needs it (stat and cgroup are always read).
IDS, CMDLINE, EXE = "ids", "cmdline", "exe"
ALL_FIELDS = frozenset({IDS, CMDLINE, EXE})


def _read(path: str) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        first = os.read(fd, _CHUNK)
        if len(first) < _CHUNK // 2:  # /proc hands out a small file whole in one read
            return first
        chunks = [first]
        while True:
            b = os.read(fd, _CHUNK)
            if not b:
                break
            chunks.append(b)
        return b"".join(chunks)
    finally:
        os.close(fd)


def parse_stat(data: bytes) -> tuple[str, str, int, int, int]:
    """(comm, state, ppid, flags, starttime) from /proc/PID/stat (comm may hold ')' and spaces)."""
    lpar = data.index(b"(")
    rpar = data.rindex(b")")
    comm = data[lpar + 1 : rpar].decode("utf-8", "replace")
    rest = data[rpar + 2 :].split()
    # rest[0] is field 3 (state); ppid is field 4, flags field 9, starttime field 22
    return comm, rest[0].decode(), int(rest[1]), int(rest[6]), int(rest[19])


def parse_cgroup(data: bytes) -> str:
    """The v2 path from /proc/PID/cgroup's "0::" line ("" on a v1-only system)."""
    for line in data.split(b"\n"):
        if line.startswith(b"0::"):
            return line[3:].decode("utf-8", "surrogateescape")
    return ""


def _ids(status: bytes) -> tuple[int, int]:
    uid = gid = -1
    for line in status.split(b"\n"):
        if line.startswith(b"Uid:"):
            uid = int(line.split()[2])
        elif line.startswith(b"Gid:"):
            gid = int(line.split()[2])
            break
    return uid, gid


def read_proc(
    pid: int,
    names: _Names | None = None,
    proc: str = _PROC,
    fields: frozenset[str] = ALL_FIELDS,
) -> Proc | None:
    """One process, or None if it is gone (or vanished while being read).

    ``fields`` may leave out IDS (uid/gid/user/group read as -1/""), CMDLINE and EXE when no
    rule needs them: the event path reads only what the policy matches on.
    """
    names = names or _Names()
    base = f"{proc}/{pid}"
    cmd: tuple[str, ...] = ()
    exe = ""
    uid = gid = -1
    try:
        comm, state, ppid, flags, start = parse_stat(_read(base + "/stat"))
        kthread = bool(flags & PF_KTHREAD)
        if IDS in fields:
            uid, gid = _ids(_read(base + "/status"))
        cgroup = parse_cgroup(_read(base + "/cgroup"))
        if not kthread and CMDLINE in fields:
            raw = _read(base + "/cmdline")
            cmd = tuple(a.decode("utf-8", "surrogateescape") for a in raw.split(b"\0")[:-1])
        if not kthread and EXE in fields:
            try:
                exe = os.readlink(base + "/exe")
            except OSError:  # zombie, or no permission
                exe = ""
    except (OSError, ValueError, IndexError):
        return None
    return Proc(
        pid=pid,
        ppid=ppid,
        comm=comm,
        exe=exe,
        cmdline=cmd,
        uid=uid,
        gid=gid,
        user=names.user(uid) if uid >= 0 else "",
        group=names.group(gid) if gid >= 0 else "",
        cgroup=cgroup,
        kthread=kthread,
        zombie=state == "Z",
        start=start,
    )


def list_pids(proc: str = _PROC) -> list[int]:
    return [int(n) for n in os.listdir(proc) if n.isdigit()]


def snapshot(
    pids: Iterable[int] | None = None,
    proc: str = _PROC,
    fields: frozenset[str] = ALL_FIELDS,
) -> list[Proc]:
    """Every process (or those in ``pids``) that still exists, in PID order."""
    names = _Names()
    out = []
    for pid in sorted(list_pids(proc) if pids is None else pids):
        p = read_proc(pid, names, proc, fields)
        if p is not None:
            out.append(p)
    return out


def start_time(pid: int, proc: str = _PROC) -> int | None:
    """The start time of ``pid`` (None if it is gone): a PID with another start was reused."""
    try:
        return parse_stat(_read(f"{proc}/{pid}/stat"))[4]
    except (OSError, ValueError, IndexError):
        return None


def hierarchy_path(abs_path: str, mountinfo: str = "/proc/self/mountinfo") -> str | None:
    """The cgroup v2 path (as /proc/PID/cgroup shows it) of directory ``abs_path`` on a
    cgroup2 mount, e.g. "/sys/fs/cgroup/pystats" -> "/pystats"; None if not on one."""
    real = os.path.realpath(abs_path)
    best: tuple[str, str] | None = None
    try:
        with open(mountinfo) as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in lines:
        left, _, right = line.partition(" - ")
        if not right.startswith("cgroup2 "):
            continue
        fields = left.split()
        if len(fields) < 5:
            continue
        fs_root, mnt = fields[3], fields[4].replace("\\040", " ")
        if (real == mnt or real.startswith(mnt.rstrip("/") + "/")) and (
            best is None or len(mnt) > len(best[1])
        ):
            best = (fs_root, mnt)
    if best is None:
        return None
    fs_root, mnt = best
    tail = os.path.relpath(real, mnt)
    path = fs_root if tail == "." else os.path.join(fs_root, tail)
    return "/" + path.strip("/") if path.strip("/") else "/"
