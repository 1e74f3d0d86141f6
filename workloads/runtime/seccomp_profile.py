"""seccomp profiles: docker/podman JSON -> libseccomp filter -> the BPF program, compiled once.

The format is docker's and podman's (containers-common's seccomp.json): ``defaultAction``,
``defaultErrnoRet``, ``archMap``, ``syscalls`` with ``names``, ``action``, ``errnoRet``, ``args``
and ``includes``/``excludes`` on ``caps``, ``arches`` and ``minKernel``. A rule that names
capabilities follows the workload's own set, as crun and runc decide it: it is kept when the set
holds every cap in ``includes.caps`` and none in ``excludes.caps``.

libseccomp (through its own Python binding, imported only to compile) turns the profile into BPF;
the program is exported once per (profile contents, capability set, architecture) into a cache
file, so a launch reads a few kilobytes instead of compiling. The workload's init loads it with
prctl(PR_SET_SECCOMP) (see workloads.runtime.security).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import json
import os
import platform
import tempfile
from dataclasses import dataclass
from typing import Any, Final

from workloads.runtime import caps

DEFAULT_PROFILE: Final = "/usr/share/containers/seccomp.json"
# Bump when the way a profile is compiled changes: old cache files are then never read.
# 2: libseccomp's binary-tree layout (CTL_OPTIMIZE=2) instead of its linear rule order.
COMPILER_VERSION: Final = 2
_ACTIONS: Final = (
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_TRAP",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_LOG",
)
_OPS: Final = ("NE", "LT", "LE", "EQ", "GE", "GT", "MASKED_EQ")
# Architecture names of includes/excludes.arches are Go's (GOARCH), as docker and podman write them.
_GOARCH: Final = {
    "x86_64": "amd64",
    "aarch64": "arm64",
    "armv7l": "arm",
    "i686": "386",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
    "mips64": "mips64",
}
_PR_SET_SECCOMP: Final = 22
_SECCOMP_MODE_FILTER: Final = 2


class ProfileError(ValueError):
    """A profile that cannot be read or used; the message names the file."""


@dataclass(frozen=True)
class Arg:
    index: int
    op: str  # one of _OPS
    value: int
    value_two: int = 0


@dataclass(frozen=True)
class Cond:
    caps: tuple[str, ...] = ()
    arches: tuple[str, ...] = ()
    min_kernel: tuple[int, ...] = ()


@dataclass(frozen=True)
class Rule:
    names: tuple[str, ...]
    action: str
    errno_ret: int | None
    args: tuple[Arg, ...] = ()
    includes: Cond = Cond()
    excludes: Cond = Cond()

    def applies(self, caps: frozenset[str], goarch: str, kernel: tuple[int, ...]) -> bool:
        inc, exc = self.includes, self.excludes
        if any(c not in caps for c in inc.caps) or any(c in caps for c in exc.caps):
            return False
        if (inc.arches and goarch not in inc.arches) or goarch in exc.arches:
            return False
        if inc.min_kernel and kernel < inc.min_kernel:
            return False
        return not (exc.min_kernel and kernel >= exc.min_kernel)


@dataclass(frozen=True)
class Profile:
    default_action: str
    default_errno: int | None
    arch_map: tuple[tuple[str, tuple[str, ...]], ...]
    rules: tuple[Rule, ...]

    def sub_arches(self, native: str) -> tuple[str, ...]:
        for arch, subs in self.arch_map:
            if arch == native:
                return subs
        return ()


# ---- parsing: pure Python, so the agent validates a profile without libseccomp ----------------


def _strs(v: object, where: str) -> tuple[str, ...]:
    if v is None:
        return ()
    if not isinstance(v, list) or not all(isinstance(s, str) for s in v):
        raise ValueError(f"{where} must be a list of strings")
    return tuple(v)


def _int(v: object, where: str, lo: int = 0, hi: int = 2**64 - 1) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise ValueError(f"{where} must be an integer from {lo} to {hi}")
    return v


def _obj(v: object, where: str) -> dict[str, Any]:
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise ValueError(f"{where} must be an object")
    return v


def _version(text: str, where: str) -> tuple[int, ...]:
    parts = text.split(".")
    if not all(p.isdigit() for p in parts):
        raise ValueError(f"{where} must be a kernel version like 5.8")
    return tuple(int(p) for p in parts)


def _cond(v: object, where: str) -> Cond:
    d = _obj(v, where)
    mk = d.get("minKernel")
    if mk is not None and not isinstance(mk, str):
        raise ValueError(f"{where}.minKernel must be a string")
    return Cond(
        caps=_strs(d.get("caps"), f"{where}.caps"),
        arches=_strs(d.get("arches"), f"{where}.arches"),
        min_kernel=_version(mk, f"{where}.minKernel") if mk else (),
    )


def _action(v: object, where: str) -> str:
    if v not in _ACTIONS:
        if v == "SCMP_ACT_NOTIFY":
            raise ValueError(f"{where}: SCMP_ACT_NOTIFY is not supported (no seccomp agent)")
        raise ValueError(f"{where} must be one of {', '.join(_ACTIONS)}, not {v!r}")
    return str(v)


def _arg(v: object, where: str) -> Arg:
    d = _obj(v, where)
    op = d.get("op")
    if not isinstance(op, str) or op.removeprefix("SCMP_CMP_") not in _OPS:
        raise ValueError(f"{where}.op must be one of SCMP_CMP_{', SCMP_CMP_'.join(_OPS)}")
    return Arg(
        index=_int(d.get("index"), f"{where}.index", 0, 5),
        op=op.removeprefix("SCMP_CMP_"),
        value=_int(d.get("value", 0), f"{where}.value"),
        value_two=_int(d.get("valueTwo", 0), f"{where}.valueTwo"),
    )


def _rule(v: object, where: str) -> Rule:
    d = _obj(v, where)
    names = _strs(d.get("names"), f"{where}.names")
    if isinstance(d.get("name"), str):  # docker's older one-name form
        names += (d["name"],)
    if not names:
        raise ValueError(f"{where} names no syscall")
    errno_ret = d.get("errnoRet")
    args = d.get("args") or []
    if not isinstance(args, list):
        raise ValueError(f"{where}.args must be a list")
    return Rule(
        names=names,
        action=_action(d.get("action"), f"{where}.action"),
        errno_ret=None if errno_ret is None else _int(errno_ret, f"{where}.errnoRet", 0, 4095),
        args=tuple(_arg(a, f"{where}.args[{i}]") for i, a in enumerate(args)),
        includes=_cond(d.get("includes"), f"{where}.includes"),
        excludes=_cond(d.get("excludes"), f"{where}.excludes"),
    )


def _profile(d: object) -> Profile:
    top = _obj(d, "the profile")
    if top.get("flags"):
        raise ValueError("flags are not supported")
    if top.get("listenerPath"):
        raise ValueError("listenerPath is not supported (no seccomp agent)")
    errno_ret = top.get("defaultErrnoRet")
    arch_map = []
    for i, a in enumerate(top.get("archMap") or []):
        entry = _obj(a, f"archMap[{i}]")
        arch = entry.get("architecture")
        if not isinstance(arch, str):
            raise ValueError(f"archMap[{i}].architecture must be a string")
        arch_map.append((arch, _strs(entry.get("subArchitectures"), f"archMap[{i}]")))
    syscalls = top.get("syscalls") or []
    if not isinstance(syscalls, list):
        raise ValueError("syscalls must be a list")
    return Profile(
        default_action=_action(top.get("defaultAction"), "defaultAction"),
        default_errno=None if errno_ret is None else _int(errno_ret, "defaultErrnoRet", 0, 4095),
        arch_map=tuple(arch_map),
        rules=tuple(_rule(s, f"syscalls[{i}]") for i, s in enumerate(syscalls)),
    )


def read_raw(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise ProfileError(f"seccomp profile {path}: cannot read it: {e.strerror}") from None


def read(path: str) -> Profile:
    """The profile in ``path``, validated; ProfileError names the file."""
    return parse(read_raw(path), path)


def parse(raw: bytes, path: str) -> Profile:
    try:
        return _profile(json.loads(raw))
    except json.JSONDecodeError as e:
        raise ProfileError(f"seccomp profile {path}: not JSON: {e}") from None
    except ValueError as e:
        raise ProfileError(f"seccomp profile {path}: {e}") from None


# ---- compiling: libseccomp ------------------------------------------------------------------


def goarch() -> str:
    m = platform.machine()
    return _GOARCH.get(m, m)


def kernel_version() -> tuple[int, ...]:
    nums = []
    for part in platform.release().split("-")[0].split("."):
        if not part.isdigit():
            break
        nums.append(int(part))
    return tuple(nums)


def compile_bpf(profile: Profile, caps: frozenset[str]) -> bytes:
    """The profile as the BPF program libseccomp generates for this machine's architecture (and
    its archMap's sub-architectures), the rules chosen for the capability set ``caps``."""
    import seccomp

    def action(name: str, errno_ret: int | None) -> int:
        short = name.removeprefix("SCMP_ACT_")
        if short == "ERRNO":
            return int(seccomp.ERRNO(errno.EPERM if errno_ret is None else errno_ret))
        if short == "TRACE":
            return int(seccomp.TRACE(errno.EPERM if errno_ret is None else errno_ret))
        return int(getattr(seccomp, {"KILL_THREAD": "KILL"}.get(short, short)))

    default = action(profile.default_action, profile.default_errno)
    flt = seccomp.SyscallFilter(default)
    # The same rules laid out as a binary search on the syscall number (libseccomp >= 2.5.0)
    # instead of a list walked in order: the kernel emulates the filter once per syscall number
    # when it is loaded (its constant-action cache, Linux 5.11), which took ~0.7 of the ~1.9 ms
    # the load cost natively; every filtered syscall later also takes fewer instructions.
    with contextlib.suppress(AttributeError, RuntimeError):  # libseccomp < 2.5: linear order
        flt.set_attr(seccomp.Attr.CTL_OPTIMIZE, 2)
    native_val = seccomp.system_arch() & 0xFFFFFFFF
    native = next(
        (f"SCMP_ARCH_{a}" for a in dir(seccomp.Arch)
         if a.isupper() and a != "NATIVE"
         and int(getattr(seccomp.Arch, a)) & 0xFFFFFFFF == native_val),
        "",
    )  # fmt: skip
    for sub in profile.sub_arches(native):
        arch = getattr(seccomp.Arch, sub.removeprefix("SCMP_ARCH_"), None)
        if arch is not None:
            with contextlib.suppress(RuntimeError):  # a kernel without that ABI
                flt.add_arch(arch)
    go, kernel = goarch(), kernel_version()
    for rule in profile.rules:
        if not rule.applies(caps, go, kernel):
            continue
        act = action(rule.action, rule.errno_ret)
        if act == default:
            continue  # libseccomp refuses it, and it changes nothing (runc skips it too)
        conds = [
            seccomp.Arg(a.index, getattr(seccomp, a.op), a.value, a.value_two) for a in rule.args
        ]
        # Two conditions on one argument cannot be ANDed by libseccomp: runc adds each alone.
        split = len({a.index for a in rule.args}) < len(rule.args)
        groups = [[c] for c in conds] if split else [conds]
        for name in rule.names:
            if seccomp.resolve_syscall(seccomp.Arch.NATIVE, name) == -1:
                continue  # unknown to this libseccomp: skipped, as runc and crun do
            for group in groups:
                try:
                    flt.add_rule(act, name, *group)
                except RuntimeError as e:
                    raise ProfileError(f"libseccomp refused the rule for {name}: {e}") from None
    with tempfile.TemporaryFile() as out:
        flt.export_bpf(out)
        out.seek(0)
        return out.read()


# ---- the cache -------------------------------------------------------------------------------


def cache_key(raw: bytes, caps_mask: int) -> str:
    h = hashlib.sha256(raw)
    h.update(f"\0{caps_mask:x}\0{platform.machine()}\0{COMPILER_VERSION}".encode())
    return h.hexdigest()


# Programs this process has read, by the profile file's identity: the fork server warms it, so
# every shim it forks finds the program with one stat instead of reading and hashing the profile.
_programs: dict[tuple[object, ...], bytes] = {}


def cached_bpf(path: str, caps: frozenset[str], caps_mask: int, cache_dir: str | None) -> bytes:
    """The program for ``path`` and this capability set: from ``cache_dir`` when compiled before,
    else compiled and stored there (atomically: concurrent launches may race to write it)."""
    try:
        st = os.stat(path)
    except OSError:
        memo = None  # read_raw says why
    else:
        memo = (path, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, caps_mask, cache_dir)
        if (prog := _programs.get(memo)) is not None:
            return prog
    prog = _cached_bpf(path, caps, caps_mask, cache_dir)
    if memo is not None:
        _programs[memo] = prog
    return prog


def _cached_bpf(path: str, caps: frozenset[str], caps_mask: int, cache_dir: str | None) -> bytes:
    raw = read_raw(path)
    key = cache_key(raw, caps_mask)
    file = os.path.join(cache_dir, f"{key}.bpf") if cache_dir else None
    if file is not None:
        with contextlib.suppress(OSError):
            with open(file, "rb") as f:
                prog = f.read()
            if prog and len(prog) % 8 == 0:
                return prog
    profile = parse(raw, path)  # only on a miss: parsing costs more than the cached read
    try:
        prog = compile_bpf(profile, caps)
    except (RuntimeError, ValueError) as e:
        raise ProfileError(f"seccomp profile {path}: {e}") from None
    if file is not None and cache_dir is not None:
        with contextlib.suppress(OSError):
            os.makedirs(cache_dir, mode=0o700, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=cache_dir, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(prog)
                os.rename(tmp, file)
            except OSError:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
    return prog


# ---- loading ---------------------------------------------------------------------------------


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def load(prog: bytes) -> None:
    """Install ``prog`` (struct sock_filter[]) on this thread: prctl(PR_SET_SECCOMP,
    SECCOMP_MODE_FILTER). Needs no_new_privs set, or CAP_SYS_ADMIN in this user namespace."""
    buf = ctypes.create_string_buffer(prog, len(prog))
    fprog = _SockFprog(len(prog) // 8, ctypes.addressof(buf))
    caps.prctl(
        _PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, "prctl(PR_SET_SECCOMP)", ctypes.addressof(fprog)
    )
