"""Human formatting of row values, with docker's units; ``None`` prints as "-"."""

from __future__ import annotations

from agent.statsview.rows import LimitValue

NA = "-"
_BINARY = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")
_DECIMAL = ("B", "kB", "MB", "GB", "TB", "PB")


def _custom(value: float, base: float, units: tuple[str, ...], precision: int) -> str:
    i = 0
    while value >= base and i < len(units) - 1:
        value /= base
        i += 1
    return f"{value:.{precision}g}{units[i]}"


def bytes_binary(v: float | None) -> str:
    """docker's units.BytesSize ("%.4g" with KiB/MiB/GiB): MEM USAGE / LIMIT."""
    return NA if v is None else _custom(float(v), 1024.0, _BINARY, 4)


def bytes_decimal(v: float | None) -> str:
    """docker's units.HumanSizeWithPrecision(v, 3) (kB/MB/GB): BLOCK I/O."""
    return NA if v is None else _custom(float(v), 1000.0, _DECIMAL, 3)


def rate(v: float | None) -> str:
    return NA if v is None else bytes_decimal(v) + "/s"


def percent(v: float | None) -> str:
    """docker prints CPU % and MEM % as "%.2f%%"."""
    return NA if v is None else f"{v:.2f}%"


def percent_short(v: float | None) -> str:
    """Narrow variant for the TUI's columns."""
    if v is None:
        return NA
    return f"{v:.0f}%" if v >= 1000 else f"{v:.1f}%"


def cores(v: float | None) -> str:
    return NA if v is None else f"{v:.2f}"


def integer(v: int | None) -> str:
    return NA if v is None else str(v)


def limit_bytes(v: LimitValue) -> str:
    if v is None:
        return NA
    return "max" if v == "max" else bytes_binary(int(v))


def limit_int(v: LimitValue) -> str:
    if v is None:
        return NA
    return "max" if v == "max" else str(v)


def usage_limit(usage: int | None, limit: int | None) -> str:
    """docker's MEM USAGE / LIMIT cell."""
    return f"{bytes_binary(usage)} / {bytes_binary(limit)}"


def block_io(read: int | None, write: int | None) -> str:
    """docker's BLOCK I/O cell: cumulative bytes read / written (and NET I/O's: received / sent)."""
    return f"{bytes_decimal(read)} / {bytes_decimal(write)}"
