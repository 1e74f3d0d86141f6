"""The live view driven by Pilot on a fixed store: sorting, filter, tree, detail, keys, actions."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from agent.statsview.fake import T0, MiB, big_store, demo_store, sample, tick_big_store
from agent.statsview.jsonio import StatsDoc
from agent.tui.app import PystatsApp
from agent.tui.host import HostStats
from agent.tui.screens.confirm import ConfirmScreen
from agent.tui.screens.help import HelpScreen
from agent.tui.sources import SourceInfo, StoreSource
from collectors.store import Store

HOST = HostStats(12.0, 3 << 30, 16 << 30, 4)
POPULATED_BY_CPU = [
    "",
    "pystats.slice",
    "pystats.slice/web",
    "system.slice/postgres.service",
    "system.slice",
    "pystats.slice/batch",
    "hybrid.slice",
    "system.slice/sshd.service",
]


class ActingSource(StoreSource):
    """A store source that pretends to be attached to an agent and records actions."""

    def __init__(self, store: Store, names: Mapping[str, str] | None = None) -> None:
        info = SourceInfo("agent", "agent /tmp/test.sock", "/sys/fs/cgroup", "cgroup v2", True)
        super().__init__(store, info, names=names, clock=lambda: T0 + 30)
        self.acts: list[tuple[str, str, str | None]] = []

    async def act(self, action: str, path: str, workload: str | None) -> None:
        self.acts.append((action, path, workload))


def make_app(store: Store | None = None, source: StoreSource | None = None) -> PystatsApp:
    if source is None:
        info = SourceInfo(
            "standalone", "standalone /sys/fs/cgroup", "/sys/fs/cgroup", "cgroup v2", False
        )
        source = StoreSource(store or demo_store(), info, clock=lambda: T0 + 30)
    return PystatsApp(source, clock=lambda: T0 + 30, host=lambda: HOST, autorefresh=False)


def order(app: PystatsApp) -> list[str]:
    return list(app.table.order)


def cell(app: PystatsApp, key: str, col: str) -> str:
    return str(app.table.get_cell(key, col))


def notes(app: PystatsApp) -> list[str]:
    return [n.message for n in app._notifications]


async def test_default_view_hides_unpopulated_and_sorts_by_cpu() -> None:
    app = make_app()
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.pause()
        assert order(app) == POPULATED_BY_CPU
        assert app.table.row_count == len(POPULATED_BY_CPU)
        assert cell(app, "pystats.slice/web", "cpu") == "135.0%"
        assert cell(app, "hybrid.slice", "mem") == "- / -"
        assert cell(app, "pystats.slice/batch", "oom") == "2"


async def test_sort_keys() -> None:
    app = make_app()
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.press("1")  # first column: CGROUP, ascending
        assert app.state.sort_key == "name" and not app.state.reverse
        names = [app.table.view_row(k).row.name.lower() for k in order(app)]  # type: ignore[union-attr]
        assert names == sorted(names)
        await pilot.press("1")  # same column again: reversed
        assert app.state.reverse
        await pilot.press("s")  # next column after CGROUP: CPU %
        assert app.state.sort_key == "cpu"
        await pilot.press("s")  # MEM USAGE, biggest first; unavailable last
        assert app.state.sort_key == "mem"
        assert order(app)[0] == "pystats.slice" and order(app)[-2:] == ["", "hybrid.slice"]
        await pilot.press("r")
        assert order(app)[-1] == "pystats.slice"
        await pilot.press("S")
        assert app.state.sort_key == "cpu"
        await pilot.press("5")  # PIDS
        assert app.state.sort_key == "pids" and order(app)[0] == ""


async def test_filter_by_text_and_escape_clears() -> None:
    app = make_app()
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.press("slash")
        assert app.focused is app.query_one("#filter")
        await pilot.press(*"SLICE/B")
        assert order(app) == ["pystats.slice/batch"]
        await pilot.press("enter")
        assert app.focused is app.table
        assert order(app) == ["pystats.slice/batch"]
        await pilot.press("escape")
        assert order(app) == POPULATED_BY_CPU
        assert not app.query_one("#filter").has_class("visible")


async def test_tree_mode_expand_collapse_and_totals() -> None:
    app = make_app()
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.press("t")
        assert order(app) == [
            "",
            "pystats.slice",
            "pystats.slice/web",
            "pystats.slice/batch",
            "system.slice",
            "system.slice/postgres.service",
            "system.slice/sshd.service",
            "hybrid.slice",
        ]
        # The root has no memory.current of its own: its subtree total is shown instead.
        assert cell(app, "", "mem").startswith("2.236GiB")
        app.table.move_cursor(row=order(app).index("system.slice"))
        await pilot.press("left")
        assert "system.slice/postgres.service" not in order(app)
        assert "(+2)" in cell(app, "system.slice", "name")
        assert app.table.cursor_key == "system.slice"
        await pilot.press("left")  # on a collapsed node: jump to its parent
        assert app.table.cursor_key == ""
        app.table.move_cursor(row=order(app).index("system.slice"))
        await pilot.press("right")
        assert order(app)[order(app).index("system.slice") + 1] == "system.slice/postgres.service"
        await pilot.press("space")
        assert "system.slice/sshd.service" not in order(app)
        await pilot.press("t")  # back to the flat list, sorted by CPU
        assert order(app) == POPULATED_BY_CPU


async def test_tree_filter_keeps_ancestors() -> None:
    app = make_app()
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.press("t", "slash", *"sshd", "enter")
        assert order(app) == ["", "system.slice", "system.slice/sshd.service"]


async def test_detail_pane_follows_the_cursor() -> None:
    app = make_app()
    async with app.run_test(size=(120, 34)) as pilot:
        app.table.move_cursor(row=order(app).index("pystats.slice/batch"))
        await pilot.press("d")
        await pilot.pause()
        await app.workers.wait_for_complete()
        detail = app.detail
        assert detail.has_class("visible")
        text = " ".join(str(w.render()) for w in detail.query("Static"))
        assert "pystats.slice/batch" in text
        assert "oom_kill 2" in text
        assert "OOM kill" in text  # recent events
        assert "memory.max 1GiB" in text
        assert len(detail.query_one("#cpu-spark").data) == 30  # type: ignore[attr-defined]
        await pilot.press("up")
        await pilot.pause()
        await app.workers.wait_for_complete()
        text = str(detail.query_one("#detail-title").render())
        assert "system.slice" in text and "batch" not in text
        await pilot.press("escape")
        assert not detail.has_class("visible")
        await pilot.press("enter")  # Enter on a row opens it too
        assert detail.has_class("visible")


async def test_show_all_interval_pause_help() -> None:
    store = demo_store()
    app = make_app(store)
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.press("a")
        assert "system.slice/old.service" in order(app)
        await pilot.press("a")
        assert "system.slice/old.service" not in order(app)
        await pilot.press("plus")
        assert app.source.interval_s == 2.0
        await pilot.press("minus", "minus")
        assert app.source.interval_s == 0.5
        await pilot.press("p")
        assert app.paused
        store.publish([sample("new.slice", 0, cores=3.0, mem=MiB)])
        await app.refresh_data()
        assert "new.slice" not in order(app)  # paused: the view holds still
        await pilot.press("p")
        await app.refresh_data()
        assert order(app)[0] == "new.slice"
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


async def test_rows_are_updated_in_place() -> None:
    store = demo_store()
    app = make_app(store)
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.pause()
        keys_before = {k.value: k for k in app.table.rows}
        store.publish(
            [
                sample(
                    "pystats.slice/web",
                    40,
                    cores=0.25,
                    mem=100 * MiB,
                    mem_max=512 * MiB,
                    quota=1.0,
                    pids=25,
                ),
                sample("late.slice", 40, cores=0.5, mem=MiB),
            ],
            gone=["system.slice/sshd.service"],
        )
        await app.refresh_data()
        rows_now = {k.value: k for k in app.table.rows}
        assert "late.slice" in rows_now and "system.slice/sshd.service" not in rows_now
        # Surviving rows keep their RowKey objects: they were updated, not re-added.
        assert all(rows_now[k] is keys_before[k] for k in rows_now if k in keys_before)
        assert cell(app, "pystats.slice/web", "cpu") == "25.0%"
        assert order(app).index("pystats.slice/web") > order(app).index("late.slice")


async def test_only_visible_rows_are_repainted_and_scrolled_rows_catch_up() -> None:
    store = big_store(400)
    app = make_app(store)
    async with app.run_test(size=(100, 24)) as pilot:
        await pilot.pause()
        tick_big_store(store, 2)
        before = app.table.cells_written
        await app.refresh_data()
        written = app.table.cells_written - before
        visible = len(app.table.visible_range())
        assert 0 < written <= visible * len(app.table.shown_columns)
        await pilot.press("ctrl+end")
        await pilot.pause()
        last = order(app)[-1]
        row = app.table.view_row(last)
        assert row is not None
        want = next(c for c in app.table.shown_columns if c.key == "cpu").cell(row.row).plain
        assert cell(app, last, "cpu") == want


async def test_actions_need_an_agent() -> None:
    app = make_app()
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.press("f")
        assert not isinstance(app.screen, ConfirmScreen)
        assert any("needs a running pystats-agent" in n for n in notes(app))


@pytest.mark.parametrize(("key", "action"), [("f", "freeze"), ("u", "thaw")])
async def test_freeze_thaw_confirmed(key: str, action: str) -> None:
    src = ActingSource(demo_store())
    app = make_app(source=src)
    async with app.run_test(size=(120, 30)) as pilot:
        app.table.move_cursor(row=order(app).index("pystats.slice/batch"))
        await pilot.press(key)
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        assert src.acts == []
        await pilot.press(key, "y")
        await app.workers.wait_for_complete()
        assert src.acts == [(action, "pystats.slice/batch", None)]


async def test_stop_and_kill_are_for_workloads() -> None:
    src = ActingSource(demo_store(), names={"pystats.slice/web": "web"})
    app = make_app(source=src)
    async with app.run_test(size=(120, 30)) as pilot:
        app.table.move_cursor(row=order(app).index("system.slice"))
        await pilot.press("x")
        assert not isinstance(app.screen, ConfirmScreen)
        assert any("works on workloads" in n for n in notes(app))
        app.table.move_cursor(row=order(app).index("pystats.slice/web"))
        await pilot.press("K")
        assert isinstance(app.screen, ConfirmScreen) and "kill workload web" in app.screen.question
        await pilot.press("y")
        await pilot.press("x", "y")
        await app.workers.wait_for_complete()
        assert src.acts == [
            ("kill", "pystats.slice/web", "web"),
            ("stop", "pystats.slice/web", "web"),
        ]
        assert cell(app, "pystats.slice/web", "name") == "web"


async def test_columns_drop_by_priority_at_80_columns() -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        narrow = [c.key for c in app.table.shown_columns]
        assert narrow[:2] == ["name", "cpu"] and "wset" not in narrow and "mem" in narrow
        await pilot.resize_terminal(200, 40)
        await pilot.pause()
        wide = [c.key for c in app.table.shown_columns]
        assert set(narrow) < set(wide) and "wset" in wide
        assert order(app) == POPULATED_BY_CPU  # rebuilt columns, same rows


class FailingSource(StoreSource):
    async def fetch(self) -> StatsDoc:
        raise ConnectionError("agent went away")


async def test_source_failure_is_shown_and_polling_goes_on() -> None:
    info = SourceInfo("agent", "agent /x.sock", "/", "cgroup v2", True)
    src = FailingSource(demo_store(), info, interval_s=0.05)
    app = PystatsApp(src, clock=lambda: T0, host=lambda: HOST, autorefresh=True)
    async with app.run_test(size=(120, 30)) as pilot:
        for _ in range(100):  # a loaded machine: wait for the worker's first failed fetch
            await pilot.pause(0.05)
            if app.error is not None:
                break
        assert app.error == "agent went away"
        assert "agent went away" in str(app.query_one("#status").render())


async def test_sort_column_marked_in_header() -> None:
    app = make_app()
    async with app.run_test(size=(120, 30)) as pilot:
        labels = {str(c.key.value): c.label.plain for c in app.table.columns.values()}
        assert labels["cpu"] == "CPU %▼" and labels["mem"] == "MEM USAGE / LIMIT"
        await pilot.press("1")
        labels = {str(c.key.value): c.label.plain for c in app.table.columns.values()}
        assert labels["name"] == "CGROUP▲" and labels["cpu"] == "CPU %"


async def test_ticks_keep_the_cursor_row_unless_detail_is_open() -> None:
    store = demo_store()
    app = make_app(store)
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.pause()
        app.table.move_cursor(row=2)
        assert app.table.cursor_key == "pystats.slice/web"
        # web drops to the bottom of the CPU sort: like htop, the cursor keeps its row.
        store.publish([sample("pystats.slice/web", 40, cores=0.0, mem=MiB, quota=1.0)])
        await app.refresh_data()
        assert app.table.cursor_row == 2 and app.table.cursor_key != "pystats.slice/web"
        # With the detail pane open the cursor follows its cgroup instead.
        app.table.move_cursor(row=order(app).index("pystats.slice/web"))
        await pilot.press("d")
        store.publish([sample("pystats.slice/web", 41, cores=5.0, mem=MiB, quota=1.0)])
        await app.refresh_data()
        assert app.table.cursor_key == "pystats.slice/web" and app.table.cursor_row == 0


async def test_new_sort_shows_the_top_of_the_new_order() -> None:
    app = make_app(big_store(300))
    async with app.run_test(size=(100, 24)) as pilot:
        await pilot.pause()
        await pilot.press("ctrl+end")
        assert app.table.cursor_row == 299
        await pilot.press("r")
        await pilot.pause()
        assert app.table.cursor_row == 0 and app.table.scroll_y == 0


async def test_gc_tuning_is_opt_in_and_freezes_after_the_first_fill() -> None:
    import gc

    before = gc.get_threshold()
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert gc.get_threshold() == before  # tests (the default) leave the interpreter alone
    info = SourceInfo("standalone", "t", "/", "v2", False)
    tuned = PystatsApp(
        StoreSource(demo_store(), info), host=lambda: HOST, autorefresh=False, tune_gc=True
    )
    try:
        async with tuned.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            assert gc.get_freeze_count() > 0
            assert gc.get_threshold()[2] == 1_000_000
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
