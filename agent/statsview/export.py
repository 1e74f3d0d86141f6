"""`pystats export`: recorded rows of a time range, as CSV or JSON Lines (a bug report, a
notebook). Streams tick by tick: memory stays flat however long the range."""

from __future__ import annotations

import csv
import json
from typing import Any, TextIO

from agent.statsview.jsonio import doc_to_json
from agent.statsview.recorded import doc_at, names_from_events
from agent.statsview.rows import ROW_FIELDS, RowCache, visible

CSV_FIELDS = ("time", *(f for f in ROW_FIELDS if f != "extra"))


def _docs(reader: Any, since: float, until: float, show_all: bool) -> Any:
    names = names_from_events(reader.events(until=until))
    cache = RowCache()
    for snap in reader.ticks(since, until):
        doc = doc_at(snap, names, cache=cache)
        yield doc, visible(doc.rows, show_all)


def write_csv(reader: Any, since: float, until: float, out: TextIO, show_all: bool) -> int:
    w = csv.writer(out)
    w.writerow(CSV_FIELDS)
    n = 0
    for doc, rows in _docs(reader, since, until, show_all):
        n += 1
        for r in rows:
            vals: list[object] = [f"{doc.time:.3f}"]
            for f in CSV_FIELDS[1:]:
                v = getattr(r, f)
                vals.append(
                    json.dumps(dict(v)) if f == "memory_events" and v is not None else
                    "" if v is None else v
                )  # fmt: skip
            w.writerow(vals)
    return n


def write_json_lines(reader: Any, since: float, until: float, out: TextIO, show_all: bool) -> int:
    n = 0
    for doc, rows in _docs(reader, since, until, show_all):
        n += 1
        d = doc_to_json(doc)
        d["rows"] = [r for r in d["rows"] if r["path"] in {x.path for x in rows}]
        out.write(json.dumps(d, separators=(",", ":"), allow_nan=False) + "\n")
    return n
