"""The loop behind `pystats stats`: fetch rows, print a table or JSON, repeat unless --no-stream."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any, TextIO

from agent.statsview.jsonio import StatsDoc, dumps
from agent.statsview.render import render_table
from agent.statsview.rows import visible

CLEAR = "\033[2J\033[H"  # docker stats redraws the screen the same way
MISSING_GRACE_TICKS = 2


def shown(doc: StatsDoc, show_all: bool, only: Sequence[str] = ()) -> StatsDoc:
    """The rows to print: populated ones (all with ``show_all``), or just the workloads (or
    cgroups, by last path component) named in ``only``."""
    if only:
        rows = [r for r in doc.rows if r.workload in only or (not r.workload and r.name in only)]
    else:
        rows = visible(doc.rows, show_all)
    return StatsDoc(rows, doc.time, doc.source, doc.root, doc.mode, doc.tick, doc.interval_s)


def render(doc: StatsDoc, fmt: str) -> str:
    return dumps(doc) + "\n" if fmt == "json" else render_table(doc.rows)


async def run_stats(
    source: Any,
    *,
    stream: bool,
    show_all: bool,
    fmt: str,
    out: TextIO | None = None,
    only: Sequence[str] = (),
) -> int:
    """``source`` is an agent.tui.sources Source; standalone sources are primed to two ticks."""
    out = out or sys.stdout
    try:
        prime = getattr(source, "prime", None)
        if prime is not None:
            await prime()
        else:
            await source.start()
        grace = MISSING_GRACE_TICKS
        while True:
            doc = shown(await source.fetch(), show_all, only)
            missing = sorted(set(only) - {r.workload or r.name for r in doc.rows})
            if missing and grace > 0:
                # A workload started a moment ago is in the tree from the agent's next tick on.
                grace -= 1
                await source.wait()
                continue
            if missing:
                print(f"pystats: error: no such workload: {', '.join(missing)}", file=sys.stderr)
                return 1
            text = render(doc, fmt)
            if stream and fmt == "table" and out.isatty():
                text = CLEAR + text
            out.write(text)
            out.flush()
            if not stream:
                return 0
            await source.wait()
    finally:
        await source.close()
