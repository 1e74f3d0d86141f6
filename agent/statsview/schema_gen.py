"""Builds stats.schema.json from StatsRow, so the schema cannot drift from the rows.

Regenerate after changing StatsRow:  python -m agent.statsview.schema_gen
(a unit test fails while the checked-in file differs from what this builds).
"""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import Any

from agent.statsview.rows import MEMORY_EVENT_KEYS, StatsRow

SCHEMA_PATH = Path(__file__).with_name("stats.schema.json")

_COUNT = {"type": ["integer", "null"], "minimum": 0}
_LIMIT = {"oneOf": [{"type": "integer", "minimum": 0}, {"const": "max"}, {"type": "null"}]}
_RATE = {"type": ["number", "null"], "minimum": 0}


def _field_schema(name: str, typ: str) -> dict[str, Any]:
    if name in ("path", "name"):
        return {"type": "string"}
    if name in ("gone", "stale"):
        return {"type": "boolean"}
    if name == "memory_events":
        events = {
            "type": "object",
            "additionalProperties": False,
            "properties": {k: _COUNT for k in MEMORY_EVENT_KEYS},
            "required": list(MEMORY_EVENT_KEYS),
        }
        return {"oneOf": [{"type": "null"}, events]}
    if name == "extra":
        return {"type": "object", "additionalProperties": {"type": "string"}}
    if "LimitValue" in typ:
        return _LIMIT
    if "bool" in typ:
        return {"type": ["boolean", "null"]}
    if "str" in typ:
        return {"type": ["string", "null"]}
    if "float" in typ:
        return (
            _RATE
            if any(w in name for w in ("percent", "bps", "cores", "avg10"))
            else {"type": ["number", "null"]}
        )
    if "int" in typ:
        return _COUNT
    raise TypeError(f"no schema for StatsRow.{name}: {typ}")


def build_schema() -> dict[str, Any]:
    row_fields = fields(StatsRow)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://pystats.invalid/schemas/stats-v1.json",
        "title": "pystats stats --format json",
        "description": (
            "One snapshot of every shown cgroup. null means unavailable (controller absent, "
            'file not read yet), never zero. Limits are an integer or "max" (unlimited). '
            "See agent/statsview/README.md for each formula."
        ),
        "type": "object",
        "additionalProperties": False,
        "required": ["version", "time", "source", "root", "mode", "tick", "interval_s", "rows"],
        "properties": {
            "version": {"const": 1},
            "time": {"type": "number", "description": "wall clock (Unix seconds) of the snapshot"},
            "source": {"enum": ["standalone", "agent", "replay"]},
            "root": {"type": "string"},
            "mode": {"type": "string"},
            "tick": {"type": "integer", "minimum": 0},
            "interval_s": {"type": ["number", "null"], "exclusiveMinimum": 0},
            "rows": {"type": "array", "items": {"$ref": "#/$defs/row"}},
        },
        "$defs": {
            "row": {
                "type": "object",
                "additionalProperties": False,
                "required": [f.name for f in row_fields],
                "properties": {f.name: _field_schema(f.name, str(f.type)) for f in row_fields},
            }
        },
    }


def render() -> str:
    return json.dumps(build_schema(), indent=2) + "\n"


if __name__ == "__main__":
    SCHEMA_PATH.write_text(render())
    print(f"wrote {SCHEMA_PATH}")
