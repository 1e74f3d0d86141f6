"""The in-memory store: latest sample and rates per cgroup, a bounded history, OOM events.

Producers: the collector, once per tick (``publish``). Consumers: exporter, TUI, API. They read
``entries`` / ``history`` / ``oom_events`` and may await ``wait_tick`` to be woken once per tick.
Nothing here touches cgroupfs.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from collectors.sample import CgroupRates, CgroupSample, OomEvent


@dataclass(frozen=True, slots=True)
class HistoryPoint:
    """One tick of a cgroup's history: only what sparklines and short-range views need."""

    mono: float
    cpu_cores: float | None
    memory_current: int | None


@dataclass(slots=True)
class Entry:
    sample: CgroupSample
    rates: CgroupRates
    first_seen_wall: float
    history: deque[HistoryPoint]
    stale_ticks: int = 0  # ticks since this cgroup was last fully read (idle sampling)
    gone: bool = False  # vanished: kept with its final sample until expired


@dataclass(slots=True)
class TickStats:
    ticks: int = 0
    last_duration_s: float = 0.0
    last_success_wall: float | None = None
    cgroups: int = 0
    errors: dict[str, int] = field(default_factory=dict)  # reason -> count, cumulative


class Store:
    def __init__(self, history_len: int = 600, max_oom_events: int = 1000) -> None:
        self.history_len = history_len
        self._entries: dict[str, Entry] = {}
        self._oom: deque[OomEvent] = deque(maxlen=max_oom_events)
        self.stats = TickStats()
        self._waiters: list[asyncio.Future[int]] = []

    # --- producer side -------------------------------------------------------------------
    def publish(
        self,
        samples: Iterable[tuple[CgroupSample, CgroupRates]],
        gone: Iterable[str] = (),
        oom: Iterable[OomEvent] = (),
        duration_s: float = 0.0,
        errors: Mapping[str, int] | None = None,
    ) -> None:
        """Record one tick. ``gone`` lists paths that vanished (their last sample stays, final)."""
        entries = self._entries
        for sample, rates in samples:
            e = entries.get(sample.path)
            point = HistoryPoint(sample.mono, rates.cpu_cores, sample.memory_current)
            if e is None or e.sample.inode != sample.inode:
                h: deque[HistoryPoint] = deque(maxlen=self.history_len)
                h.append(point)
                entries[sample.path] = Entry(sample, rates, sample.wall, h)
            else:
                e.sample, e.rates, e.gone, e.stale_ticks = sample, rates, False, 0
                e.history.append(point)
        for path in gone:
            e = entries.get(path)
            if e is not None:
                e.gone = True
        self._oom.extend(oom)
        st = self.stats
        st.ticks += 1
        st.last_duration_s = duration_s
        st.cgroups = sum(1 for e in entries.values() if not e.gone)
        for reason, n in (errors or {}).items():
            st.errors[reason] = st.errors.get(reason, 0) + n
        self._wake()

    def expire_gone(self) -> list[str]:
        """Drop vanished cgroups (after consumers have seen their final sample once)."""
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
