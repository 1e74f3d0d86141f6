"""Human units for limits: bytes ("512M") and CPUs ("1.5"), and the cgroup file values they become.

Bytes: a plain number is bytes; K, M, G, T, P (any case, optionally followed by "B") and the
IEC forms KiB, MiB, GiB, TiB, PiB (also Kubernetes' Ki, Mi, Gi, Ti, Pi) are powers of 1024, as in
systemd's MemoryMax= and docker's --memory. "kB", "MB", "GB", "TB" are refused as ambiguous (SI
would make them powers of 1000; some tools use 1024): the error says to write "512M" or "512MiB".
Fractions are allowed with a unit ("1.5G") and rounded down to a whole byte.
"max", "infinity" and "unlimited" mean no limit (UNLIMITED).

CPUs: cores as a decimal ("0.5", "2"), a percentage of one core ("150%" = 1.5 cores, the scale
of docker stats' CPU %), or Kubernetes millicores ("500m" = 0.5). "max" means no limit.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation
from typing import Final, TypeAlias

UNLIMITED: Final = math.inf
# An int, or UNLIMITED for "max".
Limit: TypeAlias = int | float

_UNLIMITED_WORDS = frozenset({"max", "infinity", "unlimited"})
_POWERS = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4, "p": 5}
_BYTES_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*([A-Za-z]*)\s*$")
_BYTES_EXAMPLE = 'e.g. "512M", "512MiB", "1.5G", "4096" or "max"'
_CPUS_EXAMPLE = 'e.g. "0.5", "2", "150%", "500m" or "max"'

# cpu.max bounds enforced by the kernel (kernel/sched/core.c: min quota/period 1 ms, max period 1 s)
MIN_QUOTA_USEC = 1000
MIN_PERIOD_USEC = 1000
MAX_PERIOD_USEC = 1_000_000


def _unit_power(unit: str, value: object) -> int:
    u = unit.lower()
    if u in ("", "b"):
        return 0
    if len(u) == 2 and u[1] == "b" and u[0] in _POWERS:
        raise ValueError(
            f"ambiguous memory size {value!r}: {unit!r} can mean powers of 1000 or 1024; "
            f'write "{u[0].upper()}" or "{u[0].upper()}iB" (powers of 1024), {_BYTES_EXAMPLE}'
        )
    if u[1:] in ("", "i", "ib") and u[0] in _POWERS:
        return _POWERS[u[0]]
    raise ValueError(f"unknown unit {unit!r} in memory size {value!r}: {_BYTES_EXAMPLE}")


def parse_bytes(value: str | int) -> Limit:
    """Bytes from a human size; UNLIMITED for "max". ValueError quoting the value otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"memory size {value!r} is a boolean, not a size: {_BYTES_EXAMPLE}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"memory size {value!r} is negative: {_BYTES_EXAMPLE}")
        return value
    if isinstance(value, float):
        if math.isinf(value) and value > 0:
            return UNLIMITED
        if value.is_integer() and value >= 0:
            return int(value)
        raise ValueError(f"memory size {value!r} is not a whole number of bytes: {_BYTES_EXAMPLE}")
    if not isinstance(value, str):
        raise ValueError(f"memory size {value!r} is not a string or number: {_BYTES_EXAMPLE}")
    if value.strip().lower() in _UNLIMITED_WORDS:
        return UNLIMITED
    m = _BYTES_RE.match(value)
    if m is None:
        raise ValueError(f"cannot read memory size {value!r}: {_BYTES_EXAMPLE}")
    number, unit = m.groups()
    power = _unit_power(unit, value)
    if power == 0 and "." in number:
        raise ValueError(
            f"memory size {value!r} has a fraction of a byte; use a unit: {_BYTES_EXAMPLE}"
        )
    try:
        amount = Decimal(number) * (1024**power)
    except InvalidOperation:  # pragma: no cover - the regex admits only decimal numbers
        raise ValueError(f"cannot read memory size {value!r}: {_BYTES_EXAMPLE}") from None
    return int(amount)


def format_bytes(n: Limit | None) -> str:
    """Compact IEC text that parse_bytes reads back: "512 MiB", "1.5 GiB", "4096 B", "max"."""
    if n is None:
        return "-"
    if isinstance(n, float):
        if math.isinf(n):
            return "max"
        n = int(n)
    if n < 0:
        return "-" + format_bytes(-n)
    for unit, power in (("PiB", 5), ("TiB", 4), ("GiB", 3), ("MiB", 2), ("KiB", 1)):
        scale = 1024**power
        if n >= scale:
            if n % scale == 0:
                return f"{n // scale} {unit}"
            # one decimal below 100, whole units above; rounded down so it never overstates
            # (integer division: a float n * 10 / scale rounds up near 2**53 and above)
            shown = (n * 10 // scale) / 10 if n < 100 * scale else n // scale
            return f"{shown:g} {unit}"
    return f"{n} B"


def parse_cpus(value: str | float) -> float:
    """Cores from "0.5", "2", "150%" (= 1.5), "500m" (= 0.5); UNLIMITED for "max"."""
    if isinstance(value, bool):
        raise ValueError(f"CPU amount {value!r} is a boolean: {_CPUS_EXAMPLE}")
    if isinstance(value, int | float):
        cores = float(value)
    elif isinstance(value, str):
        text = value.strip().lower()
        if text in _UNLIMITED_WORDS:
            return UNLIMITED
        scale = 1.0
        if text.endswith("%"):
            text, scale = text[:-1].strip(), 0.01
        elif text.endswith("m"):
            text, scale = text[:-1].strip(), 0.001
        try:
            cores = float(Decimal(text)) * scale
        except (InvalidOperation, ValueError):  # ValueError: Decimal("sNaN") to float
            raise ValueError(f"cannot read CPU amount {value!r}: {_CPUS_EXAMPLE}") from None
    else:
        raise ValueError(f"CPU amount {value!r} is not a string or number: {_CPUS_EXAMPLE}")
    if math.isnan(cores) or cores <= 0:
        raise ValueError(f"CPU amount {value!r} must be more than 0: {_CPUS_EXAMPLE}")
    if math.isinf(cores):
        return UNLIMITED
    return cores


def cpu_max_value(cores: float | None, period_usec: int = 100000) -> str:
    """The cpu.max line for a CPU limit: "50000 100000" for 0.5 cores, "max 100000" for None."""
    if isinstance(period_usec, bool) or not isinstance(period_usec, int):
        raise ValueError(f"cpu.max period {period_usec!r} must be whole microseconds, e.g. 100000")
    if not MIN_PERIOD_USEC <= period_usec <= MAX_PERIOD_USEC:
        raise ValueError(
            f"cpu.max period {period_usec!r} must be between {MIN_PERIOD_USEC} and "
            f"{MAX_PERIOD_USEC} microseconds, e.g. 100000"
        )
    if cores is None or (isinstance(cores, float) and math.isinf(cores) and cores > 0):
        return f"max {period_usec}"
    if isinstance(cores, bool) or not isinstance(cores, int | float) or not cores > 0:
        raise ValueError(f"CPU limit {cores!r} must be more than 0 cores: {_CPUS_EXAMPLE}")
    quota = round(cores * period_usec)
    if quota < MIN_QUOTA_USEC:
        raise ValueError(
            f"CPU limit {cores!r} is below the kernel's minimum quota of {MIN_QUOTA_USEC} us "
            f"per {period_usec} us period (at least {MIN_QUOTA_USEC / period_usec:g} cores)"
        )
    return f"{quota} {period_usec}"
