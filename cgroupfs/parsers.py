"""Pure parsers of cgroup v2 interface files: bytes in, typed value out.

Contract shared by every parser here:
- ``parse_x(data, file="<kernel file name>")``; ``file`` only names the file in errors.
- Malformed input raises ``ParseError(file, message)`` and nothing else (no ValueError,
  IndexError or UnicodeDecodeError escapes).
- Unknown keys are ignored (new kernels add keys); a known key's value must be well formed.
  Missing keys become ``None`` in the dataclass.
- Duplicate keys: the LAST occurrence wins. The kernel never prints a key twice; choosing the
  cheap, order-defined rule keeps the hot path a single dict build.
- Numbers are plain ASCII digits (no sign, no ``_``); arbitrarily large values are accepted
  (Python ints), except past CPython's 4300-digit int-conversion limit, which is a ParseError.
- Whitespace around lines and blank lines are tolerated; a missing final newline is tolerated.
- ``max`` in limit files becomes ``types.UNLIMITED`` (math.inf).

Speed matters (thousands of files per tick), so flat "key value" files take a fast path: one
regex fullmatch over the whole buffer proves it has the kernel's exact shape, then one
``bytes.split()`` and ``map(int, ...)``. Anything else (tabs, blank lines, no final newline,
garbage) goes to the slow per-line path, which gives the same result or a precise error.
cpu.stat, the hottest file, first tries one regex of the kernels' exact layouts whose groups
are the values, and typed results are built by generated constructors (``_frozen_ctor``).
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable
from typing import Any, Final, TypeVar

from cgroupfs.errors import ParseError
from cgroupfs.types import (
    UNLIMITED,
    CgroupEvents,
    CgroupStat,
    CpuMax,
    CpuStat,
    IoDeviceStat,
    IoStat,
    Limit,
    MemoryEvents,
    MemoryStat,
    PidsEvents,
    Pressure,
    PressureLine,
)

__all__ = [
    "parse_cgroup_events",
    "parse_cgroup_stat",
    "parse_controllers",
    "parse_cpu_max",
    "parse_cpu_stat",
    "parse_cpu_weight",
    "parse_int",
    "parse_io_stat",
    "parse_limit",
    "parse_memory_events",
    "parse_memory_stat",
    "parse_pids_events",
    "parse_pressure",
    "parse_procs",
]

_MAX: Final = b"max"
_T = TypeVar("_T")


def _frozen_ctor(cls: type[_T]) -> Callable[..., _T]:
    """A positional constructor of the frozen slots dataclass ``cls``, ~4x cheaper than its
    __init__ (which sets every field through object.__setattr__: 1.05 us for CpuStat against
    0.25 us). The fields are stored on a plain object with the very same slots, which then
    becomes a ``cls`` by __class__ assignment, which CPython allows between classes of
    identical layout: same class, same values, still immutable. Generated from the field list;
    ``cls`` itself is returned where the interpreter refuses the assignment."""
    names = tuple(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]
    if getattr(cls, "__slots__", None) != names:
        return cls
    draft = type(f"_{cls.__name__}Draft", (), {"__slots__": names})
    body = "".join(f"    s.{n} = {n}\n" for n in names)
    head = f"def make({', '.join(names)}):\n    s = Draft()\n"
    src = f"{head}{body}    s.__class__ = Cls\n    return s\n"
    ns: dict[str, Any] = {"Draft": draft, "Cls": cls}
    exec(compile(src, f"<parsers {cls.__name__}>", "exec"), ns)
    make: Callable[..., _T] = ns["make"]
    probe = tuple(range(len(names)))
    try:
        if type(make(*probe)) is not cls or make(*probe) != cls(*probe):
            return cls
    except TypeError:
        return cls
    return make


def _show(raw: bytes, limit: int = 60) -> str:
    """A short, printable quote of offending input for error messages."""
    text = repr(raw[:limit])
    return text + ("..." if len(raw) > limit else "")


def _to_int(raw: bytes, file: str, what: str) -> int:
    """ASCII digits -> int; anything else (sign, '_', garbage, > 4300 digits) -> ParseError."""
    if not raw.isdigit():
        raise ParseError(file, f"{what}: expected a non-negative integer, got {_show(raw)}")
    try:
        return int(raw)
    except ValueError as e:  # only CPython's int_max_str_digits limit gets here
        raise ParseError(file, f"{what}: integer too long ({len(raw)} digits)") from e


def _nonblank_lines(data: bytes) -> list[bytes]:
    return [line for line in data.split(b"\n") if line.strip()]


def _pairs_slow(data: bytes, file: str, wanted: frozenset[str] | None) -> dict[str, int]:
    """Line-by-line "key value" parse. ``wanted`` None (memory.stat) keeps every key with an
    integer value; otherwise keys outside ``wanted`` are skipped without checking their value."""
    out: dict[str, int] = {}
    for no, line in enumerate(data.split(b"\n"), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2:
            raise ParseError(file, f"line {no}: expected 'key value', got {_show(line)}")
        raw_key, value = parts
        if not raw_key.isascii():
            if wanted is None:
                raise ParseError(file, f"line {no}: non-ASCII key {_show(raw_key)}")
            continue  # cannot be a key we want
        key = raw_key.decode("ascii")
        if wanted is not None and key not in wanted:
            continue
        if wanted is None and not value.isdigit():
            continue  # memory.stat: an unknown non-numeric key is ignored, like any unknown key
        out[key] = _to_int(value, file, f"line {no} ({key})")
    return out


# The kernel's exact shape of a flat keyed file: "key value\n" lines, single space, digits.
# One fullmatch over the whole buffer (not per line) proves every line holds exactly one pair
# and that the buffer is ASCII, so it can be decoded and split in one go.
_CANONICAL_PAIRS: Final = re.compile(rb"(?:[!-~]+ [0-9]+\n)*")


def _pairs(data: bytes, file: str, wanted: frozenset[str] | None) -> dict[str, int]:
    """Flat keyed file -> {key: int}, last duplicate wins (see module doc)."""
    if _CANONICAL_PAIRS.fullmatch(data):
        parts = data.decode("ascii").split()
        try:
            # strict=False: the regex guarantees an even count.
            return dict(zip(parts[0::2], map(int, parts[1::2]), strict=False))
        except ValueError:
            pass  # > 4300 digits: let the slow path name the line
    return _pairs_slow(data, file, wanted)


def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


def _fields(
    data: bytes, file: str, names: tuple[str, ...], keys: tuple[bytes, ...], wanted: frozenset[str]
) -> list[int | None]:
    """The values of ``names`` (None when missing) in a flat keyed file, last duplicate wins.
    The canonical path keeps the keys as bytes (``keys``: ``names`` encoded), skipping the
    decode and the str keys that ``_pairs`` builds."""
    if _CANONICAL_PAIRS.fullmatch(data):
        parts = data.split()
        try:
            return list(map(dict(zip(parts[0::2], map(int, parts[1::2]), strict=False)).get, keys))
        except ValueError:
            pass  # > 4300 digits: let the slow path name the line
    return list(map(_pairs_slow(data, file, wanted).get, names))


# Field order = constructor order, so values can be passed positionally via map(dict.get, ...).
_CPU_STAT: Final = _field_names(CpuStat)
_MEMORY_EVENTS: Final = _field_names(MemoryEvents)
_PIDS_EVENTS: Final = _field_names(PidsEvents)
_CGROUP_STAT: Final = _field_names(CgroupStat)
_CGROUP_EVENTS: Final = _field_names(CgroupEvents)
_CPU_STAT_SET: Final = frozenset(_CPU_STAT)
_MEMORY_EVENTS_SET: Final = frozenset(_MEMORY_EVENTS)
_PIDS_EVENTS_SET: Final = frozenset(_PIDS_EVENTS)
_CGROUP_STAT_SET: Final = frozenset(_CGROUP_STAT)
_CGROUP_EVENTS_SET: Final = frozenset(_CGROUP_EVENTS)
_CPU_STAT_B: Final = tuple(k.encode() for k in _CPU_STAT)
_MEMORY_EVENTS_B: Final = tuple(k.encode() for k in _MEMORY_EVENTS)
_PIDS_EVENTS_B: Final = tuple(k.encode() for k in _PIDS_EVENTS)
_CGROUP_STAT_B: Final = tuple(k.encode() for k in _CGROUP_STAT)
_CGROUP_EVENTS_B: Final = tuple(k.encode() for k in _CGROUP_EVENTS)
_new_cpu_stat: Final = _frozen_ctor(CpuStat)
_new_memory_events: Final = _frozen_ctor(MemoryEvents)
_new_pids_events: Final = _frozen_ctor(PidsEvents)
_new_cgroup_stat: Final = _frozen_ctor(CgroupStat)
_new_cgroup_events: Final = _frozen_ctor(CgroupEvents)
_new_pressure: Final = _frozen_ctor(Pressure)
_new_pressure_line: Final = _frozen_ctor(PressureLine)


_N: Final = rb"([0-9]+)\n"
# cpu.stat exactly as kernels 5.x-6.x print it: the base times, nice_usec (6.6+), core
# scheduling's forced idle time (CONFIG_SCHED_CORE; not a CpuStat field), then the cpu
# controller's bandwidth counters. One fullmatch yields every value: no split, no dict.
# Any other layout (a new key, a duplicate, other whitespace) takes the generic path.
_CPU_STAT_LAYOUT: Final = re.compile(
    rb"usage_usec " + _N + rb"user_usec " + _N + rb"system_usec " + _N
    + rb"(?:nice_usec " + _N + rb")?(?:core_sched\.force_idle_usec [0-9]+\n)?"
    + rb"(?:nr_periods " + _N + rb"nr_throttled " + _N + rb"throttled_usec " + _N
    + rb"(?:nr_bursts " + _N + rb"burst_usec " + _N + rb")?)?"
)  # fmt: skip


def parse_cpu_stat(data: bytes, file: str = "cpu.stat") -> CpuStat:
    m = _CPU_STAT_LAYOUT.fullmatch(data)
    if m is not None and len(data) < 4300:  # then no number reaches int()'s digit limit
        usage, user, system, nice, periods, throttled, thr_usec, bursts, burst_usec = [
            None if v is None else int(v) for v in m.groups()
        ]
        return _new_cpu_stat(
            usage, user, system, periods, throttled, thr_usec, bursts, burst_usec, nice
        )
    return _new_cpu_stat(*_fields(data, file, _CPU_STAT, _CPU_STAT_B, _CPU_STAT_SET))


def parse_memory_events(data: bytes, file: str = "memory.events") -> MemoryEvents:
    """memory.events and memory.events.local (same format)."""
    return _new_memory_events(
        *_fields(data, file, _MEMORY_EVENTS, _MEMORY_EVENTS_B, _MEMORY_EVENTS_SET)
    )


def parse_pids_events(data: bytes, file: str = "pids.events") -> PidsEvents:
    return _new_pids_events(*_fields(data, file, _PIDS_EVENTS, _PIDS_EVENTS_B, _PIDS_EVENTS_SET))


def parse_cgroup_stat(data: bytes, file: str = "cgroup.stat") -> CgroupStat:
    return _new_cgroup_stat(*_fields(data, file, _CGROUP_STAT, _CGROUP_STAT_B, _CGROUP_STAT_SET))


_FLAG: Final = {None: None, 0: False, 1: True}


def parse_cgroup_events(data: bytes, file: str = "cgroup.events") -> CgroupEvents:
    values = _fields(data, file, _CGROUP_EVENTS, _CGROUP_EVENTS_B, _CGROUP_EVENTS_SET)
    for key, value in zip(_CGROUP_EVENTS, values, strict=True):
        if value is not None and value > 1:
            raise ParseError(file, f"{key}: expected 0 or 1, got {value}")
    return _new_cgroup_events(*map(_FLAG.__getitem__, values))


def parse_memory_stat(data: bytes, file: str = "memory.stat") -> MemoryStat:
    """Named fields for what pystats uses; every integer-valued key in ``raw``."""
    raw = _pairs(data, file, None)
    g = raw.get
    return MemoryStat(
        g("anon"),
        g("file"),
        g("kernel"),
        g("kernel_stack"),
        g("slab"),
        g("sock"),
        g("shmem"),
        g("file_mapped"),
        g("file_dirty"),
        g("file_writeback"),
        g("inactive_anon"),
        g("active_anon"),
        g("inactive_file"),
        g("active_file"),
        g("pgfault"),
        g("pgmajfault"),
        raw,
    )


def _single(data: bytes, file: str) -> bytes:
    parts = data.split()
    if len(parts) != 1:
        raise ParseError(file, f"expected one value, got {_show(data)}")
    return parts[0]


def parse_int(data: bytes, file: str = "memory.current") -> int:
    """memory.current, memory.peak, memory.swap.current, pids.current."""
    return _to_int(_single(data, file), file, "value")


def parse_limit(data: bytes, file: str = "memory.max") -> Limit:
    """memory.max/high/low/min, memory.swap.max, pids.max: an int, or UNLIMITED for "max"."""
    value = _single(data, file)
    if value == _MAX:
        return UNLIMITED
    return _to_int(value, file, "limit")


def parse_cpu_weight(data: bytes, file: str = "cpu.weight") -> int:
    """cpu.weight: 1..10000 (the kernel refuses anything else)."""
    weight = _to_int(_single(data, file), file, "weight")
    if not 1 <= weight <= 10000:
        raise ParseError(file, f"weight {weight} outside 1..10000")
    return weight


def parse_cpu_max(data: bytes, file: str = "cpu.max") -> CpuMax:
    """cpu.max: "$QUOTA $PERIOD", quota "max" for unlimited."""
    parts = data.split()
    if len(parts) != 2:
        raise ParseError(file, f"expected '$QUOTA $PERIOD', got {_show(data)}")
    quota_raw, period_raw = parts
    quota: Limit = UNLIMITED if quota_raw == _MAX else _to_int(quota_raw, file, "quota")
    period = _to_int(period_raw, file, "period")
    if period == 0:
        raise ParseError(file, "period is 0")
    return CpuMax(quota_usec=quota, period_usec=period)


_CANONICAL_PIDS: Final = re.compile(rb"(?:[0-9]+\n)*")


def parse_procs(data: bytes, file: str = "cgroup.procs") -> tuple[int, ...]:
    """cgroup.procs / cgroup.threads: one PID per line. A PID listed twice (the kernel can,
    while a PID is reused) appears once, at its first position."""
    if _CANONICAL_PIDS.fullmatch(data):
        try:
            return tuple(dict.fromkeys(map(int, data.split())))
        except ValueError:
            pass
    pids: dict[int, None] = {}
    for no, line in enumerate(data.split(b"\n"), 1):
        stripped = line.strip()
        if stripped:
            pids[_to_int(stripped, file, f"line {no}")] = None
    return tuple(pids)


def parse_controllers(data: bytes, file: str = "cgroup.controllers") -> frozenset[str]:
    """cgroup.controllers / cgroup.subtree_control: space-separated names on one line."""
    if len(_nonblank_lines(data)) > 1:
        raise ParseError(file, f"expected one line, got {_show(data)}")
    names = data.split()
    for name in names:
        if not (name.isascii() and name.replace(b"_", b"").isalnum()):
            raise ParseError(file, f"bad controller name {_show(name)}")
    return frozenset(n.decode("ascii") for n in names)


_PSI_KEYS: Final = (b"avg10", b"avg60", b"avg300", b"total")


def _pressure_line(parts: list[bytes], file: str, no: int) -> PressureLine:
    values: dict[bytes, bytes] = {}
    for item in parts[1:]:
        key, sep, value = item.partition(b"=")
        if not sep:
            raise ParseError(file, f"line {no}: expected key=value, got {_show(item)}")
        values[key] = value
    try:
        avg10, avg60, avg300, total = (values[k] for k in _PSI_KEYS)
    except KeyError as e:
        raise ParseError(file, f"line {no}: missing {e.args[0].decode()}=") from e
    avgs = []
    for name, raw in (("avg10", avg10), ("avg60", avg60), ("avg300", avg300)):
        # The kernel prints "%lu.%02lu"; reject nan/inf/exponents/signs that float() would take.
        if not raw.replace(b".", b"", 1).isdigit():
            raise ParseError(file, f"line {no}: {name}: expected a decimal, got {_show(raw)}")
        avg = float(raw)
        if not math.isfinite(avg):
            raise ParseError(file, f"line {no}: {name}: value too large")
        avgs.append(avg)
    return PressureLine(avgs[0], avgs[1], avgs[2], _to_int(total, file, f"line {no}: total"))


_DEC: Final = rb"([0-9]+\.[0-9]+)"
# The kernel's exact PSI file: a "some" line and an optional "full" line.
_CANONICAL_PSI: Final = re.compile(
    rb"some avg10=%s avg60=%s avg300=%s total=([0-9]+)\n"
    rb"(?:full avg10=%s avg60=%s avg300=%s total=([0-9]+)\n)?" % ((_DEC,) * 6)
)


def parse_pressure(data: bytes, file: str = "cpu.pressure") -> Pressure:
    """cpu/memory/io.pressure: "some ..." and (usually) "full ..." lines; other lines ignored."""
    m = _CANONICAL_PSI.fullmatch(data)
    # Under 300 bytes no number can overflow float() (1.8e308) or reach int()'s digit limit.
    if m is not None and len(data) < 300:
        g = m.groups()
        line = _new_pressure_line
        some = line(float(g[0]), float(g[1]), float(g[2]), int(g[3]))
        if g[4] is None:
            return _new_pressure(some, None)
        return _new_pressure(some, line(float(g[4]), float(g[5]), float(g[6]), int(g[7])))
    return _parse_pressure_slow(data, file)


def _parse_pressure_slow(data: bytes, file: str) -> Pressure:
    some: PressureLine | None = None
    full: PressureLine | None = None
    for no, line in enumerate(data.split(b"\n"), 1):
        parts = line.split()
        if not parts:
            continue
        kind = parts[0]
        if kind == b"some":
            some = _pressure_line(parts, file, no)
        elif kind == b"full":
            full = _pressure_line(parts, file, no)
    return Pressure(some=some, full=full)


_IO_KEYS: Final = {n.encode(): n for n in ("rbytes", "wbytes", "rios", "wios", "dbytes", "dios")}


def _device(raw: bytes, file: str, no: int) -> tuple[int, int]:
    major, sep, minor = raw.partition(b":")
    if not sep:
        raise ParseError(file, f"line {no}: expected MAJ:MIN, got {_show(raw)}")
    return _to_int(major, file, f"line {no}: major"), _to_int(minor, file, f"line {no}: minor")


def parse_io_stat(data: bytes, file: str = "io.stat") -> IoStat:
    """io.stat: "MAJ:MIN rbytes=.. wbytes=.. rios=.. wios=.. dbytes=.. dios=.." per device.
    Other key=value items (io.cost, io.latency stats) are ignored; a device listed twice keeps
    its first position and its last values."""
    devices: dict[tuple[int, int], IoDeviceStat] = {}
    for no, line in enumerate(data.split(b"\n"), 1):
        parts = line.split()
        if not parts:
            continue
        major, minor = _device(parts[0], file, no)
        stats: dict[str, int] = {}
        for item in parts[1:]:
            key, sep, value = item.partition(b"=")
            if not sep:
                raise ParseError(file, f"line {no}: expected key=value, got {_show(item)}")
            name = _IO_KEYS.get(key)
            if name is not None:
                stats[name] = _to_int(value, file, f"line {no}: {name}")
        devices[(major, minor)] = IoDeviceStat(major, minor, **stats)
    return IoStat(devices=tuple(devices.values()))
