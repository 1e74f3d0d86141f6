"""A cgroup's history for the detail pane: sparkline points and recent events."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from collectors.store import Store


@dataclass(frozen=True, slots=True)
class Event:
    wall: float
    kind: str  # "oom_kill", "first_seen", "gone", or what the agent adds (placement, launch)
    text: str


@dataclass(frozen=True, slots=True)
class History:
    path: str
    mono: Sequence[float]
    cpu_cores: Sequence[float | None]
    memory_current: Sequence[int | None]
    events: Sequence[Event]


def history_from_store(
    store: Store, path: str, max_events: int = 20, extra: Iterable[Event] = ()
) -> History | None:
    """``extra``: events the store does not know (the agent's placements and launches)."""
    e = store.entries.get(path)
    if e is None:
        return None
    points = store.history(path)
    events = [Event(e.first_seen_wall, "first_seen", "first seen"), *extra]
    for o in store.oom_events():
        if o.cgroup != path:
            continue
        events.append(Event(o.wall, "oom_kill", f"{o.what()}, total {o.total}"))
    if e.gone:
        events.append(Event(e.sample.wall, "gone", "cgroup removed"))
    events.sort(key=lambda ev: ev.wall)
    return History(
        path=path,
        mono=[p.mono for p in points],
        cpu_cores=[p.cpu_cores for p in points],
        memory_current=[p.memory_current for p in points],
        events=events[-max_events:],
    )


def history_to_json(h: History) -> dict[str, Any]:
    return {
        "cgroup": h.path,
        "mono": list(h.mono),
        "cpu_cores": list(h.cpu_cores),
        "memory_current": list(h.memory_current),
        "events": [{"wall": e.wall, "kind": e.kind, "text": e.text} for e in h.events],
    }


def history_from_json(d: Mapping[str, Any]) -> History:
    return History(
        path=str(d["cgroup"]),
        mono=[float(x) for x in d.get("mono", ())],
        cpu_cores=list(d.get("cpu_cores", ())),
        memory_current=list(d.get("memory_current", ())),
        events=[
            Event(float(e["wall"]), str(e["kind"]), str(e["text"])) for e in d.get("events", ())
        ],
    )
