"""The values a user gives a workload, parsed without the runtime's heavy modules (ctypes,
the seccomp compiler, the mount code): the CLI checks its flags with these at start."""

from __future__ import annotations

import math
from dataclasses import dataclass

from cgroupfs import units
from workloads.runtime.errors import SpecError
from workloads.runtime.names import NAME_RE as NAME_RE  # re-exported: the spec's values

# --userns: root inside is mapped to host ids BASE..BASE+SIZE-1 (uid and gid alike). 100000 is
# the first range shadow-utils hands out in /etc/subuid, and 65536 ids cover every id a
# distribution image uses (nobody is 65534).
USERNS_DEFAULT_BASE = 100_000
USERNS_SIZE = 65_536
USERNS_MAX_ID = 4_294_967_294  # (uid_t)-1 is "no id" to the kernel
USERNS_MAX_BASE = USERNS_MAX_ID - USERNS_SIZE + 1


@dataclass(frozen=True)
class Limits:
    memory_bytes: int | None = None
    cpus: float | None = None
    pids: int | None = None


def parse_limits(
    memory: str | int | None = None,
    cpus: str | float | None = None,
    pids: str | int | None = None,
) -> Limits:
    """Limits from user strings ("256M", "0.5", "100"); "max" means no limit."""
    mem_b: int | None = None
    cores: float | None = None
    npids: int | None = None
    try:
        if memory is not None:
            m = units.parse_bytes(memory)
            mem_b = None if isinstance(m, float) else m
    except ValueError as e:
        raise SpecError(f"invalid --memory: {e}") from None
    try:
        if cpus is not None:
            c = units.parse_cpus(cpus)
            cores = None if math.isinf(c) else c
            units.cpu_max_value(cores)
    except ValueError as e:
        raise SpecError(f"invalid --cpus: {e}") from None
    if pids is not None:
        text = str(pids).strip()
        if text != "max":
            if not text.isdigit() or int(text) < 1:
                raise SpecError(f"invalid --pids {pids!r}: expected a positive integer or max")
            npids = int(text)
    return Limits(memory_bytes=mem_b, cpus=cores, pids=npids)


def parse_userns_base(value: object) -> int:
    """--userns-base: an integer (or its decimal string) such that the whole range is valid
    host ids and does not hold host root (0 inside must not be 0 outside)."""
    text = str(value).strip() if isinstance(value, (str, int)) else ""
    if isinstance(value, bool) or not text.isdigit():
        raise SpecError(
            f"invalid --userns-base {value!r}: expected an integer from 1 to {USERNS_MAX_BASE}"
        )
    base = int(text)
    if not 1 <= base <= USERNS_MAX_BASE:
        raise SpecError(
            f"invalid --userns-base {base}: the range {base}..{base + USERNS_SIZE - 1} must lie "
            f"within host ids 1..{USERNS_MAX_ID}"
        )
    return base
