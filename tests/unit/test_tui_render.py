"""The table's fast cell renderer draws exactly what DataTable's stock renderer draws."""

from __future__ import annotations

from rich.segment import Segment
from rich.style import Style
from textual.widgets import DataTable

from agent.statsview.fake import T0, demo_store
from agent.tui.app import PystatsApp
from agent.tui.host import HostStats
from agent.tui.sources import SourceInfo, StoreSource


def _chars(lines: list[list[Segment]]) -> list[list[tuple[str, Style | None]]]:
    """Per-character (text, style) so that different segmentations compare equal."""
    return [[(ch, seg.style) for seg in line for ch in seg.text] for line in lines]


async def test_fast_cells_match_stock_rendering() -> None:
    info = SourceInfo("standalone", "t", "/", "v2", False)
    app = PystatsApp(
        StoreSource(demo_store(), info, names={"pystats.slice/web": "web"}),
        clock=lambda: T0,
        host=lambda: HostStats(1.0, 1, 2, 2),
        autorefresh=False,
    )
    async with app.run_test(size=(160, 30)) as pilot:
        await pilot.pause()
        table = app.table
        base = table.rich_style
        compared = 0
        for row in range(table.row_count):
            for col, column in enumerate(table.ordered_columns):
                width = column.get_render_width(table)
                for cursor, hover in ((False, False), (True, False), (False, True)):
                    fast = table._render_cell(row, col, base, width, cursor, hover)
                    table._cell_render_cache.clear()
                    stock = DataTable._render_cell(table, row, col, base, width, cursor, hover)
                    assert _chars(fast) == _chars(stock), (row, column.key, cursor, hover)
                    compared += 1
        assert compared == table.row_count * len(table.ordered_columns) * 3
        # Narrow: names cropped the same way.
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        for row in range(table.row_count):
            w = table.ordered_columns[0].get_render_width(table)
            fast = table._render_cell(row, 0, base, w)
            table._cell_render_cache.clear()
            assert _chars(fast) == _chars(DataTable._render_cell(table, row, 0, base, w))
