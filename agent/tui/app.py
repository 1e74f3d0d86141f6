"""The live view: `pystats` with no command.

Data comes from a Source (a store sampled in-process, or an agent's socket); a worker polls it
once per interval and posts DataArrived. The table is diffed in place inside batch_update.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from pathlib import Path

from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.events import Resize
from textual.widgets import DataTable, Footer, Input

from agent.statsview.history import History
from agent.statsview.jsonio import StatsDoc
from agent.statsview.rows import StatsRow
from agent.tui.host import HostStats, read_host
from agent.tui.messages import DataArrived, SourceFailed, ToggleNode
from agent.tui.model import ViewState, build_view
from agent.tui.screens.confirm import ConfirmScreen
from agent.tui.screens.help import HelpScreen
from agent.tui.sources import ActionUnavailable, Source
from agent.tui.widgets.detail import DetailPane
from agent.tui.widgets.stats_table import StatsTable
from agent.tui.widgets.status import StatusLine, status_text

INTERVALS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
GC_EVERY_S = 60.0


class PystatsApp(App[None]):
    CSS_PATH = str(Path(__file__).with_name("styles.tcss"))
    TITLE = "pystats"
    BINDINGS = [
        Binding("q", "quit", "Quit"),
        Binding("question_mark", "help", "Help"),
        Binding("slash", "filter", "Filter"),
        Binding("s", "sort_next", "Sort"),
        Binding("S", "sort_prev", "Sort back", show=False),
        Binding("r", "reverse", "Reverse", show=False),
        Binding("t", "tree", "Tree"),
        Binding("a", "show_all", "All"),
        Binding("d", "detail", "Detail"),
        Binding("p", "pause", "Pause"),
        Binding("plus,equals_sign", "slower", "+Int", show=False),
        Binding("minus", "faster", "-Int", show=False),
        Binding("f", "act('freeze')", "Freeze", show=False),
        Binding("u", "act('thaw')", "Thaw", show=False),
        Binding("x", "act('stop')", "Stop", show=False),
        Binding("K", "act('kill')", "Kill", show=False),
        Binding("escape", "escape", "Clear", show=False),
        # replay (pystats replay --at): a tick back/forward, a minute back/forward
        Binding("left_square_bracket", "step(-1)", "-Tick", show=False),
        Binding("right_square_bracket", "step(1)", "+Tick", show=False),
        Binding("left_curly_bracket", "step_minute(-1)", "-Min", show=False),
        Binding("right_curly_bracket", "step_minute(1)", "+Min", show=False),
        *(Binding(str((i + 1) % 10), f"sort_col({i})", show=False) for i in range(10)),
    ]

    def __init__(
        self,
        source: Source,
        *,
        clock: Callable[[], float] = time.time,
        host: Callable[[], HostStats] = read_host,
        autorefresh: bool = True,
        tune_gc: bool = False,
    ) -> None:
        """``tune_gc``: tame the process-wide garbage collector (see _tame_gc); the `pystats`
        command turns it on, tests leave their interpreter alone."""
        super().__init__()
        self.source = source
        self.clock = clock
        self.host = host
        self.autorefresh = autorefresh
        self.state = ViewState()
        self.paused = False
        self.doc: StatsDoc | None = None
        self.error: str | None = None
        self.refreshes = 0
        self._history: History | None = None
        self._gc_frozen = not tune_gc

    # --- layout ------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield StatusLine(id="status")
        yield StatsTable(id="table")
        yield DetailPane(id="detail")
        yield Input(placeholder="filter: part of a cgroup path or name (Esc clears)", id="filter")
        yield Footer()

    @property
    def table(self) -> StatsTable:
        return self.query_one(StatsTable)

    @property
    def detail(self) -> DetailPane:
        return self.query_one(DetailPane)

    async def on_mount(self) -> None:
        self.table.fit(self.size.width)
        self.table.focus()
        await self.source.start()
        if self.autorefresh:
            self.poll()
        else:
            await self.refresh_data()

    def on_resize(self, event: Resize) -> None:
        if self.table.fit(event.size.width):
            self.update_status()

    @work(exclusive=True, group="poll")
    async def poll(self) -> None:
        """Fetch a snapshot every interval (the source wakes us on its tick)."""
        while True:
            try:
                self.post_message(DataArrived(await self.source.fetch()))
            except Exception as e:  # the agent went away, a read failed: say so, keep going
                self.post_message(SourceFailed(str(e) or type(e).__name__))
            await self.source.wait()

    async def refresh_data(self) -> None:
        """Fetch and show one snapshot now (tests and the paused view's manual refresh)."""
        self.on_data_arrived(DataArrived(await self.source.fetch()))
        await self.refresh_detail()

    def _mounted(self) -> bool:
        """False while the app shuts down (widgets gone, the poll worker's last message due)."""
        return bool(self.query(StatsTable))

    def on_data_arrived(self, msg: DataArrived) -> None:
        if not self._mounted():
            return
        self.error = None
        if self.paused and self.doc is not None:
            return
        self.doc = msg.doc
        self.apply(follow=self.detail.has_class("visible"))
        if not self._gc_frozen:
            self._gc_frozen = True
            self._tame_gc()
        if self.detail.has_class("visible"):
            self.run_worker(self.refresh_detail(), exclusive=True, group="detail")

    def on_source_failed(self, msg: SourceFailed) -> None:
        self.error = msg.error
        if not self._mounted():
            return
        self.update_status()

    def apply(self, follow: bool = True) -> None:
        """Re-derive the shown rows from the latest snapshot and view state; diff the table.

        ``follow`` keeps the cursor on its cgroup: user actions do; ticks only while the
        detail pane is open (else the view would jump to wherever a re-sort put that row).
        """
        self.refreshes += 1
        rows = self.doc.rows if self.doc is not None else []
        view = build_view(rows, self.state)
        with self.batch_update():
            self.table.mark_sort(self.state.sort_key, self.state.reverse)
            self.table.show(view, self.state.tree, follow)
            self.update_status(len(view), len(rows))

    def reorder(self) -> None:
        """After a new sort or filter: show the top of the new order (as top and htop do),
        unless the detail pane is open, whose cgroup the cursor then keeps."""
        if self.detail.has_class("visible"):
            self.apply(follow=True)
            return
        self.apply(follow=False)
        if self.table.row_count:
            self.table.move_cursor(row=0, animate=False)

    def _tame_gc(self) -> None:
        """Keep full garbage collections off the keypress path (measured: 100-160 ms spikes
        at 2,000 cgroups). The table's long-lived cells are frozen out of collections, the
        automatic full collection is made rare, and one runs on a timer right after a
        refresh instead. This process is the view alone, so the global GC is ours to tune."""
        gc.freeze()
        young, middle, _ = gc.get_threshold()
        gc.set_threshold(young, middle, 1_000_000)
        self.set_interval(GC_EVERY_S, self._collect)

    def _collect(self) -> None:
        gc.collect()

    def update_status(self, shown: int | None = None, total: int | None = None) -> None:
        info = self.source.info
        n = len(self.table.order) if shown is None else shown
        tot = len(self.doc.rows) if (total is None and self.doc is not None) else (total or 0)
        mode = info.mode or (self.doc.mode if self.doc is not None else "")
        self.query_one(StatusLine).update(
            status_text(
                source=info.label,
                mode=mode,
                host=self.host(),
                interval_s=self.source.interval_s,
                paused=self.paused,
                # a replay's clock is the recorded tick's
                now=self.doc.time if info.kind == "replay" and self.doc else self.clock(),
                shown=n,
                total=tot,
                error=self.error,
                width=self.size.width - 2,
            )
        )

    # --- detail ------------------------------------------------------------------------
    def selected_row(self) -> StatsRow | None:
        key = self.table.cursor_key
        vr = self.table.view_row(key) if key is not None else None
        return vr.row if vr is not None else None

    async def refresh_detail(self) -> None:
        if not self._mounted() or not self.detail.has_class("visible"):
            return
        r = self.selected_row()
        h = None
        if r is not None:
            try:
                h = await self.source.history(r.path)
            except Exception as e:  # history is a nicety: never let it take the view down
                self.error = f"history: {e}"
        self._history = h
        if self._mounted():  # the history fetch may outlive the app
            self.detail.show(r, h)

    def on_data_table_row_highlighted(self, _: DataTable.RowHighlighted) -> None:
        if self._mounted() and self.detail.has_class("visible"):
            self.run_worker(self.refresh_detail(), exclusive=True, group="detail")

    def on_data_table_row_selected(self, _: DataTable.RowSelected) -> None:
        self.action_detail()

    def action_detail(self) -> None:
        self.detail.toggle_class("visible")
        self.run_worker(self.refresh_detail(), exclusive=True, group="detail")

    # --- view state --------------------------------------------------------------------
    def _sort_by(self, key: str) -> None:
        if self.state.sort_key == key:
            self.state.reverse = not self.state.reverse
        else:
            self.state.sort_key = key
            self.state.reverse = key != "name"
        self.reorder()

    def _step_sort(self, step: int) -> None:
        keys = [c.key for c in self.table.shown_columns]
        i = keys.index(self.state.sort_key) if self.state.sort_key in keys else -1
        key = keys[(i + step) % len(keys)]
        self.state.sort_key = key
        self.state.reverse = key != "name"
        self.reorder()

    def action_sort_next(self) -> None:
        self._step_sort(1)

    def action_sort_prev(self) -> None:
        self._step_sort(-1)

    def action_sort_col(self, i: int) -> None:
        cols = self.table.shown_columns
        if i < len(cols):
            self._sort_by(cols[i].key)

    def action_reverse(self) -> None:
        self.state.reverse = not self.state.reverse
        self.reorder()

    def action_tree(self) -> None:
        self.state.tree = not self.state.tree
        self.apply()

    def action_show_all(self) -> None:
        self.state.show_all = not self.state.show_all
        self.apply()

    def on_toggle_node(self, msg: ToggleNode) -> None:
        collapsed = self.state.collapsed
        expand = (msg.key in collapsed) if msg.expand is None else msg.expand
        if expand:
            collapsed.discard(msg.key)
        else:
            collapsed.add(msg.key)
        self.apply()

    def action_pause(self) -> None:
        self.paused = not self.paused
        self.update_status()

    def _set_interval(self, step: int) -> None:
        cur = self.source.interval_s
        i = min(range(len(INTERVALS)), key=lambda k: abs(INTERVALS[k] - cur))
        self.source.interval_s = INTERVALS[max(0, min(len(INTERVALS) - 1, i + step))]
        self.update_status()

    def action_slower(self) -> None:
        self._set_interval(1)

    def action_faster(self) -> None:
        self._set_interval(-1)

    def action_step(self, ticks: int) -> None:
        step = getattr(self.source, "step", None)
        if step is None:
            self.notify("[ ] { } step through recorded history: pystats replay --at TIME")
            return
        step(ticks)

    def action_step_minute(self, sign: int) -> None:
        step = getattr(self.source, "step_seconds", None)
        if step is None:
            self.notify("[ ] { } step through recorded history: pystats replay --at TIME")
            return
        step(60.0 * sign)

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    # --- filter ------------------------------------------------------------------------
    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.add_class("visible")
        box.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        self.state.filter = event.value.strip()
        self.reorder()

    def on_input_submitted(self, _: Input.Submitted) -> None:
        self.table.focus()

    def action_escape(self) -> None:
        box = self.query_one("#filter", Input)
        if box.has_class("visible"):
            box.value = ""
            box.remove_class("visible")
            self.table.focus()
        elif self.detail.has_class("visible"):
            self.detail.remove_class("visible")

    # --- actions -----------------------------------------------------------------------
    def action_act(self, action: str) -> None:
        r = self.selected_row()
        if r is None:
            return
        if not self.source.info.can_act:
            self.notify(
                f"{action} needs a running pystats-agent; this view is standalone",
                severity="warning",
            )
            return
        if action in ("stop", "kill") and r.workload is None:
            self.notify(
                f"{action} works on workloads; {r.path or '/'} is not one", severity="warning"
            )
            return
        target = r.workload if action in ("stop", "kill") else (r.path or "/")
        question = f"{action} {target}?"
        if action == "kill":
            question = f"kill workload {target} (SIGKILL)?"
        self.push_screen(ConfirmScreen(question), lambda yes: self._confirmed(yes, action, r))

    def _confirmed(self, yes: bool | None, action: str, r: StatsRow) -> None:
        if yes:
            self.run_worker(self._do(action, r), group="act")

    async def _do(self, action: str, r: StatsRow) -> None:
        try:
            await self.source.act(action, r.path, r.workload)
        except ActionUnavailable as e:
            self.notify(str(e), severity="warning")
        except Exception as e:
            self.notify(f"{action} failed: {e}", severity="error")
        else:
            self.notify(f"{action}: done ({r.workload or r.path or '/'})")

    async def on_unmount(self) -> None:
        await self.source.close()
