"""The in-memory store: latest sample and rates per cgroup, a bounded history, OOM events.

Producers: the collector, once per tick (``publish``), plus ``record_oom`` for kills seen between
ticks. Consumers: exporter, TUI, API. They read ``entries`` / ``history`` / ``oom_events`` and
may await ``wait_tick`` to be woken once per tick. Nothing here touches cgroupfs.

Memory budget: history is kept as two compact arrays per cgroup (float32 CPU cores, uint32
memory in 4 KiB pages) indexed by tick, with one shared array of tick times: 8 bytes per cgroup
per tick, i.e. 600 ticks x 10,000 cgroups = 48 MB. Arrays grow with a cgroup's age up to
``history_len``, so short-lived cgroups cost little. Latest samples, collector state and the
interpreter come on top: the whole process measured 137 MB at 10,000 cgroups with full
history (benchmarks/RESULTS.md, "Collectors"). Vanished cgroups keep their final sample for
``gone_ttl_ticks`` ticks, then are dropped.
"""

from __future__ import annotations

import asyncio
import math
import time
from array import array
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import overload

from collectors.sample import CgroupRates, CgroupSample, OomEvent

_PAGE = 4096
_NO_MEM = 0xFFFFFFFF  # uint32 sentinel for "memory_current unavailable"
_MAX_PAGES = _NO_MEM - 1
_MAX_BYTES = _MAX_PAGES * _PAGE
_NAN = math.nan


@dataclass(frozen=True, slots=True)
class HistoryPoint:
    """One tick of a cgroup's history: only what sparklines and short-range views need."""

    mono: float
    cpu_cores: float | None
    memory_current: int | None


class HistoryRing(Sequence[HistoryPoint]):
    """A cgroup's history, oldest first: one value pair per tick since it was first seen.

    Stored compactly (see module doc); points are materialised on access. Memory is rounded
    down to 4 KiB (memory.current is a page count anyway).
    """

    __slots__ = ("_cap", "_cpu", "_first", "_last", "_mem", "_ticks")

    def __init__(self, cap: int, ticks: array[float], tick: int) -> None:
        self._cap = cap
        self._ticks = ticks  # the store's shared tick-time ring, indexed tick % cap
        self._cpu: array[float] = array("f")
        self._mem: array[int] = array("I")
        self._first = tick  # tick number of the first point ever written
        self._last = tick - 1  # tick number of the latest point

    def put(self, tick: int, cpu: float | None, mem: int | None) -> None:
        """Write the point of ``tick`` (the next tick after the last one written)."""
        c = _NAN if cpu is None else cpu
        m = _NO_MEM if mem is None else (mem >> 12 if mem < _MAX_BYTES else _MAX_PAGES)
        i = tick - self._first
        if i < self._cap and tick != self._last:
            self._cpu.append(c)
            self._mem.append(m)
        else:  # full ring, or a second sample in one tick replacing the first
            i %= self._cap
            self._cpu[i] = c
            self._mem[i] = m
        self._last = tick

    def _tick_at(self, k: int) -> int:
        n = len(self._cpu)
        return self._last - n + 1 + k

    def _point(self, tick: int) -> HistoryPoint:
        i = (tick - self._first) % self._cap
        c = self._cpu[i]
        m = self._mem[i]
        return HistoryPoint(
            self._ticks[tick % self._cap],
            None if c != c else c,  # NaN means unavailable
            None if m == _NO_MEM else m * _PAGE,
        )

    def __len__(self) -> int:
        return len(self._cpu)

    @overload
    def __getitem__(self, k: int) -> HistoryPoint: ...
    @overload
    def __getitem__(self, k: slice) -> Sequence[HistoryPoint]: ...
    def __getitem__(self, k: int | slice) -> HistoryPoint | Sequence[HistoryPoint]:
        n = len(self._cpu)
        if isinstance(k, slice):
            return tuple(self._point(self._tick_at(j)) for j in range(*k.indices(n)))
        if k < 0:
            k += n
        if not 0 <= k < n:
            raise IndexError(k)
        return self._point(self._tick_at(k))

    def __iter__(self) -> Iterator[HistoryPoint]:
        for j in range(len(self._cpu)):
            yield self._point(self._tick_at(j))

    def resize(self, cap: int, ticks: array[float]) -> None:
        """Keep the newest ``cap`` points, on the store's new tick ring."""
        k = min(cap, len(self._cpu))
        order = [(self._last - k + 1 + j - self._first) % self._cap for j in range(k)]
        self._cpu = array("f", (self._cpu[i] for i in order))
        self._mem = array("I", (self._mem[i] for i in order))
        self._first = self._last - k + 1
        self._cap = cap
        self._ticks = ticks

    def nbytes(self) -> int:
        return self._cpu.itemsize * len(self._cpu) + self._mem.itemsize * len(self._mem)


@dataclass(slots=True)
class Entry:
    sample: CgroupSample
    rates: CgroupRates
    first_seen_wall: float
    history: HistoryRing
    # Ticks since this cgroup was last read. Idle (unpopulated) cgroups are read every few
    # ticks, and a read failing for a reason other than "gone" leaves the entry as it was:
    # consumers show the value as "N s old" when stale_ticks > 0.
    stale_ticks: int = 0
    gone: bool = False  # vanished: kept with its final sample until expired
    gone_ticks: int = 0  # ticks since it vanished


@dataclass(slots=True)
class TickStats:
    ticks: int = 0
    last_duration_s: float = 0.0
    last_success_wall: float | None = None
    cgroups: int = 0
    errors: dict[str, int] = field(default_factory=dict)  # reason -> count, cumulative
    oom_events: int = 0  # cumulative, including ones dropped from the bounded list


class Store:
    def __init__(
        self, history_len: int = 600, max_oom_events: int = 1000, gone_ttl_ticks: int = 300
    ) -> None:
        """``gone_ttl_ticks``: vanished cgroups (final counters) stay this many ticks."""
        self.history_len = history_len
        self.gone_ttl_ticks = gone_ttl_ticks
        self._entries: dict[str, Entry] = {}
        self._oom: deque[OomEvent] = deque(maxlen=max_oom_events)
        self.stats = TickStats()
        self._waiters: list[asyncio.Future[int]] = []
        self._ticks: array[float] = array("d", [math.nan]) * history_len

    # --- producer side -------------------------------------------------------------------
    def publish(
        self,
        samples: Iterable[tuple[CgroupSample, CgroupRates]],
        gone: Iterable[str] = (),
        oom: Iterable[OomEvent] = (),
        duration_s: float = 0.0,
        errors: Mapping[str, int] | None = None,
        *,
        mono: float | None = None,
    ) -> None:
        """Record one tick. ``gone`` lists paths that vanished (their last sample stays, final).

        Entries without a sample this tick (idle or failed reads) keep their sample, count
        ``stale_ticks`` and repeat their last history point.
        """
        st = self.stats
        tick = st.ticks
        cap = self.history_len
        self._ticks[tick % cap] = time.monotonic() if mono is None else mono
        entries = self._entries
        ticks = self._ticks
        for sample, rates in samples:
            e = entries.get(sample.path)
            if e is None or e.sample.inode != sample.inode:
                h = HistoryRing(cap, ticks, tick)
                h.put(tick, rates.cpu_cores, sample.memory_current)
                entries[sample.path] = Entry(sample, rates, sample.wall, h, stale_ticks=-1)
            else:
                e.sample, e.rates, e.gone, e.gone_ticks = sample, rates, False, 0
                e.stale_ticks = -1  # set to 0 below
                e.history.put(tick, rates.cpu_cores, sample.memory_current)
        for path in gone:
            e = entries.get(path)
            if e is not None:
                e.gone = True
        dead: list[str] = []
        live = 0
        ttl = self.gone_ttl_ticks
        for path, e in entries.items():
            if e.gone:
                e.gone_ticks += 1
                if e.gone_ticks > ttl:
                    dead.append(path)
                continue
            live += 1
            if e.stale_ticks < 0:
                e.stale_ticks = 0
            else:
                e.stale_ticks += 1
                e.history.put(tick, e.rates.cpu_cores, e.sample.memory_current)
        for path in dead:
            del entries[path]
        n_oom = len(self._oom)
        self._oom.extend(oom)
        st.oom_events += len(self._oom) - n_oom
        st.ticks = tick + 1
        st.last_duration_s = duration_s
        st.last_success_wall = time.time()
        st.cgroups = live
        for reason, n in (errors or {}).items():
            st.errors[reason] = st.errors.get(reason, 0) + n
        self._wake()

    def set_history_len(self, history_len: int) -> None:
        """Change the points kept per cgroup (memory shedding); keeps the newest ones."""
        n = max(1, history_len)
        last = self.stats.ticks - 1
        old, old_len = self._ticks, self.history_len
        ticks: array[float] = array("d", [math.nan]) * n
        for t in range(max(0, last - min(n, old_len) + 1), last + 1):
            ticks[t % n] = old[t % old_len]
        self._ticks, self.history_len = ticks, n
        for e in self._entries.values():
            e.history.resize(n, ticks)

    def record_oom(self, events: Iterable[OomEvent]) -> None:
        """OOM events seen between ticks (inotify on memory.events)."""
        for ev in events:
            self._oom.append(ev)
            self.stats.oom_events += 1

    def expire_gone(self) -> list[str]:
        """Drop vanished cgroups now (after consumers have seen their final sample once)."""
        dead = [p for p, e in self._entries.items() if e.gone]
        for p in dead:
            del self._entries[p]
        return dead

    # --- consumer side -------------------------------------------------------------------
    @property
    def entries(self) -> Mapping[str, Entry]:
        return self._entries

    def history(self, path: str) -> Sequence[HistoryPoint]:
        e = self._entries.get(path)
        return tuple(e.history) if e is not None else ()

    def oom_events(self) -> Sequence[OomEvent]:
        return tuple(self._oom)

    def history_nbytes(self) -> int:
        """Bytes held by history arrays (the budget the module doc states)."""
        return sum(e.history.nbytes() for e in self._entries.values()) + self._ticks.itemsize * (
            len(self._ticks)
        )

    async def wait_tick(self) -> int:
        """Return after the next ``publish``; the value is the tick number."""
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        return await fut

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for f in waiters:
            if not f.done():
                f.set_result(self.stats.ticks)
