"""`pystats stats --format table`: docker stats' columns, cells and spacing."""

from __future__ import annotations

from collections.abc import Sequence

from agent.statsview import fmt
from agent.statsview.rows import StatsRow

HEADERS = ("CGROUP", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O", "BLOCK I/O", "PIDS")


def cells(row: StatsRow) -> tuple[str, ...]:
    return (
        row.path or "/",
        fmt.percent(row.cpu_percent),
        fmt.usage_limit(row.mem_usage, row.mem_limit),
        fmt.percent(row.mem_percent),
        fmt.block_io(row.net_rx_bytes, row.net_tx_bytes),
        fmt.block_io(row.io_read_bytes, row.io_write_bytes),
        fmt.integer(row.pids_current),
    )


def render_table(rows: Sequence[StatsRow]) -> str:
    """Left-aligned columns separated by three spaces, as docker's tabwriter prints them."""
    table = [HEADERS, *(cells(r) for r in rows)]
    widths = [max(len(line[i]) for line in table) for i in range(len(HEADERS))]
    out = []
    for line in table:
        parts = [c.ljust(w) for c, w in zip(line, widths, strict=True)]
        out.append("   ".join(parts).rstrip())
    return "\n".join(out) + "\n"
