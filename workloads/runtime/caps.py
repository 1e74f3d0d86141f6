"""Capabilities: names, the sets a workload gets, and applying them to this process.

A workload gets docker's default set of 14 in all five sets (bounding, permitted, effective,
inheritable, ambient), adjusted as docker adjusts it (``resolve``). Applying uses prctl and capset
through libc; Python has neither.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from collections.abc import Iterable
from typing import Final

# Index = capability number (linux/capability.h).
NAMES: Final = (
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
    "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
    "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
    "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD",
    "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",
    "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
)  # fmt: skip
ALL: Final = "ALL"
# docker's (and runc's spec example's) default set.
DEFAULT_NAMES: Final = (
    "CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID",
    "SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE",
)  # fmt: skip

_PR_CAPBSET_DROP: Final = 24
_PR_CAP_AMBIENT: Final = 47
_PR_CAP_AMBIENT_RAISE: Final = 2
_PR_CAP_AMBIENT_CLEAR_ALL: Final = 4
_CAP_VERSION_3: Final = 0x20080522


def number(name: str) -> int:
    return NAMES.index(name.removeprefix("CAP_"))


def mask_of(names: Iterable[str]) -> int:
    m = 0
    for n in names:
        m |= 1 << number(n)
    return m


DEFAULT_MASK: Final = mask_of(DEFAULT_NAMES)


def canonical(text: str) -> str:
    """A name as the user may write it (sys_admin, CAP_SYS_ADMIN, Sys_Admin; all) in the form
    stored: CAP_SYS_ADMIN, ALL."""
    name = text.strip().upper()
    if name == ALL:
        return ALL
    bare = name.removeprefix("CAP_")
    if bare not in NAMES:
        raise ValueError(f"unknown capability {text!r} (see capabilities(7), or ALL)")
    return "CAP_" + bare


def names_of(mask: int) -> list[str]:
    return ["CAP_" + n for i, n in enumerate(NAMES) if mask >> i & 1]


def resolve(cap_add: Iterable[str], cap_drop: Iterable[str], privileged: bool, full: int) -> int:
    """The workload's set as docker computes it (moby TweakCapabilities): privileged keeps all;
    --cap-add ALL is all but the dropped; --cap-drop ALL is only the added; otherwise the
    default minus the dropped plus the added. ``full``: the caps this process can hand on."""
    adds, drops = set(cap_add), set(cap_drop)
    if privileged:
        return full
    if ALL in adds:
        mask = full & ~mask_of(drops - {ALL})
    elif ALL in drops:
        mask = mask_of(adds)
    else:
        mask = (DEFAULT_MASK & ~mask_of(drops)) | mask_of(adds)
    return mask & full


def last_cap() -> int:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except (OSError, ValueError):
        return len(NAMES) - 1


def bounding_mask() -> int:
    """This process's bounding set: no workload can get a capability outside it."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("CapBnd:"):
                return int(line.split()[1], 16)
    return (1 << (last_cap() + 1)) - 1


class _Header(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _Data(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.capset.argtypes = [ctypes.POINTER(_Header), ctypes.POINTER(_Data)]


def prctl(option: int, arg2: int, what: str, arg3: int = 0) -> None:
    ul = ctypes.c_ulong
    if _libc.prctl(ctypes.c_int(option), ul(arg2), ul(arg3), ul(0), ul(0)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def apply(mask: int) -> None:
    """Set all five sets of this process to ``mask``: the bounding set first (that needs
    CAP_SETPCAP, still held), then capset, then the ambient set (which needs each cap in both
    permitted and inheritable). For root, execve keeps exactly these (root's file sets are full,
    the new permitted set is the bounding set)."""
    last = last_cap()
    for cap in range(last + 1):
        if not mask >> cap & 1:
            prctl(_PR_CAPBSET_DROP, cap, f"prctl(PR_CAPBSET_DROP, {cap})")
    prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, "prctl(PR_CAP_AMBIENT_CLEAR_ALL)")
    hdr = _Header(_CAP_VERSION_3, 0)
    data = (_Data * 2)()
    for i in range(2):
        word = mask >> (32 * i) & 0xFFFFFFFF
        data[i].effective = data[i].permitted = data[i].inheritable = word
    if _libc.capset(ctypes.byref(hdr), data) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"capset: {os.strerror(err)}")
    for cap in range(last + 1):
        if mask >> cap & 1:
            prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_RAISE, f"PR_CAP_AMBIENT_RAISE {cap}", cap)
