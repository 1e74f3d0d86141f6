"""Rows to and from JSON (the `pystats stats --format json` document and the agent's /v1/stats).

The document's JSON schema ships beside this module as ``stats.schema.json``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from agent.statsview.rows import ROW_FIELDS, StatsRow

SCHEMA_VERSION = 1


@dataclass(frozen=True, slots=True)
class StatsDoc:
    """One snapshot of the view: rows plus where they came from."""

    rows: Sequence[StatsRow]
    time: float  # wall clock of the snapshot
    source: str  # "standalone", "agent" or "replay" (recorded history)
    root: str  # the cgroup root the paths are relative to
    mode: str  # the cgroup mode, in words ("cgroup v2", "hybrid v1/v2: no cpu, memory")
    tick: int = 0
    interval_s: float | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


def row_to_json(row: StatsRow) -> dict[str, Any]:
    out = {name: getattr(row, name) for name in ROW_FIELDS}
    if out["memory_events"] is not None:
        out["memory_events"] = dict(out["memory_events"])
    out["extra"] = dict(row.extra)
    return out


def row_from_json(d: Mapping[str, Any]) -> StatsRow:
    kwargs = {k: d[k] for k in ROW_FIELDS if k in d}
    return StatsRow(**kwargs)


def doc_to_json(doc: StatsDoc) -> dict[str, Any]:
    return {
        "version": SCHEMA_VERSION,
        "time": doc.time,
        "source": doc.source,
        "root": doc.root,
        "mode": doc.mode,
        "tick": doc.tick,
        "interval_s": doc.interval_s,
        "rows": [row_to_json(r) for r in doc.rows],
    }


def doc_from_json(d: Mapping[str, Any]) -> StatsDoc:
    return StatsDoc(
        rows=[row_from_json(r) for r in d.get("rows", ())],
        time=float(d.get("time", 0.0)),
        source=str(d.get("source", "agent")),
        root=str(d.get("root", "")),
        mode=str(d.get("mode", "")),
        tick=int(d.get("tick", 0)),
        interval_s=d.get("interval_s"),
    )


def dumps(doc: StatsDoc) -> str:
    return json.dumps(doc_to_json(doc), separators=(",", ":"), allow_nan=False)


def schema() -> dict[str, Any]:
    text = resources.files("agent.statsview").joinpath("stats.schema.json").read_text()
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def rows_json(rows: Iterable[StatsRow]) -> list[dict[str, Any]]:
    return [row_to_json(r) for r in rows]
