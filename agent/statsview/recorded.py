"""Rows from the durable history: a recorded tick becomes a Store, then rows as live.

`pystats stats --at`, `pystats export` and the replay view use this, so a recorded cgroup
looks exactly as it did live (same rows, same formulas), including cgroups gone since.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping
from datetime import datetime

from agent.statsview.history import Event, History
from agent.statsview.jsonio import StatsDoc
from agent.statsview.rows import RowCache, StatsRow
from collectors.recorder.codec import Snapshot
from collectors.recorder.events import RecordedEvent
from collectors.recorder.reader import Point
from collectors.store import Store

SOURCE = "replay"
_AGO = re.compile(
    r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|secs|seconds?|m|min|mins|minutes?|h|hours?|d|days?)\s+ago\s*$"
)
_REL = re.compile(r"^\s*-\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)\s*$")
_UNIT = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_when(text: str, now: float | None = None) -> float:
    """A point in time as a Unix time: "now", "10 minutes ago", "-10m", an ISO time (local
    time unless it names a zone: 2026-12-07T06:50:00, 2026-12-07 06:50:00Z) or Unix seconds."""
    now = time.time() if now is None else now
    t = text.strip()
    if t == "now":
        return now
    m = _AGO.match(t) or _REL.match(t)
    if m is not None:
        return now - float(m[1]) * _UNIT[m[2][0]]
    try:
        return float(t)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(t.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"cannot read {text!r} as a time: use e.g. '10 minutes ago', -10m, "
            "2026-12-07T06:50:00 or Unix seconds"
        ) from None
    return dt.timestamp()


def store_of(snap: Snapshot) -> Store:
    """A Store holding one recorded tick, entries as the live store had them."""
    store = Store(history_len=1, gone_ttl_ticks=1 << 30)
    store.publish(
        ((e.sample, e.rates) for e in snap.entries),
        gone=[e.path for e in snap.entries if e.gone],
        mono=snap.mono,
    )
    entries = store.entries
    for e in snap.entries:
        got = entries.get(e.path)
        if got is not None:
            got.first_seen_wall = e.first_seen_wall
            got.stale_ticks = 1 if e.stale else 0
            got.gone = e.gone
    return store


def names_from_events(events: Iterable[RecordedEvent]) -> dict[str, str]:
    """cgroup path -> workload name, as the recorded events named them."""
    return {ev.cgroup: ev.workload for ev in events if ev.workload and ev.cgroup}


def rows_at(
    snap: Snapshot, names: Mapping[str, str] | None = None, cache: RowCache | None = None
) -> list[StatsRow]:
    return (cache or RowCache()).rows(store_of(snap), names)


def doc_at(
    snap: Snapshot,
    names: Mapping[str, str] | None = None,
    root: str = "",
    cache: RowCache | None = None,
    interval_s: float | None = None,
) -> StatsDoc:
    return StatsDoc(rows_at(snap, names, cache), snap.wall, SOURCE, root, "recorded", 0, interval_s)


def history_of(
    path: str, points: list[Point], events: Iterable[RecordedEvent], until: float
) -> History:
    """The detail pane's history from recorded points (CPU cores between consecutive reads)."""
    mono: list[float] = []
    cpu: list[float | None] = []
    mem: list[int | None] = []
    prev: Point | None = None
    for p in points:
        c = None
        if (
            prev is not None
            and p.usage_usec is not None
            and prev.usage_usec is not None
            and p.mono > prev.mono
            and p.usage_usec >= prev.usage_usec
        ):
            c = (p.usage_usec - prev.usage_usec) / 1e6 / (p.mono - prev.mono)
        if prev is None or p.mono != prev.mono:
            mono.append(p.mono)
            cpu.append(c)
            mem.append(p.memory_current)
        prev = p
    evs = [
        Event(ev.wall, "oom_kill" if ev.kind == "oom" else ev.kind, ev.text or ev.kind)
        for ev in events
        if ev.cgroup == path and ev.wall <= until
    ]
    return History(path, mono, cpu, mem, evs[-20:])
