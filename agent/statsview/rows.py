"""Display rows: one flat, JSON-friendly record per cgroup, built from a Store.

The TUI, `pystats stats` and the agent's /v1/stats all show these rows, so a cgroup looks the
same whichever way it is read. ``None`` means unavailable (controller absent, slow file not
read yet); consumers print "-" for it, never 0. Limits use the kernel's ``"max"`` for
unlimited so that rows survive JSON unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal

from cgroupfs.types import Limit, MemoryEvents
from collectors.store import Entry, Store

Max = Literal["max"]
LimitValue = int | Max | None

MEMORY_EVENT_KEYS = ("low", "high", "max", "oom", "oom_kill", "oom_group_kill")


@dataclass(slots=True)
class StatsRow:
    """Treat as immutable (not frozen only because frozen __init__ costs 2-3x more, and the
    view builds 2,000 of these per tick)."""

    path: str  # relative to the collector's root; "" is the root itself
    name: str  # workload name when known, else the cgroup's last path component
    workload: str | None = None
    populated: bool | None = None
    frozen: bool | None = None
    gone: bool = False
    stale: bool = False  # not fully re-read on the last tick (idle sampling)
    # CPU
    cpu_percent: float | None = None  # docker: Δusage / Δwall * 100 (can exceed 100)
    cpu_cores: float | None = None
    cpu_quota_cores: float | None = None  # cpu.max quota/period; None when unlimited
    cpu_max_quota_usec: LimitValue = None  # cpu.max as the kernel has it; None: not readable
    cpu_max_period_usec: int | None = None
    cpu_quota_percent: float | None = None
    throttled_percent: float | None = None
    cpu_usage_usec: int | None = None
    # memory
    mem_usage: int | None = None  # docker: memory.current - inactive_file
    mem_limit: int | None = None  # memory.max, or host RAM when unlimited
    mem_percent: float | None = None
    working_set: int | None = None
    memory_current: int | None = None
    memory_peak: int | None = None
    memory_max: LimitValue = None
    memory_high: LimitValue = None
    swap_current: int | None = None
    memory_events: Mapping[str, int | None] | None = None
    oom_kills: int | None = None
    # pids, io, pressure
    pids_current: int | None = None
    pids_max: LimitValue = None
    net_rx_bytes: int | None = None  # docker NET I/O: a workload's own netns, since it began
    net_tx_bytes: int | None = None
    io_read_bytes: int | None = None  # docker BLOCK I/O: cumulative io.stat rbytes / wbytes
    io_write_bytes: int | None = None
    io_read_bps: float | None = None
    io_write_bps: float | None = None
    cpu_pressure_some_avg10: float | None = None
    memory_pressure_some_avg10: float | None = None
    io_pressure_some_avg10: float | None = None
    nr_descendants: int | None = None
    first_seen_wall: float | None = None
    sample_wall: float | None = None
    extra: Mapping[str, str] = field(default_factory=dict)  # free text for the detail pane

    @property
    def depth(self) -> int:
        return 0 if not self.path else self.path.count("/") + 1

    @property
    def parent(self) -> str | None:
        if not self.path:
            return None
        return self.path.rpartition("/")[0]

    @property
    def shown_populated(self) -> bool:
        """Unknown populated state counts as populated: hide only what we know is empty."""
        return self.populated is not False


def limit_value(v: Limit | None) -> LimitValue:
    if v is None:
        return None
    if v == math.inf:
        return "max"
    return int(v)


def events_dict(ev: MemoryEvents | None) -> dict[str, int | None] | None:
    if ev is None:
        return None
    return {k: getattr(ev, k) for k in MEMORY_EVENT_KEYS}


def display_name(path: str) -> str:
    return path.rpartition("/")[2] if path else "/"


def row_from_entry(path: str, e: Entry, workload: str | None = None) -> StatsRow:
    s, r = e.sample, e.rates
    quota_cores = None
    if s.cpu_max is not None and not math.isinf(s.cpu_max.quota_usec) and s.cpu_max.period_usec:
        quota_cores = s.cpu_max.quota_usec / s.cpu_max.period_usec
    ev = s.memory_events
    cpu_max, events, mp = s.cpu_max, s.events, s.memory_pressure
    io = s.io
    return StatsRow(
        path=path,
        name=workload or display_name(path),
        workload=workload,
        populated=events.populated if events is not None else None,
        frozen=events.frozen if events is not None else None,
        gone=e.gone,
        stale=e.stale_ticks > 0,
        cpu_percent=r.cpu_percent,
        cpu_cores=r.cpu_cores,
        cpu_quota_cores=quota_cores,
        cpu_max_quota_usec=limit_value(cpu_max.quota_usec) if cpu_max is not None else None,
        cpu_max_period_usec=cpu_max.period_usec if cpu_max is not None else None,
        cpu_quota_percent=r.cpu_quota_percent,
        throttled_percent=r.throttled_percent,
        cpu_usage_usec=s.cpu.usage_usec if s.cpu is not None else None,
        mem_usage=r.memory_used,
        mem_limit=r.memory_limit,
        mem_percent=r.memory_percent,
        working_set=r.working_set,
        memory_current=s.memory_current,
        memory_peak=s.memory_peak,
        memory_max=limit_value(s.memory_max),
        memory_high=limit_value(s.memory_high),
        swap_current=s.swap_current,
        memory_events=events_dict(ev),
        oom_kills=ev.oom_kill if ev is not None else None,
        pids_current=s.pids_current,
        pids_max=limit_value(s.pids_max),
        io_read_bytes=io.rbytes if io is not None else None,
        io_write_bytes=io.wbytes if io is not None else None,
        io_read_bps=r.io_read_bps,
        io_write_bps=r.io_write_bps,
        cpu_pressure_some_avg10=_avg10(s.cpu_pressure),
        memory_pressure_some_avg10=mp.some.avg10 if mp is not None and mp.some else None,
        io_pressure_some_avg10=_avg10(s.io_pressure),
        nr_descendants=s.stat.nr_descendants if s.stat is not None else None,
        first_seen_wall=e.first_seen_wall,
        sample_wall=s.wall,
    )


def _avg10(p: object) -> float | None:
    some = getattr(p, "some", None)
    return some.avg10 if some is not None else None


def rows_from_store(
    store: Store, names: Mapping[str, str] | Callable[[], Mapping[str, str]] | None = None
) -> list[StatsRow]:
    """Every cgroup in the store (including unpopulated and gone ones), in path order."""
    mapping = names() if callable(names) else (names or {})
    return [row_from_entry(p, e, mapping.get(p)) for p, e in sorted(store.entries.items())]


class RowCache:
    """rows_from_store that rebuilds only the rows whose entry changed since the last call.

    The collector publishes new sample objects for cgroups it re-read; idle ones it skipped
    keep theirs, and their rows are reused (identity checks, no field comparisons).
    """

    def __init__(self) -> None:
        self._prev: dict[str, tuple[object, object, bool, bool, str | None, StatsRow]] = {}

    def rows(
        self, store: Store, names: Mapping[str, str] | Callable[[], Mapping[str, str]] | None = None
    ) -> list[StatsRow]:
        mapping = names() if callable(names) else (names or {})
        prev = self._prev
        now: dict[str, tuple[object, object, bool, bool, str | None, StatsRow]] = {}
        out = []
        for p, e in sorted(store.entries.items()):
            w = mapping.get(p)
            stale = e.stale_ticks > 0
            c = prev.get(p)
            if (
                c is not None
                and c[0] is e.sample
                and c[1] is e.rates
                and c[2] == e.gone
                and c[3] == stale
                and c[4] == w
            ):
                row = c[5]
            else:
                row = row_from_entry(p, e, w)
            now[p] = (e.sample, e.rates, e.gone, stale, w, row)
            out.append(row)
        self._prev = now
        return out


def visible(rows: Iterable[StatsRow], show_all: bool) -> list[StatsRow]:
    """docker stats hides stopped containers unless --all; we hide unpopulated / gone cgroups."""
    if show_all:
        return list(rows)
    return [r for r in rows if r.shown_populated and not r.gone]


# Fields that the kernel reports hierarchically (a parent's value covers its subtree).
# For a tree node lacking one, its subtree total is the sum over its children.
SUMMABLE = (
    "cpu_percent",
    "cpu_cores",
    "mem_usage",
    "working_set",
    "memory_current",
    "oom_kills",
    "pids_current",
    "io_read_bytes",
    "io_write_bytes",
    "io_read_bps",
    "io_write_bps",
)


def subtree_totals(rows: Iterable[StatsRow]) -> dict[str, StatsRow]:
    """Each row with its subtree totals: its own (hierarchical) value, else its children's sum.

    cgroup v2 counters (cpu.stat, memory.current, pids.current, io.stat, memory.events) already
    include descendants, so where a cgroup has a value it is the subtree total. Only missing
    values (e.g. the root cgroup has no memory.current) are filled from the children.
    """
    by_path = {r.path: r for r in rows}
    children: dict[str, list[str]] = {}
    for p in by_path:
        parent = by_path[p].parent
        if parent is not None and parent in by_path:
            children.setdefault(parent, []).append(p)
    out: dict[str, StatsRow] = {}

    def total(p: str) -> StatsRow:
        done = out.get(p)
        if done is not None:
            return done
        row = by_path[p]
        kids = [total(c) for c in children.get(p, ())]
        missing = {
            f: _sum(getattr(k, f) for k in kids) for f in SUMMABLE if getattr(row, f) is None
        }
        fill: dict[str, Any] = {k: v for k, v in missing.items() if v is not None}
        res = replace(row, **fill) if fill else row
        out[p] = res
        return res

    # Iterate deepest first so recursion depth stays shallow on deep trees.
    for p in sorted(by_path, key=lambda q: -by_path[q].depth):
        total(p)
    return out


def _sum(vals: Iterable[float | int | None]) -> float | int | None:
    have = [v for v in vals if v is not None]
    return sum(have) if have else None


ROW_FIELDS = tuple(f.name for f in fields(StatsRow))
