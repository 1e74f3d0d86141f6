"""The seccomp program laid out as a binary tree (CTL_OPTIMIZE=2, for a cheaper load) decides
every syscall exactly as the linear layout does: both programs are run by a small classic-BPF
interpreter over every syscall number of each architecture in the filter, with the argument
values the profile's conditions name."""

from __future__ import annotations

import struct
from collections.abc import Iterator

import pytest

from workloads.runtime import caps, seccomp_profile

seccomp = pytest.importorskip("seccomp")

AUDIT_ARCH_X86_64 = 0xC000003E
AUDIT_ARCH_I386 = 0x40000003
X32_BIT = 0x40000000
_INSN = struct.Struct("<HBBI")  # struct sock_filter: code, jt, jf, k
M32 = 0xFFFFFFFF


def run_filter(prog: bytes, data: bytes) -> int:
    """The seccomp return value of classic BPF ``prog`` for struct seccomp_data ``data``; only
    the instructions libseccomp emits (an unknown one fails the test)."""
    insns: list[tuple[int, int, int, int]] = [
        _INSN.unpack_from(prog, i) for i in range(0, len(prog), 8)
    ]
    a = x = 0
    mem = [0] * 16
    pc = 0
    for _ in range(len(insns) + 1):  # classic BPF only jumps forward
        code, jt, jf, k = insns[pc]
        pc += 1
        cls, op = code & 0x07, code & 0xF0
        if code == 0x20:  # ld [k]
            a = struct.unpack_from("<I", data, k)[0]
        elif code == 0x00:  # ld #k
            a = k
        elif code == 0x60:  # ld M[k]
            a = mem[k]
        elif code == 0x02:  # st M[k]
            mem[k] = a
        elif code == 0x07:  # tax
            x = a
        elif code == 0x87:  # txa
            a = x
        elif code == 0x54:  # and #k
            a &= k
        elif code == 0x05:  # ja k
            pc += k
        elif cls == 0x05 and code & 0x08 == 0:  # jeq/jgt/jge/jset #k
            hit = {0x10: a == k, 0x20: a > k, 0x30: a >= k, 0x40: bool(a & k)}[op]
            pc += jt if hit else jf
        elif code == 0x06:  # ret #k
            return k
        elif code == 0x16:  # ret a
            return a
        else:
            raise AssertionError(f"instruction {code:#x} not interpreted")
        a &= M32
    raise AssertionError("the program ran off its end")


def seccomp_data(nr: int, arch: int, args: tuple[int, ...] = ()) -> bytes:
    full = (*args, *[0] * (6 - len(args)))
    return struct.pack("<iIQ6Q", nr, arch, 0x400000, *full)


def _arg_vectors(profile: seccomp_profile.Profile) -> list[tuple[int, ...]]:
    """Zero, all ones, and each value a condition names at its index (and one either side)."""
    out: list[tuple[int, ...]] = [(), (2**64 - 1,) * 6]
    for rule in profile.rules:
        for arg in rule.args:
            for v in {arg.value, arg.value + 1, max(arg.value - 1, 0), arg.value | arg.value_two}:
                vec = [0] * 6
                vec[arg.index] = v & (2**64 - 1)
                out.append(tuple(vec))
    return out


def _calls(profile: seccomp_profile.Profile) -> Iterator[bytes]:
    vectors = _arg_vectors(profile)
    with_args = {
        n for r in profile.rules if r.args for n in r.names
    }  # syscalls whose rules look at arguments get every vector, the others two
    nrs = {seccomp.resolve_syscall(seccomp.Arch.X86_64, n) for n in with_args} | {
        seccomp.resolve_syscall(seccomp.Arch.X86, n) for n in with_args
    }
    for arch, base in ((AUDIT_ARCH_X86_64, 0), (AUDIT_ARCH_X86_64, X32_BIT), (AUDIT_ARCH_I386, 0)):
        for nr in range(-1, 560):
            for vec in vectors if nr in nrs else vectors[:2]:
                yield seccomp_data(base + nr if nr >= 0 else nr, arch, vec)
    yield seccomp_data(0, 0xDEAD)  # an architecture not in the filter


@pytest.mark.skipif(
    __import__("platform").machine() != "x86_64", reason="the architectures are x86_64's"
)
def test_tree_layout_decides_every_syscall_as_the_linear_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    profile = seccomp_profile.read(seccomp_profile.DEFAULT_PROFILE)
    held = frozenset(caps.names_of(caps.DEFAULT_MASK))
    tree = seccomp_profile.compile_bpf(profile, held)

    class Linear(seccomp.SyscallFilter):  # type: ignore[misc, name-defined]
        def set_attr(self, attr: object, value: int) -> None:
            assert attr == seccomp.Attr.CTL_OPTIMIZE  # the only attribute compile_bpf sets

    monkeypatch.setattr(seccomp, "SyscallFilter", Linear)
    linear = seccomp_profile.compile_bpf(profile, held)
    assert tree != linear  # the layout did change
    n = 0
    for data in _calls(profile):
        assert run_filter(tree, data) == run_filter(linear, data), struct.unpack_from("<iI", data)
        n += 1
    assert n > 1500
    # The interpreter itself: the profile's explicit rules come out as the kernel would apply them.
    x64 = AUDIT_ARCH_X86_64
    assert run_filter(tree, seccomp_data(39, x64)) == 0x7FFF0000  # getpid: SCMP_ACT_ALLOW
    assert run_filter(tree, seccomp_data(168, x64)) == 0x00050000 | 1  # swapoff: EPERM
    assert run_filter(tree, seccomp_data(248, x64)) == 0x00050000 | 38  # add_key: ENOSYS


def test_cache_files_of_the_linear_layout_are_not_read() -> None:
    # The compiler version is part of the cache key: a program cached before the layout change
    # (version 1) is never loaded in place of the new one.
    raw = seccomp_profile.read_raw(seccomp_profile.DEFAULT_PROFILE)
    assert seccomp_profile.COMPILER_VERSION >= 2
    key = seccomp_profile.cache_key(raw, caps.DEFAULT_MASK)
    old = seccomp_profile.COMPILER_VERSION
    try:
        seccomp_profile.COMPILER_VERSION = 1  # type: ignore[misc]
        assert seccomp_profile.cache_key(raw, caps.DEFAULT_MASK) != key
    finally:
        seccomp_profile.COMPILER_VERSION = old  # type: ignore[misc]
