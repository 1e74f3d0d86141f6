"""The header line: source, cgroup mode, host CPU and memory, interval, pause, clock."""

from __future__ import annotations

import time

from rich.text import Text
from textual.widgets import Static

from agent.statsview import fmt
from agent.tui.host import HostStats


def status_text(
    *,
    source: str,
    mode: str,
    host: HostStats,
    interval_s: float,
    paused: bool,
    now: float,
    shown: int,
    total: int,
    error: str | None = None,
    width: int = 200,
) -> Text:
    """The header; at narrow widths segments shorten, then the least useful ones drop."""
    cpu = host.cpu_percent
    # On the rows' scale (docker's: 100 % is one core busy), with the host's ceiling beside it.
    if cpu is None:
        cpu_s = "-"
    elif host.cpus:
        cpu_s = f"{cpu * host.cpus:.0f}%/{host.cpus * 100}%"
    else:
        cpu_s = f"{cpu:.0f}%"
    mem = f"{fmt.bytes_binary(host.mem_used)}/{fmt.bytes_binary(host.mem_total)}"
    clock = time.strftime("%H:%M:%S", time.localtime(now))
    mode_style = "yellow" if ("hybrid" in mode or "no " in mode) else "green"
    # (long text, short text, style, priority: lower survives longer)
    segs: list[tuple[str, str, str, int]] = [
        ("pystats", "", "bold", 6),
        (source, source.split(" ")[0], "cyan", 1),
        (mode, mode.replace("hybrid v1/v2", "hybrid").replace(", ", ","), mode_style, 2),
        (
            f"host CPU {cpu_s} (100% = 1 core) MEM {mem}",
            f"host CPU {cpu_s} MEM {mem}",
            "bold red" if (cpu or 0) >= 90 else "",
            3,
        ),
        (f"{shown}/{total} cgroups", f"{shown}/{total}", "", 4),
        (f"every {interval_s:g}s", f"{interval_s:g}s", "", 2),
        ("PAUSED", "PAUSED", "bold reverse", 0) if paused else ("", "", "", 9),
        (error or "", error or "", "bold red", 0),
        (clock, clock, "dim", 5),
    ]
    segs = [sg for sg in segs if sg[0]]

    def length(items: list[tuple[str, str]]) -> int:
        return sum(len(t) for t, _ in items) + 3 * (len(items) - 1)

    chosen = [(sg[0], sg[2]) for sg in segs]
    if length(chosen) > width:
        chosen = [(sg[1], sg[2]) for sg in segs if sg[1]]
        order = sorted(range(len(chosen)), key=lambda k: -[sg[3] for sg in segs if sg[1]][k])
        dropped: set[int] = set()
        for k in order:
            if length([c for n, c in enumerate(chosen) if n not in dropped]) <= width:
                break
            dropped.add(k)
        chosen = [c for n, c in enumerate(chosen) if n not in dropped]
    t = Text(no_wrap=True, overflow="ellipsis")
    for n, (text, style) in enumerate(chosen):
        if n:
            t.append(" · ", style="dim")
        t.append(text, style=style)
    return t


class StatusLine(Static):
    pass
