"""The device allow-list's eBPF program: golden bytes, runc's instruction sequence, rules."""

from __future__ import annotations

import struct

import pytest

from workloads.runtime import bpf, devices
from workloads.runtime.devices import (
    ALLOW_ALL,
    AND32_IMM,
    DEFAULT_RULES,
    EXIT,
    JNE_IMM,
    JNE_REG,
    LDX_MEM_W,
    MOV32_IMM,
    MOV32_REG,
    RSH32_IMM,
    DeviceRule,
    DeviceRuleError,
    Insn,
    assemble,
    build_program,
    parse_rule,
    rules_for_spec,
    workload_rules,
)
from workloads.runtime.mounts import Device, MountOpts
from workloads.runtime.security import SecurityOpts
from workloads.runtime.spec import WorkloadSpec

PROLOGUE = [
    (LDX_MEM_W, 2, 1, 0, 0),
    (AND32_IMM, 2, 0, 0, 0xFFFF),
    (LDX_MEM_W, 3, 1, 0, 0),
    (RSH32_IMM, 3, 0, 0, 16),
    (LDX_MEM_W, 4, 1, 4, 0),
    (LDX_MEM_W, 5, 1, 8, 0),
]
DENY = [(MOV32_IMM, 0, 0, 0, 0), (EXIT, 0, 0, 0, 0)]
ALLOW = [(MOV32_IMM, 0, 0, 0, 1), (EXIT, 0, 0, 0, 0)]


def _tuples(rules: list[DeviceRule]) -> list[tuple[int, int, int, int, int]]:
    return [(i.code, i.dst, i.src, i.off, i.imm) for i in build_program(rules)]


def test_golden_bytes_of_a_small_rule_set() -> None:
    code = assemble(build_program([parse_rule("c 1:3 rwm"), parse_rule("b *:* m")]))
    assert code.hex() == (
        # prologue: r2 = type, r3 = access, r4 = major, r5 = minor
        "6112000000000000"
        "54020000ffff0000"
        "6113000000000000"
        "7403000010000000"
        "6114040000000000"
        "6115080000000000"
        # c 1:3 rwm: three compares, each to the next block (+4, +3, +2 insns ahead)
        "5502040002000000"
        "5504030001000000"
        "5505020003000000"
        "b400000001000000"
        "9500000000000000"
        # b *:* m: type, then (access & m) == access, each to the next block (+5, +2)
        "5502050001000000"
        "bc31000000000000"
        "5401000001000000"
        "5d31020000000000"
        "b400000001000000"
        "9500000000000000"
        # nothing matched: deny
        "b400000000000000"
        "9500000000000000"
    )
    assert len(code) == 19 * 8


def test_the_default_program_is_runcs_instruction_for_instruction() -> None:
    # runc's generator (opencontainers/cgroups devices/ebpf, TestDeviceFilter_BuiltInAllowList)
    # emits 64 instructions for its built-in list in this order: prologue, the two mknod
    # wildcards, nine exact or pts rules, deny.
    def exact(major: int, minor: int) -> list[tuple[int, int, int, int, int]]:
        return [(JNE_IMM, 2, 0, 4, 2), (JNE_IMM, 4, 0, 3, major), (JNE_IMM, 5, 0, 2, minor), *ALLOW]

    def mknod_any(kind: int) -> list[tuple[int, int, int, int, int]]:
        return [
            (JNE_IMM, 2, 0, 5, kind),
            (MOV32_REG, 1, 3, 0, 0),
            (AND32_IMM, 1, 0, 0, 1),
            (JNE_REG, 1, 3, 2, 0),
            *ALLOW,
        ]

    expected = PROLOGUE + mknod_any(1) + mknod_any(2)
    for major, minor in ((1, 3), (1, 5), (1, 7), (1, 8), (1, 9), (5, 0), (5, 2), (10, 200)):
        expected += exact(major, minor)
    expected += [(JNE_IMM, 2, 0, 3, 2), (JNE_IMM, 4, 0, 2, 136), *ALLOW, *DENY]
    assert _tuples(list(DEFAULT_RULES)) == expected
    assert len(expected) == 64


def test_no_rules_denies_everything_and_allow_all_accepts_everything() -> None:
    assert _tuples([]) == PROLOGUE + DENY
    assert _tuples([ALLOW_ALL]) == PROLOGUE + ALLOW
    # Rules after an allow-all would be unreachable code, which the verifier refuses.
    assert _tuples([ALLOW_ALL, parse_rule("b 8:0 r")]) == PROLOGUE + ALLOW


def test_an_all_types_rule_skips_the_type_check() -> None:
    assert _tuples([parse_rule("a 7:* rw")]) == [
        *PROLOGUE,
        (MOV32_REG, 1, 3, 0, 0),
        (AND32_IMM, 1, 0, 0, 6),
        (JNE_REG, 1, 3, 3, 0),
        (JNE_IMM, 4, 0, 2, 7),
        *ALLOW,
        *DENY,
    ]


def test_insn_encoding_packs_registers_into_one_byte() -> None:
    raw = Insn(JNE_REG, dst=1, src=3, off=-2, imm=-1).encode()
    assert raw == struct.pack("<BBhi", 0x5D, 0x31, -2, -1) and len(raw) == 8


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("c 1:3 rwm", DeviceRule("c", 1, 3, "rwm")),
        ("b *:* m", DeviceRule("b", None, None, "m")),
        ("c 136:* wr", DeviceRule("c", 136, None, "rw")),
        ("a *:* mwr", ALLOW_ALL),
    ],
)
def test_parse_rule(text: str, rule: DeviceRule) -> None:
    assert parse_rule(text) == rule
    assert parse_rule(str(rule)) == rule


@pytest.mark.parametrize(
    "text", ["c 1:3", "x 1:3 rwm", "c 1-3 rwm", "c a:3 rwm", "c 1:3 rwx", "c 1:3 ", "b 1:3:4 r"]
)
def test_bad_rules_are_refused_with_the_text(text: str) -> None:
    with pytest.raises(DeviceRuleError, match="invalid"):
        parse_rule(text)


def test_workload_rules_defaults_plus_devices_or_everything_when_privileged() -> None:
    sda = DeviceRule("b", 8, 0, "rwm")
    rules = workload_rules([sda, sda, DEFAULT_RULES[2]])
    assert rules == (*DEFAULT_RULES, sda)
    assert workload_rules([sda], privileged=True) == (ALLOW_ALL,)
    # The defaults: mknod anything, read/write only the harmless nodes, never a disk.
    assert "b *:* m" in map(str, DEFAULT_RULES) and not any(
        r.kind == "b" and "r" in r.access for r in DEFAULT_RULES
    )


def test_rules_for_spec_adds_devices_and_privileged_allows_all() -> None:
    sda = Device("/dev/sda", "/dev/xvda", "rw", "b", 8, 0)
    spec = WorkloadSpec(name="w", argv=["x"], mounts=MountOpts(devices=(sda,)))
    assert rules_for_spec(spec) == (*DEFAULT_RULES, DeviceRule("b", 8, 0, "rw"))
    assert rules_for_spec(WorkloadSpec(name="w", argv=["x"])) == DEFAULT_RULES
    privileged = WorkloadSpec(name="w", argv=["x"], security=SecurityOpts(privileged=True))
    assert rules_for_spec(privileged) == (ALLOW_ALL,)


def test_load_refuses_bytes_that_are_not_instructions() -> None:
    with pytest.raises(ValueError, match="8-byte"):
        bpf.load_device_program(b"\x00" * 12)
    with pytest.raises(ValueError, match="8-byte"):
        bpf.load_device_program(b"")


def test_program_bytes_is_the_assembled_program_made_once() -> None:
    rules = devices.workload_rules([devices.DeviceRule("b", 8, 0, "r")])
    code = devices.program_bytes(rules)
    assert code == devices.assemble(devices.build_program(rules))
    assert devices.program_bytes(rules) is code  # memoized: not assembled again
    assert devices.program_bytes(devices.DEFAULT_RULES) != code
    bad = (devices.DeviceRule("x", None, None, "r"),)
    with pytest.raises(devices.DeviceRuleError):
        devices.program_bytes(bad)
