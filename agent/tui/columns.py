"""The live view's columns: label, width, drop priority, sort value and coloured cell.

Thresholds colour a cell yellow (warn) or red (crit). At narrow widths the columns with the
highest ``priority`` number drop first; CGROUP and CPU % always stay.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rich.text import Text

from agent.statsview import fmt
from agent.statsview.rows import StatsRow

WARN = "yellow"
CRIT = "bold red"
DIM = "dim"


def _level(v: float | None, warn: float, crit: float) -> str:
    if v is None:
        return DIM
    if v >= crit:
        return CRIT
    if v >= warn:
        return WARN
    return ""


def _num(v: float | int | None) -> float:
    """Sort value: unavailable sorts below every real value."""
    return float("-inf") if v is None else float(v)


@dataclass(frozen=True, slots=True)
class Column:
    key: str
    label: str
    width: int
    priority: int
    sort_value: Callable[[StatsRow], float | str]
    cell: Callable[[StatsRow], Text]
    help: str


def _cpu_cell(r: StatsRow) -> Text:
    # Colour by share of the quota when limited, else by cores used.
    lvl = (
        _level(r.cpu_quota_percent, 70, 90)
        if r.cpu_quota_percent is not None
        else _level(r.cpu_percent, 150, 300)
    )
    return Text(fmt.percent_short(r.cpu_percent), style=lvl, justify="right")


def _cores_cell(r: StatsRow) -> Text:
    txt = fmt.cores(r.cpu_cores)
    if r.cpu_quota_cores is not None:
        txt += f"/{r.cpu_quota_cores:g}"
    return Text(txt, style=DIM if r.cpu_cores is None else "", justify="right")


def _quota_cell(r: StatsRow) -> Text:
    return Text(
        fmt.percent_short(r.cpu_quota_percent),
        style=_level(r.cpu_quota_percent, 70, 90),
        justify="right",
    )


def _mem_cell(r: StatsRow) -> Text:
    style = DIM if r.mem_usage is None else ""
    return Text(fmt.usage_limit(r.mem_usage, r.mem_limit), style=style, justify="right")


def _memp_cell(r: StatsRow) -> Text:
    return Text(
        fmt.percent_short(r.mem_percent), style=_level(r.mem_percent, 75, 90), justify="right"
    )


def _wset_cell(r: StatsRow) -> Text:
    return Text(
        fmt.bytes_binary(r.working_set), style=DIM if r.working_set is None else "", justify="right"
    )


def _pids_cell(r: StatsRow) -> Text:
    share = None
    if r.pids_current is not None and isinstance(r.pids_max, int) and r.pids_max > 0:
        share = r.pids_current / r.pids_max * 100
    style = _level(share, 75, 90) if share is not None else (DIM if r.pids_current is None else "")
    return Text(fmt.integer(r.pids_current), style=style, justify="right")


def _thr_cell(r: StatsRow) -> Text:
    return Text(
        fmt.percent_short(r.throttled_percent),
        style=_level(r.throttled_percent, 10, 25),
        justify="right",
    )


def _oom_cell(r: StatsRow) -> Text:
    return Text(fmt.integer(r.oom_kills), style=_level(r.oom_kills, 1, 1), justify="right")


def _psi_cell(r: StatsRow) -> Text:
    v = r.memory_pressure_some_avg10
    return Text("-" if v is None else f"{v:.1f}", style=_level(v, 10, 40), justify="right")


def _io_cell(attr: str) -> Callable[[StatsRow], Text]:
    def cell(r: StatsRow) -> Text:
        v: float | None = getattr(r, attr)
        return Text(fmt.rate(v), style=DIM if v is None else "", justify="right")

    return cell


def _name_sort(r: StatsRow) -> str:
    return r.name.lower()


COLUMNS: tuple[Column, ...] = (
    Column(
        "name", "CGROUP", 24, 0, _name_sort, lambda r: Text(r.name), "cgroup path or workload name"
    ),
    Column(
        "cpu",
        "CPU %",
        7,
        0,
        lambda r: _num(r.cpu_percent),
        _cpu_cell,
        "docker's CPU %: 100 = one core",
    ),
    Column(
        "mem",
        "MEM USAGE / LIMIT",
        19,
        1,
        lambda r: _num(r.mem_usage),
        _mem_cell,
        "current - inactive_file / memory.max or RAM",
    ),
    Column("memp", "MEM %", 6, 1, lambda r: _num(r.mem_percent), _memp_cell, "usage / limit"),
    Column("pids", "PIDS", 5, 2, lambda r: _num(r.pids_current), _pids_cell, "pids.current"),
    Column("oom", "OOM", 4, 3, lambda r: _num(r.oom_kills), _oom_cell, "memory.events oom_kill"),
    Column(
        "thr",
        "THR %",
        6,
        4,
        lambda r: _num(r.throttled_percent),
        _thr_cell,
        "throttled periods / periods",
    ),
    Column(
        "cores",
        "CORES",
        9,
        5,
        lambda r: _num(r.cpu_cores),
        _cores_cell,
        "cores used [/ quota in cores]",
    ),
    Column(
        "quota",
        "QUOTA %",
        8,
        6,
        lambda r: _num(r.cpu_quota_percent),
        _quota_cell,
        "cores / cpu.max quota",
    ),
    Column(
        "psi",
        "MEM PSI",
        8,
        7,
        lambda r: _num(r.memory_pressure_some_avg10),
        _psi_cell,
        "memory.pressure some avg10",
    ),
    Column(
        "ior",
        "READ/s",
        9,
        8,
        lambda r: _num(r.io_read_bps),
        _io_cell("io_read_bps"),
        "io.stat rbytes per second",
    ),
    Column(
        "iow",
        "WRITE/s",
        9,
        8,
        lambda r: _num(r.io_write_bps),
        _io_cell("io_write_bps"),
        "io.stat wbytes per second",
    ),
    Column(
        "net",
        "NET I/O",
        17,
        10,
        lambda r: _num(None if r.net_rx_bytes is None else r.net_rx_bytes + (r.net_tx_bytes or 0)),
        lambda r: Text(
            fmt.block_io(r.net_rx_bytes, r.net_tx_bytes),
            style=DIM if r.net_rx_bytes is None else "",
            justify="right",
        ),
        "received / sent in the workload's own network namespace",
    ),
    Column(
        "wset",
        "WSET",
        9,
        9,
        lambda r: _num(r.working_set),
        _wset_cell,
        "working set: current - inactive_file",
    ),
)
BY_KEY = {c.key: c for c in COLUMNS}
NAME_MIN = 16
PAD = 2  # DataTable's cell padding: one space either side


def fit_columns(width: int, columns: Sequence[Column] = COLUMNS) -> tuple[list[Column], int]:
    """The columns that fit ``width`` cells (dropping by priority) and the name column's width."""
    avail = width - 2  # scrollbar and a margin
    chosen = list(columns)
    while True:
        fixed = sum(c.width + PAD for c in chosen if c.key != "name")
        name_w = avail - fixed - PAD
        if name_w >= NAME_MIN or len(chosen) <= 2:
            break
        worst = max((c for c in chosen if c.priority > 0), key=lambda c: c.priority, default=None)
        if worst is None:
            break
        # Drop every column of the lowest priority together (READ/s and WRITE/s go as a pair).
        chosen = [c for c in chosen if c.priority != worst.priority]
    return chosen, max(NAME_MIN, min(name_w, 60))
