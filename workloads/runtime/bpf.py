"""bpf(2) for the device program: BPF_PROG_LOAD and BPF_PROG_ATTACH through ctypes.

Lifetime: a loaded program lives while an fd or an attachment refers to it. We attach it to the
workload cgroup and close our fd at once, so the program lives exactly as long as the cgroup
(removing the cgroup detaches and frees it); nothing is pinned and no fd is kept.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import platform
import struct
from typing import Final

BPF_PROG_LOAD: Final = 5
BPF_PROG_ATTACH: Final = 8
BPF_PROG_TYPE_CGROUP_DEVICE: Final = 15
BPF_CGROUP_DEVICE: Final = 6  # attach type
BPF_F_ALLOW_MULTI: Final = 2  # programs of ancestors and of this cgroup all run (as runc)
LICENSE: Final = b"Apache"  # what runc declares; the program calls no GPL-only helper
_SYS_BPF: Final = {"x86_64": 321, "aarch64": 280, "riscv64": 280, "ppc64le": 361}
_LOG_SIZE: Final = 64 * 1024

# union bpf_attr, the BPF_PROG_LOAD part up to expected_attach_type (72 bytes): prog_type,
# insn_cnt, insns, license, log_level, log_size, log_buf, kern_version, prog_flags,
# prog_name[16], prog_ifindex, expected_attach_type.
_PROG_LOAD = struct.Struct("=IIQQIIQII16sII")
# The BPF_PROG_ATTACH part: target_fd, attach_bpf_fd, attach_type, attach_flags.
_PROG_ATTACH = struct.Struct("=IIII")

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.syscall.restype = ctypes.c_long


def _bpf(cmd: int, attr: bytes) -> int:
    nr = _SYS_BPF.get(platform.machine())
    if nr is None:
        raise OSError(errno.ENOSYS, f"bpf: unknown syscall number on {platform.machine()}")
    buf = ctypes.create_string_buffer(attr, len(attr))
    rc = _libc.syscall(ctypes.c_long(nr), ctypes.c_int(cmd), buf, ctypes.c_uint(len(attr)))
    if rc < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return int(rc)


def _load_attr(
    insns: ctypes.Array[ctypes.c_char],
    lic: ctypes.Array[ctypes.c_char],
    log: ctypes.Array[ctypes.c_char] | None,
) -> bytes:
    """The BPF_PROG_LOAD attr; it points into the buffers, which the caller keeps alive."""
    return _PROG_LOAD.pack(
        BPF_PROG_TYPE_CGROUP_DEVICE,
        len(insns) // 8,
        ctypes.addressof(insns),
        ctypes.addressof(lic),
        1 if log is not None else 0,
        len(log) if log is not None else 0,
        ctypes.addressof(log) if log is not None else 0,
        0,
        0,
        b"pystats_dev",
        0,
        BPF_CGROUP_DEVICE,
    )


def load_device_program(code: bytes) -> int:
    """Load ``code`` (struct bpf_insn bytes) as a cgroup device program; returns its fd.

    OSError says why the kernel refused it, with the verifier's log when it has one."""
    if not code or len(code) % 8:
        raise ValueError("a BPF program is a non-empty sequence of 8-byte instructions")
    insns = ctypes.create_string_buffer(code, len(code))
    lic = ctypes.create_string_buffer(LICENSE)
    try:
        return _bpf(BPF_PROG_LOAD, _load_attr(insns, lic, None))
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.EACCES):
            raise OSError(e.errno, f"loading the device program: {e.strerror}{_hint(e)}") from None
    # Load again with the verifier's log on, to say what it disliked.
    log = ctypes.create_string_buffer(_LOG_SIZE)
    try:
        return _bpf(BPF_PROG_LOAD, _load_attr(insns, lic, log))
    except OSError as e:
        text = log.value.decode(errors="replace").strip().splitlines()
        detail = f" (verifier: {text[-1]})" if text else ""
        raise OSError(e.errno, f"loading the device program: {e.strerror}{detail}") from None


def _hint(e: OSError) -> str:
    if e.errno == errno.EPERM:
        return " (needs CAP_SYS_ADMIN or CAP_BPF, and RLIMIT_MEMLOCK on kernels before 5.11)"
    if e.errno == errno.ENOSYS:
        return " (this kernel has no bpf(2): CONFIG_BPF_SYSCALL is off)"
    return ""


def attach_device_program(cgroup_fd: int, prog_fd: int) -> None:
    """Attach a device program to the cgroup whose directory ``cgroup_fd`` is open on."""
    attr = _PROG_ATTACH.pack(cgroup_fd, prog_fd, BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI)
    try:
        _bpf(BPF_PROG_ATTACH, attr)
    except OSError as e:
        hint = " (this kernel lacks CONFIG_CGROUP_BPF)" if e.errno == errno.EINVAL else _hint(e)
        raise OSError(e.errno, f"attaching the device program: {e.strerror}{hint}") from None


def attach_device_filter(cgroup_fd: int, code: bytes) -> None:
    """Load ``code`` and attach it to the cgroup; our program fd is closed either way (the
    attachment keeps the program alive for as long as the cgroup exists)."""
    prog_fd = load_device_program(code)
    try:
        attach_device_program(cgroup_fd, prog_fd)
    finally:
        os.close(prog_fd)
