"""The workload cgroup's device allow-list, as the eBPF program runc and crun attach on cgroup v2.

cgroup v2 has no devices.allow file: the kernel asks a BPF_PROG_TYPE_CGROUP_DEVICE program
attached to the cgroup (and its ancestors' programs) on every open and mknod of a device node,
and denies access unless each returns 1. This module is pure: rules in, eBPF instructions out
(struct bpf_insn, 8 bytes each); workloads.runtime.bpf loads and attaches the bytes.

The program has the shape runc's generator emits (opencontainers/cgroups devices/ebpf): the
context (struct bpf_cgroup_dev_ctx: access_type = access << 16 | type, major, minor) is loaded
into r2 (type), r3 (access), r4 (major), r5 (minor); then one block per rule that jumps to the
next block on any mismatch and returns 1 when all its fields match; 0 (deny) at the end.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from workloads.runtime.spec import WorkloadSpec

# struct bpf_cgroup_dev_ctx values (include/uapi/linux/bpf.h)
DEV_BLOCK = 1  # BPF_DEVCG_DEV_BLOCK
DEV_CHAR = 2  # BPF_DEVCG_DEV_CHAR
ACC_MKNOD = 1  # BPF_DEVCG_ACC_MKNOD
ACC_READ = 2  # BPF_DEVCG_ACC_READ
ACC_WRITE = 4  # BPF_DEVCG_ACC_WRITE
_ACCESS_BITS = {"m": ACC_MKNOD, "r": ACC_READ, "w": ACC_WRITE}
_ALL_ACCESS = ACC_MKNOD | ACC_READ | ACC_WRITE
_TYPES = {"b": DEV_BLOCK, "c": DEV_CHAR}

# Opcodes of the handful of instructions the generator uses (BPF_CLASS | BPF_OP | BPF_SRC).
LDX_MEM_W = 0x61  # BPF_LDX | BPF_MEM | BPF_W:  dst = *(u32 *)(src + off)
AND32_IMM = 0x54  # BPF_ALU | BPF_AND | BPF_K:  dst &= imm (32-bit)
RSH32_IMM = 0x74  # BPF_ALU | BPF_RSH | BPF_K:  dst >>= imm
MOV32_IMM = 0xB4  # BPF_ALU | BPF_MOV | BPF_K:  dst = imm
MOV32_REG = 0xBC  # BPF_ALU | BPF_MOV | BPF_X:  dst = src
JNE_IMM = 0x55  # BPF_JMP | BPF_JNE | BPF_K:  if dst != imm goto pc + 1 + off
JNE_REG = 0x5D  # BPF_JMP | BPF_JNE | BPF_X:  if dst != src goto pc + 1 + off
EXIT = 0x95  # BPF_JMP | BPF_EXIT:         return r0

_INSN = struct.Struct("<BBhi")  # code, dst_reg:4 | src_reg:4 << 4, off, imm


class DeviceRuleError(ValueError):
    """A device rule or --device value that cannot be used; the message is shown as is."""


@dataclass(frozen=True, slots=True)
class DeviceRule:
    """An allow rule in cgroup v1 devices.allow terms: ``c 1:3 rwm``; None is the '*' wildcard.

    ``kind`` "a" (all) matches both block and character devices, as in devices.allow."""

    kind: str
    major: int | None
    minor: int | None
    access: str

    def __str__(self) -> str:
        def num(n: int | None) -> str:
            return "*" if n is None else str(n)

        return f"{self.kind} {num(self.major)}:{num(self.minor)} {self.access}"

    @property
    def access_mask(self) -> int:
        mask = 0
        for ch in self.access:
            mask |= _ACCESS_BITS[ch]
        return mask


def _number(text: str, what: str, rule: str) -> int | None:
    if text == "*":
        return None
    if not text.isdigit() or int(text) > 0xFFFFFFFF:
        raise DeviceRuleError(f"invalid device rule {rule!r}: {what} must be a number or '*'")
    return int(text)


def check_access(access: str, what: str) -> str:
    """``access`` as a canonical subset of "rwm" (each letter once, in that order)."""
    if not access or any(ch not in _ACCESS_BITS for ch in access):
        raise DeviceRuleError(f"invalid {what} {access!r}: use one or more of r, w, m")
    return "".join(ch for ch in "rwm" if ch in access)


def parse_rule(text: str) -> DeviceRule:
    """A rule in devices.allow syntax: ``TYPE MAJOR:MINOR ACCESS``, e.g. ``c 136:* rwm``."""
    parts = text.split()
    if len(parts) != 3 or parts[0] not in ("a", "b", "c") or parts[1].count(":") != 1:
        raise DeviceRuleError(f"invalid device rule {text!r}: expected e.g. 'c 1:3 rwm'")
    major, minor = parts[1].split(":")
    return DeviceRule(
        parts[0],
        _number(major, "the major number", text),
        _number(minor, "the minor number", text),
        check_access(parts[2], f"access in device rule {text!r}"),
    )


# runc's default allow-list (libcontainer/specconv AllowedDevices, runc >= 1.2.1 with tun/tap
# re-added): mknod of any node, but read and write only of these. /dev/console (5:1) is not in
# it: runc's console is a pty (136:*), and a pystats workload has no terminal.
DEFAULT_RULES: tuple[DeviceRule, ...] = tuple(
    parse_rule(r)
    for r in (  # in the order runc's generator emits them
        "b *:* m",
        "c *:* m",
        "c 1:3 rwm",  # null
        "c 1:5 rwm",  # zero
        "c 1:7 rwm",  # full
        "c 1:8 rwm",  # random
        "c 1:9 rwm",  # urandom
        "c 5:0 rwm",  # tty
        "c 5:2 rwm",  # ptmx
        "c 10:200 rwm",  # tun
        "c 136:* rwm",  # pts
    )
)
ALLOW_ALL = DeviceRule("a", None, None, "rwm")


def workload_rules(
    extra: Iterable[DeviceRule] = (), *, privileged: bool = False
) -> tuple[DeviceRule, ...]:
    """The allow-list of a workload: runc's defaults plus its --device rules; everything when
    privileged (as runc's privileged containers get 'a *:* rwm')."""
    if privileged:
        return (ALLOW_ALL,)
    rules = list(DEFAULT_RULES)
    for rule in extra:
        if rule not in rules:
            rules.append(rule)
    return tuple(rules)


def rules_for_spec(spec: WorkloadSpec) -> tuple[DeviceRule, ...]:
    """The allow-list of ``spec``: its --device nodes (read on the host when the spec was
    made, workloads.runtime.mounts.parse_device) on top of the defaults; --privileged: all."""
    extra = [
        DeviceRule(d.kind, d.major, d.minor, check_access(d.perms, "--device permissions"))
        for d in spec.mounts.devices
    ]
    return workload_rules(extra, privileged=spec.security.privileged)


# -- the assembler ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Insn:
    """One struct bpf_insn."""

    code: int
    dst: int = 0
    src: int = 0
    off: int = 0
    imm: int = 0

    def encode(self) -> bytes:
        return _INSN.pack(self.code, (self.src << 4) | self.dst, self.off, self.imm)


def assemble(insns: Sequence[Insn]) -> bytes:
    return b"".join(i.encode() for i in insns)


# Registers: r1 holds the context on entry; r0 is the verdict.
_R0, _R1, _TYPE, _ACCESS, _MAJOR, _MINOR = 0, 1, 2, 3, 4, 5

_PROLOGUE = (
    Insn(LDX_MEM_W, _TYPE, _R1, 0),  # access_type
    Insn(AND32_IMM, _TYPE, imm=0xFFFF),  # its low half: the device type
    Insn(LDX_MEM_W, _ACCESS, _R1, 0),
    Insn(RSH32_IMM, _ACCESS, imm=16),  # its high half: the access asked for
    Insn(LDX_MEM_W, _MAJOR, _R1, 4),
    Insn(LDX_MEM_W, _MINOR, _R1, 8),
)
_NEXT = -1  # placeholder offset: "the next block", fixed once the block's length is known


def _rule_block(rule: DeviceRule) -> list[Insn]:
    block: list[Insn] = []
    if rule.kind != "a":
        block.append(Insn(JNE_IMM, _TYPE, off=_NEXT, imm=_TYPES[rule.kind]))
    if rule.access_mask != _ALL_ACCESS:
        # Every access asked for must be allowed: (asked & allowed) == asked.
        block += [
            Insn(MOV32_REG, _R1, _ACCESS),
            Insn(AND32_IMM, _R1, imm=rule.access_mask),
            Insn(JNE_REG, _R1, _ACCESS, off=_NEXT),
        ]
    if rule.major is not None:
        block.append(Insn(JNE_IMM, _MAJOR, off=_NEXT, imm=rule.major))
    if rule.minor is not None:
        block.append(Insn(JNE_IMM, _MINOR, off=_NEXT, imm=rule.minor))
    block += [Insn(MOV32_IMM, _R0, imm=1), Insn(EXIT)]
    # Each jump goes to the instruction after this block: offsets count from the next insn.
    return [
        Insn(i.code, i.dst, i.src, len(block) - n - 1, i.imm) if i.off == _NEXT else i
        for n, i in enumerate(block)
    ]


@functools.lru_cache(maxsize=16)
def program_bytes(rules: tuple[DeviceRule, ...]) -> bytes:
    """build_program(rules) assembled, made once per allow-list in this process: assembling the
    default list in Python took ~0.12 ms of each launch, as long as the kernel's load of it."""
    return assemble(build_program(rules))


def build_program(rules: Iterable[DeviceRule]) -> list[Insn]:
    """The device program allowing exactly ``rules`` (first match allows; nothing else is)."""
    insns = list(_PROLOGUE)
    for rule in rules:
        check_access(rule.access, f"access of device rule {rule}")
        if rule.kind not in ("a", "b", "c"):
            raise DeviceRuleError(f"invalid device type {rule.kind!r} in rule {rule}")
        block = _rule_block(rule)
        insns += block
        if (
            rule.kind == "a"
            and rule.major is None
            and rule.minor is None
            and (rule.access_mask == _ALL_ACCESS)
        ):
            return insns  # allows everything: what follows could never be reached
    insns += [Insn(MOV32_IMM, _R0, imm=0), Insn(EXIT)]
    return insns
