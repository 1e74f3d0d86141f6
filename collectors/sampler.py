"""One blocking call reads, parses and derives a whole tick: samples, rates, OOM events.

The collector runs ``Sampler.sample_batch`` through a single ``asyncio.to_thread`` per tick, so
thousands of small reads cost one thread hop (aiofiles would cost one per file: it serves for
following log files, not here). Reads go through cgroupfs' kept-fd reader (pread at offset 0).

Cadence, per cgroup:
- every tick: cpu.stat, memory.current, memory.swap.current, memory.events, pids.current, PSI
  (cpu/memory/io.pressure), cgroup.events;
- every ``slow_every`` ticks, staggered by path so the cost is spread: memory.stat, io.stat,
  cgroup.stat, memory.peak, cgroup.controllers and the limits (cpu.max, cpu.weight,
  memory.max/high/low/min, memory.swap.max, pids.max). The root's memory.stat (an expensive
  rstat flush) is never read more often than every 10 ticks. A new cgroup reads everything at
  once;
- memory.events.local: when first seen and whenever memory.events' oom_kill moves (OOM events);
- idle cgroups (cgroup.events says populated 0: nothing in the subtree can use CPU) are read in
  full every ``idle_every`` ticks only; their store entry shows ``stale_ticks`` meanwhile.
Files of controllers not in a cgroup's cgroup.controllers (hybrid host: all of them) are not
probed; other missing files are re-probed every 6th slow read. Their fields stay None, never
zero. Parsed values are reused when a file's bytes did not change (and shared between cgroups
whose files repeat the same bytes), and a cgroup whose files all repeat keeps its rates object.
"""

from __future__ import annotations

import errno as errno_
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields, replace
from typing import Any, Protocol

from cgroupfs import parsers as p
from cgroupfs.errors import CgroupGone, ParseError
from cgroupfs.types import CgroupEvents
from collectors.oom import KmsgVictims, OomTracker
from collectors.rates import HostInfo, compute_rates
from collectors.sample import CgroupRates, CgroupSample, OomEvent

ROOT_SLOW_MIN = 10
SHARED_MAX = 50_000  # distinct repeated file contents kept for sharing (then start over)
_Cached = tuple[bytes, Any, bool]  # (content, parsed value, shared between cgroups)


class Reader(Protocol):
    def read(self, rel: str, filename: str, inode: int) -> bytes | None: ...
    def read_files(
        self, rel: str, filenames: tuple[str, ...], inode: int
    ) -> list[bytes | None]: ...
    def forget(self, rel: str) -> None: ...


Parser = Callable[[bytes, str], Any]

# (file, parser, CgroupSample field), read every tick.
FAST: tuple[tuple[str, Parser, str], ...] = (
    ("cpu.stat", p.parse_cpu_stat, "cpu"),
    ("memory.current", p.parse_int, "memory_current"),
    ("memory.swap.current", p.parse_int, "swap_current"),
    ("memory.events", p.parse_memory_events, "memory_events"),
    ("pids.current", p.parse_int, "pids_current"),
    ("cpu.pressure", p.parse_pressure, "cpu_pressure"),
    ("memory.pressure", p.parse_pressure, "memory_pressure"),
    ("io.pressure", p.parse_pressure, "io_pressure"),
    ("cgroup.events", p.parse_cgroup_events, "events"),
)
# Read on the slow cadence; the last value is carried in every sample.
SLOW: tuple[tuple[str, Parser, str], ...] = (
    ("cpu.max", p.parse_cpu_max, "cpu_max"),
    ("cpu.weight", p.parse_cpu_weight, "cpu_weight"),
    ("memory.max", p.parse_limit, "memory_max"),
    ("memory.high", p.parse_limit, "memory_high"),
    ("memory.low", p.parse_int, "memory_low"),
    ("memory.min", p.parse_int, "memory_min"),
    ("memory.peak", p.parse_int, "memory_peak"),  # a high-water mark: slow cadence loses nothing
    ("memory.swap.max", p.parse_limit, "swap_max"),
    ("pids.max", p.parse_limit, "pids_max"),
    ("cgroup.stat", p.parse_cgroup_stat, "stat"),
)
EXPENSIVE: tuple[tuple[str, Parser, str], ...] = (
    ("memory.stat", p.parse_memory_stat, "memory_stat"),
    ("io.stat", p.parse_io_stat, "io"),
)
LOCAL_EVENTS = "memory.events.local"
# Files that exist without their controller (cpu.stat and PSI are core files in cgroup v2).
CORE = frozenset({"cpu.stat", "cpu.pressure", "memory.pressure", "io.pressure"})
CONTROLLED = frozenset({"cpu", "memory", "io", "pids"})
ABSENT_REPROBE = 6  # files missing despite their controller: re-probed every 6th slow read


def controller_of(name: str) -> str | None:
    """The controller whose files include ``name`` (None: exists in every cgroup)."""
    if name in CORE:
        return None
    c = name.split(".", 1)[0]
    return c if c in CONTROLLED else None


# CgroupSample is a frozen slots dataclass: its __init__ sets 31 fields through
# object.__setattr__ (~3 us, and 8-19 us measured under load). Samples are built instead as a
# _Draft, a plain class with the very same slots (so the same memory layout), whose attributes
# are set by ordinary stores (~20 instructions each), and then become a CgroupSample by
# __class__ assignment, which CPython allows between classes of identical layout: same class,
# same values, immutable afterwards, ~0.5 us. The code is generated from the field list so the
# two cannot drift apart; if the interpreter refuses the assignment, the slot setters are used.
_FIELDS = [f.name for f in fields(CgroupSample)]
_IDX = {n: i for i, n in enumerate(_FIELDS)}
_SETTERS = [CgroupSample.__dict__[n].__set__ for n in _FIELDS]
_NEW = object.__new__
I_MONO, I_WALL, I_FINAL = _IDX["mono"], _IDX["wall"], _IDX["final"]
_SET_FINAL = _SETTERS[I_FINAL]
I_EVENTS, I_MEMEV, I_LOCAL = _IDX["events"], _IDX["memory_events"], _IDX["memory_events_local"]
_FAST_I = tuple((name, parser, _IDX[fld]) for name, parser, fld in FAST)
_SLOW_I = tuple((name, parser, _IDX[fld]) for name, parser, fld in SLOW)
_EXPENSIVE_I = tuple(
    (name, parser, _IDX[fld], _IDX[fld + "_mono"]) for name, parser, fld in EXPENSIVE
)


_CONTROLLED_FILES = tuple(
    (n, c)
    for n in (
        *(f[0] for f in FAST),
        *(f[0] for f in SLOW),
        *(f[0] for f in EXPENSIVE),
        LOCAL_EVENTS,
    )
    if (c := controller_of(n)) is not None
)


def _build_by_setters(*row: Any) -> CgroupSample:
    s: CgroupSample = _NEW(CgroupSample)
    for setter, v in zip(_SETTERS, row, strict=True):
        setter(s, v)
    return s


def _draft_builder() -> Callable[..., CgroupSample]:
    """build(*row): the sample of a row of values in field order (see above)."""
    draft = type("_Draft", (), {"__slots__": CgroupSample.__slots__})
    body = "".join(f"    s.{n} = {n}\n" for n in _FIELDS)
    head = f"def build({', '.join(_FIELDS)}):\n    s = Draft()\n"
    src = f"{head}{body}    s.__class__ = Sample\n    return s\n"
    ns: dict[str, Any] = {"Draft": draft, "Sample": CgroupSample}
    exec(compile(src, "<sampler._build>", "exec"), ns)
    build: Callable[..., CgroupSample] = ns["build"]
    probe = [None] * len(_FIELDS)
    try:
        if type(build(*probe)) is not CgroupSample:
            return _build_by_setters
    except TypeError:  # an interpreter that refuses the __class__ assignment
        return _build_by_setters
    return build


_build = _draft_builder()


class _State:
    """What the sampler remembers about one (cgroup, inode)."""

    __slots__ = (
        "absent",
        "cache",
        "ctrl",
        "fast",
        "fast_names",
        "inode",
        "last",
        "last_full",
        "phase",
        "populated",
        "rates",
        "reads",
        "rel",
        "row",
        "same_streak",
        "sample",
        "slow_reads",
    )

    def __init__(self, rel: str, inode: int, slow_every: int) -> None:
        self.rel = rel
        self.inode = inode
        self.phase = zlib.crc32(rel.encode()) % max(1, slow_every)
        self.absent: set[str] = set()  # files found missing (re-probed on the slow cadence)
        self.cache: dict[str, _Cached] = {}  # file -> (bytes, parsed, shared)
        self.ctrl: frozenset[str] | None = None  # cgroup.controllers at the last slow read
        self.fast = _FAST_I  # the every-tick files this cgroup has
        self.fast_names = tuple(f[0] for f in _FAST_I)
        # Their bytes at the last read once all were repeats (shared objects), else None.
        self.last: list[bytes | None] | None = None
        # The next sample's values in field order; slow-cadence values stay until re-read.
        self.row: list[Any] = [None] * len(_FIELDS)
        self.row[0], self.row[1], self.row[I_FINAL] = rel, inode, False
        self.sample: CgroupSample | None = None
        self.rates: CgroupRates | None = None
        self.populated: bool | None = None
        self.last_full = -1  # tick of the last full read
        self.reads = 0  # full reads so far: idle skipping starts once rates exist
        self.same_streak = False  # previous read repeated every file
        self.slow_reads = 0


@dataclass(slots=True)
class BatchResult:
    samples: list[tuple[CgroupSample, CgroupRates]] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)  # vanished: their final sample is in samples
    oom: list[OomEvent] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)  # reason -> count (never "gone")
    files_read: int = 0
    duration_s: float = 0.0


def error_reason(e: Exception) -> str:
    if isinstance(e, ParseError):
        return "parse"
    if isinstance(e, OSError) and e.errno is not None:
        return errno_.errorcode.get(e.errno, str(e.errno))
    return type(e).__name__


class Sampler:
    def __init__(
        self,
        reader: Reader,
        host: HostInfo,
        *,
        root_path: str = "",
        slow_every: int = 10,
        idle_every: int = 5,
        kmsg: KmsgVictims | None = None,
    ) -> None:
        self.reader = reader
        self.host = host
        self.root_path = root_path.rstrip("/")
        self.slow_every = max(1, slow_every)
        self.idle_every = max(1, idle_every)
        self.kmsg = kmsg
        self.oom = OomTracker()
        self._states: dict[str, _State] = {}
        self._shared: dict[tuple[str, bytes], _Cached] = {}
        self.baseline = True  # the first batch: existing oom_kill counts are history

    # --- the tick ----------------------------------------------------------------------------
    def sample_batch(
        self,
        cgroups: Iterable[tuple[str, int]],
        tick: int,
        *,
        vanished: Iterable[tuple[str, int]] = (),
        dirty: frozenset[str] = frozenset(),
        system_delta_usec: float | None = None,
        events_watched: bool = False,
    ) -> BatchResult:
        """Read every cgroup of ``cgroups`` that is due; ``vanished`` get their final sample.

        ``dirty``: cgroups a watch saw change (read in full even when idle).
        ``events_watched``: cgroup.events is watched, so idle cgroups need no read at all to
        notice that they are populated again.
        """
        out = BatchResult()
        vanished = list(vanished)
        if vanished:
            cgroups = list(cgroups)
            present = {rel for rel, _ in cgroups}
            for rel, ino in vanished:
                # A re-created cgroup (same path, new inode) replaces the old one: no "gone".
                self._vanish(rel, ino, out, replaced=rel in present)
        states = self._states
        slow_every = self.slow_every
        for rel, ino in cgroups:
            st = states.get(rel)
            if st is None or st.inode != ino:
                st = _State(rel, ino, slow_every)
                states[rel] = st
            try:
                idle = st.populated is False and st.reads >= 2 and rel != "" and rel not in dirty
                if (
                    idle
                    and tick - st.last_full < self.idle_every
                    and (events_watched or not self._repopulated(st, out))
                ):
                    continue  # stays stale in the store until its next full read
                self._sample_one(st, tick, out, system_delta_usec)
            except CgroupGone:
                self._vanish(rel, ino, out)
            except (OSError, ParseError) as e:
                r = error_reason(e)
                out.errors[r] = out.errors.get(r, 0) + 1
        self.baseline = False
        return out

    def _repopulated(self, st: _State, out: BatchResult) -> bool:
        data = self.reader.read(st.rel, "cgroup.events", st.inode)
        out.files_read += 1
        if data is None:
            return True
        ev: CgroupEvents = p.parse_cgroup_events(data, "cgroup.events")
        return ev.populated is not False

    def _vanish(self, rel: str, ino: int, out: BatchResult, replaced: bool = False) -> None:
        st = self._states.get(rel)
        if st is None or st.inode != ino:
            return
        del self._states[rel]
        self.oom.forget(rel)
        self.reader.forget(rel)
        if replaced:
            return
        if st.sample is not None:
            out.samples.append((replace(st.sample, final=True), st.rates or CgroupRates()))
        out.gone.append(rel)

    def _get(
        self, st: _State, name: str, parser: Parser, out: BatchResult, keep: bool = True
    ) -> tuple[Any, bool]:
        """(value, unchanged) of one file; (None, True) when the cgroup lacks it.
        ``keep``: remember the bytes to skip parsing when they repeat (not for memory.stat)."""
        if name in st.absent:
            return None, True
        data = self.reader.read(st.rel, name, st.inode)
        out.files_read += 1
        if data is None:
            st.absent.add(name)
            return None, True
        c = st.cache.get(name)
        if c is not None and c[0] == data:
            if not c[2]:
                c = st.cache[name] = self._intern(name, c)
            return c[1], True
        if not keep:
            return parser(data, name), False
        c = self._shared.get((name, data))
        if c is None:
            c = (data, parser(data, name), False)
        st.cache[name] = c
        return c[1], False

    def _intern(self, name: str, c: _Cached) -> _Cached:
        """Content that repeated is shared by every cgroup with the same bytes (idle cgroups
        all print the same PSI and events lines): one parsed object, one bytes object."""
        key = (name, c[0])
        s = self._shared.get(key)
        if s is None:
            if len(self._shared) >= SHARED_MAX:
                self._shared.clear()
            s = self._shared[key] = (c[0], c[1], True)
        return s

    def _update_fast(self, st: _State, datas: list[bytes | None]) -> bool:
        """Put the every-tick files' values in ``st.row``, parsing only bytes that changed;
        True when every file repeated its last bytes. Once they all repeat, ``st.last`` holds
        the (shared) bytes so that the next tick compares the whole list at once."""
        row, cache, shared = st.row, st.cache, self._shared
        same = True
        for (name, parser, i), data in zip(st.fast, datas, strict=True):
            c = cache.get(name)
            if c is not None and c[0] == data:
                if not c[2]:
                    c = cache[name] = self._intern(name, c)
                row[i] = c[1]
                continue
            same = False
            if data is None:
                row[i] = None
                continue
            c = shared.get((name, data))
            if c is None:
                c = (data, parser(data, name), False)
            cache[name] = c
            row[i] = c[1]
        st.last = [cache[name][0] for name in st.fast_names] if same else None
        return same

    def _sample_one(
        self, st: _State, tick: int, out: BatchResult, system_delta_usec: float | None
    ) -> None:
        rel = st.rel
        prev = st.sample
        first = prev is None
        slow = first or (tick + st.phase) % self.slow_every == 0
        expensive = slow
        if rel == "" and not first:
            expensive = (tick + st.phase) % max(self.slow_every, ROOT_SLOW_MIN) == 0
        get = self._get
        row = st.row  # updated in place: slow-cadence values carry over to the next sample
        mono = time.monotonic()
        row[I_MONO] = mono
        row[I_WALL] = time.time()
        same = True  # every value the rates depend on is the very object of the last read
        if slow:
            reprobe = st.slow_reads % ABSENT_REPROBE == 0
            if reprobe:
                st.absent.clear()
            st.slow_reads += 1
            # Controllers enabled for this cgroup (its parent's subtree_control): the files of
            # the others do not exist, so they are not even probed (a missing file costs an
            # openat plus a check that the cgroup itself still exists). The same parsed object
            # as last time, with nothing cleared since, has its files in ``absent`` already.
            ctrl = get(st, "cgroup.controllers", p.parse_controllers, out)[0]
            if ctrl is not None and (reprobe or ctrl is not st.ctrl):
                for name, controller in _CONTROLLED_FILES:
                    if controller not in ctrl:
                        st.absent.add(name)
            st.ctrl = ctrl
            fast = []
            for item in _FAST_I:
                v = get(st, item[0], item[1], out)[0]
                same = same and v is row[item[2]]  # unchanged bytes give the cached object
                row[item[2]] = v
                if item[0] not in st.absent:
                    fast.append(item)
            st.fast = tuple(fast)
            st.fast_names = tuple(item[0] for item in fast)
            st.last = None  # bytes may have changed: the next fast read compares per file
            for name, parser, i in _SLOW_I:
                v = get(st, name, parser, out)[0]
                same = same and v is row[i]
                row[i] = v
        else:
            # The hot path: one pread per file (one reader call per cgroup). When every file
            # repeats the bytes of the last read, the row already holds their parsed values.
            datas = self.reader.read_files(rel, st.fast_names, st.inode)
            out.files_read += len(datas)
            if datas != st.last:
                same = self._update_fast(st, datas)
        if expensive:
            for name, parser, i, imono in _EXPENSIVE_I:
                v = get(st, name, parser, out, keep=False)[0]
                row[i] = v
                if v is not None:
                    row[imono] = mono
                    same = False  # a new read time: io rates move to it
                else:
                    row[imono] = None
        # OOM: the local counter is re-read when first seen and when the hierarchical one moves.
        me = row[I_MEMEV]
        if me is not None and (
            prev is None
            or prev.memory_events is None
            or prev.memory_events.oom_kill != me.oom_kill
            or row[I_LOCAL] is None
        ):
            row[I_LOCAL] = get(st, LOCAL_EVENTS, p.parse_memory_events, out)[0]
        ev = row[I_EVENTS]
        populated = None if ev is None else ev.populated
        sample = _build(*row)
        if st.populated is True and populated is False:
            _SET_FINAL(sample, True)  # the sample that saw it empty (not carried over)
        if same and st.same_streak and st.rates is not None:
            rates = st.rates  # nothing moved for two reads: the rates are the same again
        else:
            rates = compute_rates(
                prev,
                sample,
                self.host,
                prev_rates=st.rates,
                system_delta_usec=system_delta_usec,
            )
        st.same_streak = same
        st.sample, st.rates = sample, rates
        st.populated = populated
        st.last_full = tick
        st.reads += 1
        out.samples.append((sample, rates))
        if me is not None:
            ev = self.oom.update(sample, baseline=self.baseline)
            if ev is not None:
                out.oom.append(self._with_victim(ev))

    def _with_victim(self, ev: OomEvent) -> OomEvent:
        k = self.kmsg
        if k is None or not k.available:
            return ev
        path = f"{self.root_path}/{ev.cgroup}" if ev.cgroup else self.root_path
        for attempt in range(3):  # the "Killed process" line follows the counter by a moment
            k.drain()
            v = k.victim(path)
            if v is not None:
                return replace(ev, pid=v.pid, comm=v.comm)
            if attempt < 2:
                time.sleep(0.02)
        return ev

    # --- between ticks -----------------------------------------------------------------------
    def check_oom(self, rels: Iterable[str]) -> list[OomEvent]:
        """OOM events of cgroups whose memory.events changed (a watch fired), outside a tick.

        Updates only the OOM tracker: the next tick still reads everything as usual, and the
        tracker does not count the same increment twice.
        """
        events: list[OomEvent] = []
        for rel in rels:
            st = self._states.get(rel)
            if st is None or st.sample is None:
                continue
            try:
                loc = self.reader.read(rel, LOCAL_EVENTS, st.inode)
                data = loc if loc is not None else self.reader.read(rel, "memory.events", st.inode)
                if data is None:
                    continue
                me = p.parse_memory_events(
                    data, LOCAL_EVENTS if loc is not None else "memory.events"
                )
            except (CgroupGone, OSError, ParseError):
                continue  # the tick will see it and account for it
            s = replace(
                st.sample,
                wall=time.time(),
                memory_events=None if loc is not None else me,
                memory_events_local=me if loc is not None else None,
            )
            ev = self.oom.update(s, baseline=False)
            if ev is not None:
                events.append(self._with_victim(ev))
        return events

    def latest(self, rel: str) -> CgroupSample | None:
        st = self._states.get(rel)
        return st.sample if st is not None else None

    def __len__(self) -> int:
        return len(self._states)


def _populated(ev: CgroupEvents | None) -> bool | None:
    return None if ev is None else ev.populated
