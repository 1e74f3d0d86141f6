"""The on-disk format: framed records in segment files, and samples as rows of integers.

A segment is a file of records; each record is a 24-byte header and a zstandard frame:

    magic "PSR1" | kind u8 | flags u8 | reserved u16 | length u32 | crc32 u32 | wall_us i64

``crc32`` covers the header's other fields and the compressed frame, so a torn or bit-flipped
record is detected before it is decompressed. ``flags`` bit 0 marks a keyframe. Segment names
carry their time range: ``samples-<first_us>.seg`` while written, renamed to
``samples-<first_us>-<last_us>.seg`` when closed; readers find a time by name, then by headers.

A sample becomes four integer rows ("parts"), so consecutive ticks can be delta-encoded:
F (read every tick), S (slow cadence), M (memory.stat, in the key order of the keyframe group),
IO (io.stat devices, variable length). None and "max" become sentinels no kernel value reaches;
PSI averages are kept x100 (the kernel prints two decimals), times in microseconds relative to
the keyframe's tick (``base``), wall clock as an offset from the monotonic clock.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from operator import attrgetter

from cgroupfs.types import (
    UNLIMITED,
    CgroupEvents,
    CgroupStat,
    CpuMax,
    CpuStat,
    IoDeviceStat,
    IoStat,
    MemoryEvents,
    MemoryStat,
    Pressure,
    PressureLine,
)
from collectors.sample import CgroupSample

MAGIC = b"PSR1"
HEADER = struct.Struct("<4sBBHIIq")
HEADER_SIZE = HEADER.size  # 24
MAX_FRAME = 256 * 1024 * 1024  # a length beyond this is corruption, not a record

KIND_SAMPLES = 1
KIND_EVENT = 2
FLAG_KEYFRAME = 1

NONE = -(2**62)  # None
INF = NONE + 1  # the kernel's "max"


class FormatError(Exception):
    """A record that fails its checks (bad magic, length or checksum, undecodable payload)."""


@dataclass(frozen=True, slots=True)
class RecordHeader:
    kind: int
    flags: int
    length: int
    crc: int
    wall_us: int

    @property
    def keyframe(self) -> bool:
        return bool(self.flags & FLAG_KEYFRAME)


def _crc(kind: int, flags: int, length: int, wall_us: int, frame: bytes) -> int:
    head = struct.pack("<BBIq", kind, flags, length, wall_us)
    return zlib.crc32(frame, zlib.crc32(head))


def frame_record(kind: int, flags: int, wall_us: int, frame: bytes) -> bytes:
    crc = _crc(kind, flags, len(frame), wall_us, frame)
    return HEADER.pack(MAGIC, kind, flags, 0, len(frame), crc, wall_us) + frame


def parse_header(data: bytes) -> RecordHeader:
    if len(data) < HEADER_SIZE:
        raise FormatError("truncated header")
    magic, kind, flags, _res, length, crc, wall_us = HEADER.unpack_from(data)
    if magic != MAGIC:
        raise FormatError("bad magic")
    if length > MAX_FRAME:
        raise FormatError(f"implausible length {length}")
    return RecordHeader(kind, flags, length, crc, wall_us)


def check(h: RecordHeader, frame: bytes) -> None:
    if len(frame) != h.length:
        raise FormatError("truncated record")
    if _crc(h.kind, h.flags, h.length, h.wall_us, frame) != h.crc:
        raise FormatError("checksum mismatch")


# --- segment names ---------------------------------------------------------------------------
SUFFIX = ".seg"


@dataclass(frozen=True, slots=True)
class SegmentName:
    stream: str  # "samples" or "events"
    first_us: int
    last_us: int | None  # None: still open (or left open by a crash)

    @property
    def name(self) -> str:
        tail = "" if self.last_us is None else f"-{self.last_us}"
        return f"{self.stream}-{self.first_us}{tail}{SUFFIX}"


def parse_segment_name(name: str) -> SegmentName | None:
    if not name.endswith(SUFFIX):
        return None
    stream, _, rest = name[: -len(SUFFIX)].partition("-")
    first, _, last = rest.partition("-")
    if not stream or not first.isdigit() or (last and not last.isdigit()):
        return None
    return SegmentName(stream, int(first), int(last) if last else None)


# --- integers <-> bytes ----------------------------------------------------------------------
def pack_ints(values: Sequence[int]) -> bytes:
    """int64 little-endian, byte-shuffled (all first bytes, then all second bytes, ...): small
    deltas leave long runs of zero bytes that zstandard then stores almost for free."""
    raw = struct.pack(f"<{len(values)}q", *values)
    return b"".join(raw[i::8] for i in range(8))


def unpack_ints(data: bytes) -> list[int]:
    n = len(data) // 8
    if n * 8 != len(data):
        raise FormatError("integer block of odd size")
    raw = bytearray(len(data))
    for i in range(8):
        raw[i::8] = data[i * n : (i + 1) * n]
    return list(struct.unpack(f"<{n}q", raw))


# --- sample <-> rows -------------------------------------------------------------------------
def _i(v: int | None) -> int:
    return NONE if v is None else v


def _lim(v: float | int | None) -> int:
    if v is None:
        return NONE
    return INF if v == UNLIMITED else int(v)


def _o(v: int) -> int | None:
    return None if v == NONE else v


def _olim(v: int) -> int | float | None:
    if v == NONE:
        return None
    return UNLIMITED if v == INF else v


def _bool(v: bool | None) -> int:
    return NONE if v is None else int(v)


def _obool(v: int) -> bool | None:
    return None if v == NONE else bool(v)


def _us(t: float | None, base: float) -> int:
    return NONE if t is None else round((t - base) * 1e6)


def _ous(v: int, base: float) -> float | None:
    return None if v == NONE else base + v / 1e6


_CPU = ("usage_usec", "user_usec", "system_usec", "nr_periods", "nr_throttled",
        "throttled_usec", "nr_bursts", "burst_usec", "nice_usec")  # fmt: skip
_EV = ("low", "high", "max", "oom", "oom_kill", "oom_group_kill")
_NONE_CPU = (NONE,) * len(_CPU)
_NONE_EV = (NONE,) * len(_EV)
_NONE_LINE = (NONE,) * 4


_get_cpu = attrgetter(*_CPU)
_get_evs = attrgetter(*_EV)


def _nones(t: tuple[int | None, ...]) -> tuple[int, ...]:
    if None not in t:
        return t  # type: ignore[return-value]
    return tuple(NONE if v is None else v for v in t)


def _cpu(c: CpuStat | None) -> tuple[int, ...]:
    return _NONE_CPU if c is None else _nones(_get_cpu(c))


def _ev(e: MemoryEvents | None) -> tuple[int, ...]:
    return _NONE_EV if e is None else _nones(_get_evs(e))


def _line(p: PressureLine | None) -> tuple[int, ...]:
    if p is None:
        return _NONE_LINE
    return (round(p.avg10 * 100), round(p.avg60 * 100), round(p.avg300 * 100), p.total_usec)


def _psi(p: Pressure | None) -> tuple[int, ...]:
    if p is None:
        return (0, *_NONE_LINE, *_NONE_LINE)
    return (1, *_line(p.some), *_line(p.full))


# F: identity, times, and what is read every tick. Widths are fixed (the decoder checks them).
F_WIDTH = 3 + len(_CPU) + 3 + len(_EV) + 3 * 9 + 4  # 52
# S: slow-cadence values and the io rates of the last io.stat read.
S_WIDTH = 12 + 1 + len(_EV) + 2 + 4  # 25
# E: the store entry's state around the sample.
E_WIDTH = 3


@dataclass(frozen=True, slots=True)
class Base:
    """The time origin of a keyframe group: its first tick's clocks."""

    mono: float
    wall: float


def f_row(s: CgroupSample, b: Base) -> tuple[int, ...]:
    ev = s.events
    return (
        s.inode,
        _us(s.mono, b.mono),
        round((s.wall - s.mono - (b.wall - b.mono)) * 1e6),  # clock offset drift: ~0
        *_cpu(s.cpu),
        _i(s.memory_current),
        _i(s.swap_current),
        _i(s.pids_current),
        *_ev(s.memory_events),
        *_psi(s.cpu_pressure),
        *_psi(s.memory_pressure),
        *_psi(s.io_pressure),
        NONE if ev is None else _bool(ev.populated),
        NONE if ev is None else _bool(ev.frozen),
        0 if ev is None else 1,
        int(s.final),
    )


def s_row(s: CgroupSample, io_rates: Sequence[float | None], b: Base) -> tuple[int, ...]:
    """``io_rates``: read/write bytes/s and IOPS of the last io.stat read (kept, not re-derived:
    they span two slow-cadence reads that a replay may not both decode)."""
    cm, st, loc = s.cpu_max, s.stat, s.memory_events_local
    rb, wb, ri, wi = io_rates
    return (
        NONE if cm is None else _lim(cm.quota_usec),
        NONE if cm is None else cm.period_usec,
        _i(s.cpu_weight),
        _i(s.memory_peak),
        _lim(s.memory_max),
        _lim(s.memory_high),
        _i(s.memory_low),
        _i(s.memory_min),
        _lim(s.swap_max),
        _lim(s.pids_max),
        NONE if st is None else _i(st.nr_descendants),
        NONE if st is None else _i(st.nr_dying_descendants),
        0 if loc is None else 1,
        *_ev(loc),
        _us(s.memory_stat_mono, b.mono),
        _us(s.io_mono, b.mono),
        NONE if rb is None else round(rb),
        NONE if wb is None else round(wb),
        NONE if ri is None else round(ri * 100),
        NONE if wi is None else round(wi * 100),
    )


def io_rates_from(s: Sequence[int]) -> tuple[float | None, ...]:
    rb, wb, ri, wi = s[S_WIDTH - 4 :]
    return (
        None if rb == NONE else float(rb),
        None if wb == NONE else float(wb),
        None if ri == NONE else ri / 100,
        None if wi == NONE else wi / 100,
    )


def m_row(ms: MemoryStat | None, keys: dict[str, int]) -> tuple[int, ...]:
    """memory.stat's raw keys in the group's key order (new keys are appended to ``keys``)."""
    if ms is None:
        return ()
    for k in ms.raw:
        if k not in keys:
            keys[k] = len(keys)
    out = [NONE] * len(keys)
    for k, v in ms.raw.items():
        out[keys[k]] = v
    return tuple(out)


def io_row(io: IoStat | None) -> tuple[int, ...]:
    if io is None:
        return ()
    out: list[int] = [1]  # present, even with no devices
    for d in io.devices:
        out += (d.major, d.minor, d.rbytes, d.wbytes, d.rios, d.wios, d.dbytes, d.dios)
    return tuple(out)


def _get_ev(row: Sequence[int], i: int) -> MemoryEvents:
    return MemoryEvents(*(_o(v) for v in row[i : i + len(_EV)]))


def _get_line(row: Sequence[int], i: int) -> PressureLine | None:
    if row[i] == NONE:
        return None
    return PressureLine(row[i] / 100, row[i + 1] / 100, row[i + 2] / 100, row[i + 3])


def _get_psi(row: Sequence[int], i: int) -> Pressure | None:
    if not row[i]:
        return None
    return Pressure(_get_line(row, i + 1), _get_line(row, i + 5))


def memory_stat_from(m: Sequence[int], keys: Sequence[str]) -> MemoryStat | None:
    raw = {keys[i]: v for i, v in enumerate(m) if v != NONE}
    if not raw:  # no memory.stat (rows are padded with NONE when keys are added)
        return None
    g = raw.get
    return MemoryStat(
        g("anon"), g("file"), g("kernel"), g("kernel_stack"), g("slab"), g("sock"),
        g("shmem"), g("file_mapped"), g("file_dirty"), g("file_writeback"),
        g("inactive_anon"), g("active_anon"), g("inactive_file"), g("active_file"),
        g("pgfault"), g("pgmajfault"), raw,
    )  # fmt: skip


def io_from(row: Sequence[int]) -> IoStat | None:
    if not row:
        return None
    devs = tuple(IoDeviceStat(*row[i : i + 8]) for i in range(1, len(row) - 7, 8))
    return IoStat(devs)


def cpu_sample(path: str, f: Sequence[int], b: Base) -> CgroupSample:
    """Only identity, times and cpu.stat of an F row: a previous read for CPU rates."""
    mono = b.mono + f[1] / 1e6
    c = tuple(f[3:12])
    cpu = None if c == _NONE_CPU else CpuStat(*(_o(v) for v in c))
    return CgroupSample(path, f[0], mono, mono + (b.wall - b.mono) + f[2] / 1e6, cpu=cpu)


def build_sample(
    path: str,
    f: Sequence[int],
    s: Sequence[int],
    m: Sequence[int],
    io: Sequence[int],
    keys: Sequence[str],
    b: Base,
) -> CgroupSample:
    """The inverse of f_row/s_row/m_row/io_row (PSI averages and times rounded as stored)."""
    mono = b.mono + f[1] / 1e6
    wall = mono + (b.wall - b.mono) + f[2] / 1e6
    i = 3
    c = tuple(f[i : i + 9])
    cpu = None if c == _NONE_CPU else CpuStat(*(_o(v) for v in c))
    i += 9
    mem_cur, swap_cur, pids_cur = _o(f[i]), _o(f[i + 1]), _o(f[i + 2])
    i += 3
    mev = None if tuple(f[i : i + 6]) == _NONE_EV else _get_ev(f, i)
    i += 6
    cpu_p, mem_p, io_p = _get_psi(f, i), _get_psi(f, i + 9), _get_psi(f, i + 18)
    i += 27
    events = CgroupEvents(_obool(f[i]), _obool(f[i + 1])) if f[i + 2] else None
    final = bool(f[i + 3])
    quota = _olim(s[0])
    cm = None if s[1] == NONE else CpuMax(UNLIMITED if quota is None else quota, s[1])
    stat = None
    if s[10] != NONE or s[11] != NONE:
        stat = CgroupStat(_o(s[10]), _o(s[11]))
    loc = _get_ev(s, 13) if s[12] else None
    j = 13 + len(_EV)
    return CgroupSample(
        path=path,
        inode=f[0],
        mono=mono,
        wall=wall,
        cpu=cpu,
        cpu_max=cm,
        cpu_weight=_o(s[2]),
        memory_current=mem_cur,
        memory_peak=_o(s[3]),
        memory_max=_olim(s[4]),
        memory_high=_olim(s[5]),
        memory_low=_o(s[6]),
        memory_min=_o(s[7]),
        swap_current=swap_cur,
        swap_max=_olim(s[8]),
        memory_events=mev,
        memory_events_local=loc,
        memory_stat=memory_stat_from(m, keys),
        memory_stat_mono=_ous(s[j], b.mono),
        pids_current=pids_cur,
        pids_max=_olim(s[9]),
        io=io_from(io),
        io_mono=_ous(s[j + 1], b.mono),
        cpu_pressure=cpu_p,
        memory_pressure=mem_p,
        io_pressure=io_p,
        events=events,
        stat=stat,
        final=final,
    )
