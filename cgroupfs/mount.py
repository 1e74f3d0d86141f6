"""Where cgroup v2 is mounted, in which mode, and which controllers pystats can use there.

Modes:
- "v2": cgroup2 is mounted at /sys/fs/cgroup (every current distribution's default), or
  elsewhere with no cgroup v1 hierarchy beside it.
- "hybrid": cgroup2 is mounted (usually at /sys/fs/cgroup/unified) while v1 hierarchies hold
  some controllers; those controllers cannot be used through cgroup v2.
- "none": no cgroup2 filesystem is mounted.

The mount table is parsed from a file (``/proc/self/mounts`` by default) so tests can feed
fixture tables; the cgroup2 root's cgroup.controllers is read beneath ``fs_prefix`` (tests point
it at a temp dir). Python's os.statvfs has no f_type, so is_cgroup2() looks the path's mount up
in the mount table instead of comparing the statfs magic CGROUP2_SUPER_MAGIC (0x63677270).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from cgroupfs.errors import ParseError
from cgroupfs.parsers import parse_controllers

CGROUP2_SUPER_MAGIC = 0x63677270
# the controllers pystats cares about, in the order it reports them
IMPORTANT_CONTROLLERS = ("cpu", "memory", "pids", "io", "cpuset", "hugetlb")
_V1_NAMES = {"io": "blkio"}  # v1 calls the io controller blkio
_BOOT_HINT = (
    "boot with systemd.unified_cgroup_hierarchy=1 (or cgroup_no_v1=all) to give every "
    "controller to cgroup v2"
)
_WHAT = {
    "cpu": "limit or weigh CPU time (cpu.max, cpu.weight) or report throttling",
    "memory": "limit or measure memory",
    "pids": "limit or count processes",
    "io": "limit, weigh or measure block I/O",
    "cpuset": "pin cgroups to CPUs or memory nodes",
    "hugetlb": "limit or measure huge pages",
}


# v1 mount options that are not controllers
_V1_FLAGS = frozenset(
    {
        "rw",
        "ro",
        "relatime",
        "noatime",
        "nosuid",
        "nodev",
        "noexec",
        "xattr",
        "clone_children",
        "noprefix",
        "cpuset_v2_mode",
        "favordynmods",
        "nsdelegate",
    }
)


@dataclass(frozen=True, slots=True)
class MountEntry:
    source: str
    path: str
    fstype: str
    options: frozenset[str]


@dataclass(frozen=True, slots=True)
class CgroupMount:
    mode: Literal["v2", "hybrid", "none"]
    path: str | None  # the cgroup2 mount point pystats uses
    controllers: frozenset[str]  # in the cgroup2 root's cgroup.controllers
    missing: Mapping[str, str] = field(default_factory=dict)  # controller -> why not usable

    def usable(self, controller: str) -> bool:
        return controller in self.controllers

    def summary(self) -> str:
        """A few lines for `pystats doctor` / start-up logs."""
        if self.mode == "none":
            head = "cgroup v2: not mounted"
        else:
            have = " ".join(sorted(self.controllers)) or "none"
            head = f"cgroup v2: {self.mode} mode at {self.path}; controllers: {have}"
        return "\n".join([head, *(f"  {c}: {why}" for c, why in self.missing.items())])


def describe_mount(mount: CgroupMount | None) -> str:
    """The cgroup mode in words, as the live view's header shows it: "pure cgroup v2",
    "hybrid v1/v2 (no cpu, memory)"; "cgroup v2" when nothing was detected."""
    if mount is None:
        return "cgroup v2"
    text = "hybrid v1/v2" if mount.mode == "hybrid" else "pure cgroup v2"
    if mount.missing:
        text += " (no " + ", ".join(sorted(mount.missing)) + ")"
    return text


def _unescape(field_: str) -> str:
    r"""Mount table fields escape space, tab, newline and backslash as \040 \011 \012 \134."""
    if "\\" not in field_:
        return field_
    out, i = [], 0
    while i < len(field_):
        ch = field_[i]
        octal = field_[i + 1 : i + 4]
        if ch == "\\" and len(octal) == 3 and all(c in "01234567" for c in octal):
            out.append(chr(int(octal, 8)))
            i += 4
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def parse_mounts(text: str) -> list[MountEntry]:
    """The entries of a /proc/self/mounts-format table (malformed lines are skipped)."""
    entries = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 4:
            continue
        entries.append(
            MountEntry(
                _unescape(fields[0]),
                _unescape(fields[1]),
                fields[2],
                frozenset(fields[3].split(",")),
            )
        )
    return entries


def _read_mounts(mounts_file: str) -> list[MountEntry]:
    try:
        with open(mounts_file, encoding="utf-8", errors="surrogateescape") as f:
            return parse_mounts(f.read())
    except FileNotFoundError:
        return []


def _pick_cgroup2(entries: list[MountEntry]) -> str | None:
    paths = [e.path for e in entries if e.fstype == "cgroup2"]
    for preferred in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified"):
        if preferred in paths:
            return preferred
    return paths[0] if paths else None


def _read_controllers(path: str, fs_prefix: str) -> tuple[frozenset[str], str | None]:
    file = os.path.join(fs_prefix + path, "cgroup.controllers")
    try:
        with open(file, "rb") as f:
            return parse_controllers(f.read(), file), None
    except (OSError, ParseError) as e:
        return frozenset(), f"could not read {os.path.join(path, 'cgroup.controllers')}: {e}"


def detect(mounts_file: str = "/proc/self/mounts", *, fs_prefix: str = "") -> CgroupMount:
    """Find the cgroup2 mount and say which important controllers are usable, and why not."""
    entries = _read_mounts(mounts_file)
    v1_by_controller: dict[str, str] = {}
    for e in entries:
        if e.fstype == "cgroup":
            for opt in e.options:
                v1_by_controller.setdefault(opt, e.path)
    path = _pick_cgroup2(entries)
    if path is None:
        missing = {}
        for c in IMPORTANT_CONTROLLERS:
            v1 = v1_by_controller.get(_V1_NAMES.get(c, c))
            where = f" ({c} is on the cgroup v1 hierarchy at {v1})" if v1 else ""
            missing[c] = (
                f"no cgroup2 filesystem is mounted{where}, so pystats cannot {_WHAT[c]}; "
                "mount one (mount -t cgroup2 none /sys/fs/cgroup) or " + _BOOT_HINT
            )
        return CgroupMount("none", None, frozenset(), missing)

    controllers, read_error = _read_controllers(path, fs_prefix)
    has_v1_controllers = any(
        e.fstype == "cgroup" and not all(o.startswith("name=") or o in _V1_FLAGS for o in e.options)
        for e in entries
    )
    mode: Literal["v2", "hybrid"] = "hybrid" if has_v1_controllers else "v2"
    missing = {}
    for c in IMPORTANT_CONTROLLERS:
        if c in controllers:
            continue
        v1 = v1_by_controller.get(_V1_NAMES.get(c, c))
        if v1 is not None:
            missing[c] = (
                f"{c} is bound to the cgroup v1 hierarchy mounted at {v1}, so pystats cannot "
                f"{_WHAT[c]} here; " + _BOOT_HINT
            )
        elif read_error is not None:
            missing[c] = read_error
        else:
            missing[c] = (
                f"{c} is not offered in {path}/cgroup.controllers, so pystats cannot {_WHAT[c]}: "
                "the kernel lacks it, it is disabled on the kernel command line (cgroup_disable=), "
                "or, inside a container, the parent cgroup did not delegate it"
            )
    return CgroupMount(mode, path, controllers, missing)


def mount_of(path: str, mounts_file: str = "/proc/self/mounts") -> MountEntry | None:
    """The mount-table entry whose mount point holds ``path`` (the longest matching prefix;
    the last such entry wins, as later mounts shadow earlier ones)."""
    real = os.path.realpath(path)
    best: MountEntry | None = None
    for e in _read_mounts(mounts_file):
        mp = e.path.rstrip("/") or "/"
        inside = real == mp or real.startswith(mp + "/") or mp == "/"
        if inside and (best is None or len(mp) >= len(best.path.rstrip("/") or "/")):
            best = e
    return best


def is_cgroup2(path: str, mounts_file: str = "/proc/self/mounts") -> bool:
    """Whether ``path`` lies on a cgroup2 filesystem (statfs f_type would be
    CGROUP2_SUPER_MAGIC; Python cannot read f_type, so the mount table decides)."""
    entry = mount_of(path, mounts_file)
    return entry is not None and entry.fstype == "cgroup2"
