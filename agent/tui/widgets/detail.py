"""The detail pane of the selected cgroup: sparklines, limits, memory.events, recent events."""

from __future__ import annotations

import time

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Sparkline, Static

from agent.statsview import fmt
from agent.statsview.history import History
from agent.statsview.rows import MEMORY_EVENT_KEYS, StatsRow

SPARK_POINTS = 120  # the last two minutes at 1 s


def _series(values: object) -> list[float]:
    vals = list(values)[-SPARK_POINTS:]  # type: ignore[call-overload]
    return [float(v) for v in vals if v is not None]


def limits_text(r: StatsRow) -> str:
    if r.cpu_max_quota_usec is None:
        cpu = "-"  # no cpu controller here: unknown, not unlimited
    elif r.cpu_quota_cores is None:
        cpu = "max"
    else:
        cpu = f"{r.cpu_quota_cores:g} cores"
    return (
        f"cpu.max {cpu} · memory.max {fmt.limit_bytes(r.memory_max)}"
        f" · memory.high {fmt.limit_bytes(r.memory_high)} · pids.max {fmt.limit_int(r.pids_max)}"
    )


def events_text(r: StatsRow) -> Text:
    if r.memory_events is None:
        return Text("memory.events: n/a", style="dim")
    t = Text("memory.events:")
    for k in MEMORY_EVENT_KEYS:
        v = r.memory_events.get(k)
        t.append(f" {k} ")
        t.append(fmt.integer(v), style="bold red" if k.startswith("oom") and v else "")
    return t


def recent_text(h: History | None) -> Text:
    t = Text("recent: ")
    if h is None or not h.events:
        t.append("none", style="dim")
        return t
    parts = []
    for e in reversed(h.events[-4:]):
        stamp = time.strftime("%H:%M:%S", time.localtime(e.wall))
        parts.append((f"{stamp} {e.text}", "bold red" if e.kind == "oom_kill" else ""))
    for i, (text, style) in enumerate(parts):
        if i:
            t.append(" · ")
        t.append(text, style=style)
    return t


class DetailPane(Vertical):
    def compose(self) -> ComposeResult:
        yield Static(id="detail-title")
        with Horizontal(classes="spark-row"):
            yield Static("CPU", classes="spark-label")
            yield Sparkline([], id="cpu-spark", summary_function=max)
            yield Static(id="cpu-now", classes="spark-now")
        with Horizontal(classes="spark-row"):
            yield Static("MEM", classes="spark-label")
            yield Sparkline([], id="mem-spark", summary_function=max)
            yield Static(id="mem-now", classes="spark-now")
        yield Static(id="detail-limits")
        yield Static(id="detail-events")
        yield Static(id="detail-recent")

    def show(self, r: StatsRow | None, h: History | None) -> None:
        if r is None:
            self.query_one("#detail-title", Static).update("no cgroup selected")
            return
        title = Text(r.path or "/", style="bold")
        if r.workload:
            title.append(f"  workload {r.workload}", style="cyan")
        if r.frozen:
            title.append("  frozen", style="bold blue")
        if r.gone:
            title.append("  gone", style="dim")
        if r.populated is False:
            title.append("  (empty)", style="dim")
        self.query_one("#detail-title", Static).update(title)
        cpu = _series(h.cpu_cores) if h is not None else []
        mem = _series(h.memory_current) if h is not None else []
        self.query_one("#cpu-spark", Sparkline).data = cpu
        self.query_one("#mem-spark", Sparkline).data = mem
        now_cpu = f"{fmt.cores(r.cpu_cores)} cores"
        if r.cpu_quota_percent is not None:
            now_cpu += f" {fmt.percent_short(r.cpu_quota_percent)} of quota"
        self.query_one("#cpu-now", Static).update(now_cpu)
        self.query_one("#mem-now", Static).update(
            f"{fmt.bytes_binary(r.memory_current)} (peak {fmt.bytes_binary(r.memory_peak)})"
        )
        self.query_one("#detail-limits", Static).update(limits_text(r))
        self.query_one("#detail-events", Static).update(events_text(r))
        self.query_one("#detail-recent", Static).update(recent_text(h))
