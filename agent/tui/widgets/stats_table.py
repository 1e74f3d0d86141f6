"""The cgroup table: a DataTable whose rows are keyed by cgroup path and updated in place.

Each refresh diffs the wanted rows against the shown ones: new rows are added, vanished ones
removed, the order set in one step, and only the rows in the viewport get fresh cells (a cell
is rewritten only when its text or colour changed). Rows scrolled into view later are painted
then. Measured reason (docs anchors): updating every row of a 2,000-row table costs ~127 ms a
tick, the visible ~40 about 80 ms.

Bulk removal and reordering set DataTable's ``_row_locations`` in one step, exactly as its own
``sort()`` does; the public ``remove_row`` renumbers every row per call (quadratic for a filter
that hides thousands). Textual is pinned (requirements.lock); tests cover these paths.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.cells import cell_len, set_cell_size
from rich.console import JustifyMethod
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual._two_way_dict import TwoWayDict
from textual.binding import Binding
from textual.widgets import DataTable
from textual.widgets._data_table import ColumnKey, RowKey

from agent.tui.columns import Column, fit_columns
from agent.tui.messages import ToggleNode
from agent.tui.model import ViewRow

Painted = tuple[tuple[str, str], ...]  # (plain, style) per cell
_FAST_CACHE_MAX = 20_000
SegmentLines = list[list[Segment]]


class StatsTable(DataTable[Text]):
    BINDINGS = [
        Binding("right,l", "expand", "Expand", show=False),
        Binding("left,h", "collapse", "Collapse", show=False),
        Binding("space", "toggle_node", "Expand/collapse", show=False),
    ]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=False, cell_padding=1)
        self.tree_mode = False
        self.shown_columns: list[Column] = []
        self._name_width = 0
        self._order: list[str] = []
        self._view: dict[str, ViewRow] = {}
        self._painted: dict[str, Painted] = {}
        self._seq = 0  # refresh number
        self._painted_seq: dict[str, int] = {}
        self.cells_written = 0  # for the benchmark
        self._sort_mark: tuple[str, bool] | None = None
        # Cell renders keyed by the cell object, not DataTable's global update counter (which
        # every update_cell bumps, so the stock cache misses on every cell after any update).
        self._fast: dict[tuple[object, ...], tuple[Text, SegmentLines]] = {}
        self._styles: dict[tuple[object, ...], tuple[Style, Style, Style]] = {}
        self._styles_text: dict[tuple[object, ...], Style] = {}

    # --- columns -----------------------------------------------------------------------
    def fit(self, width: int) -> bool:
        """Choose columns for ``width``; rebuild the table only when the choice changed."""
        cols, name_w = fit_columns(width)
        if [c.key for c in cols] == [
            c.key for c in self.shown_columns
        ] and name_w == self._name_width:
            return False
        self.shown_columns, self._name_width = cols, name_w
        cursor_key = self.cursor_key
        self.clear(columns=True)
        for c in cols:
            w = name_w if c.key == "name" else c.width
            self.add_column(
                Text(c.label, justify="left" if c.key == "name" else "right"), width=w, key=c.key
            )
        self._painted.clear()
        self._painted_seq.clear()
        mark, self._sort_mark = self._sort_mark, None
        if mark is not None:
            self.mark_sort(*mark)
        order, self._order = self._order, []
        self._apply_order([self._view[k] for k in order if k in self._view], cursor_key)
        return True

    def mark_sort(self, key: str, reverse: bool) -> None:
        """Show the sort column and direction in the header (▼ biggest first)."""
        if (key, reverse) == self._sort_mark:
            return
        self._sort_mark = (key, reverse)
        for c in self.shown_columns:
            col = self.columns.get(ColumnKey(c.key))
            if col is None:
                continue
            label = c.label + (("▼" if reverse else "▲") if c.key == key else "")
            col.label = Text(label, justify="left" if c.key == "name" else "right")
        self._update_count += 1
        self.refresh()

    # --- rows --------------------------------------------------------------------------
    @property
    def cursor_key(self) -> str | None:
        if not self._order or not self.is_valid_row_index(self.cursor_row):
            return None
        return self._order[self.cursor_row]

    @property
    def order(self) -> Sequence[str]:
        return self._order

    def view_row(self, key: str) -> ViewRow | None:
        return self._view.get(key)

    def show(self, rows: Sequence[ViewRow], tree: bool, follow: bool = True) -> None:
        """Make the table show ``rows`` in this order; paint the visible ones.

        ``follow``: keep the cursor on the same cgroup (after a user's sort, filter or tree
        change, or while its detail is open). Otherwise, as in htop, the cursor keeps its
        row and the view does not jump when a tick re-sorts the rows.
        """
        self._seq += 1
        if tree != self.tree_mode:
            self.tree_mode = tree
            self._painted.clear()
        self._view = {r.key: r for r in rows}
        self._apply_order(rows, self.cursor_key if follow else None)

    def _apply_order(self, rows: Sequence[ViewRow], cursor_key: str | None) -> None:
        want = [r.key for r in rows]
        have = set(self._order)
        wanted = set(want)
        gone = [k for k in self._order if k not in wanted]
        if gone:
            self._remove(gone)
        for r in rows:
            if r.key not in have:
                cells = self._cells(r)
                self.add_row(
                    *(
                        Text(p, style=s, justify=j)
                        for (p, s), j in zip(cells, self._justify(), strict=True)
                    ),
                    key=r.key,
                )
                self._painted[r.key] = cells
                self._painted_seq[r.key] = self._seq
        self._set_order(want)
        if cursor_key is not None and cursor_key in wanted:
            idx = want.index(cursor_key)
            if idx != self.cursor_row:
                self.move_cursor(row=idx, animate=False, scroll=False)
        self.paint_visible()

    def _set_order(self, want: list[str]) -> None:
        self._order = want
        current = [self._row_locations.get_key(i) for i in range(len(want))]
        if [k.value if k is not None else None for k in current] == want:
            return
        self._row_locations = TwoWayDict({RowKey(k): i for i, k in enumerate(want)})
        self._update_count += 1
        self.refresh()

    def _remove(self, keys: list[str]) -> None:
        drop = set(keys)
        if len(keys) <= 8:
            for k in keys:
                self.remove_row(k)
        else:
            for k in keys:
                rk = RowKey(k)
                del self.rows[rk]
                del self._data[rk]
            keep = [k for k in self._order if k not in drop]
            self._row_locations = TwoWayDict({RowKey(k): i for i, k in enumerate(keep)})
            self._require_update_dimensions = True
            self._update_count += 1
            self.cursor_coordinate = self.cursor_coordinate
            self.refresh(layout=True)
            self.check_idle()
        self._order = [k for k in self._order if k not in drop]
        for k in keys:
            self._painted.pop(k, None)
            self._painted_seq.pop(k, None)

    def _justify(self) -> list[JustifyMethod]:
        left: JustifyMethod = "left"
        right: JustifyMethod = "right"
        return [left if c.key == "name" else right for c in self.shown_columns]

    def _cells(self, vr: ViewRow) -> Painted:
        out = []
        for c in self.shown_columns:
            if c.key == "name":
                label = vr.label(self.tree_mode)
                if len(label) > self._name_width and not self.tree_mode:
                    # Keep the tail of a long path: its last component names the cgroup.
                    label = "…" + label[len(label) - self._name_width + 1 :]
                t = Text(label, style="dim" if vr.row.gone else "")
            else:
                t = c.cell(vr.row)
            out.append((t.plain, str(t.style)))
        return tuple(out)

    def visible_range(self) -> range:
        top = int(self.scroll_y)
        height = max(0, self.size.height - (self.header_height if self.show_header else 0))
        return range(top, min(len(self._order), top + height + 1))

    def paint_visible(self) -> int:
        """Rewrite the changed cells of rows in the viewport; returns how many were written.

        Cells go straight into DataTable's data with one refresh for the batch: update_cell
        would refresh (and invalidate every render cache) once per cell.
        """
        written = 0
        seq = self._seq
        justify = self._justify()
        col_keys = [ColumnKey(c.key) for c in self.shown_columns]
        data = self._data
        for i in self.visible_range():
            key = self._order[i]
            if self._painted_seq.get(key) == seq:
                continue
            vr = self._view[key]
            cells = self._cells(vr)
            old = self._painted.get(key)
            row_data = data[RowKey(key)]
            for j, cell in enumerate(cells):
                if old is None or old[j] != cell:
                    p, s = cell
                    row_data[col_keys[j]] = Text(p, style=s, justify=justify[j])
                    written += 1
            self._painted[key] = cells
            self._painted_seq[key] = seq
        if written:
            self._update_count += 1
            self.refresh()
        self.cells_written += written
        return written

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if round(old_value) != round(new_value) and self.is_mounted:
            self.paint_visible()

    def on_resize(self) -> None:
        self.paint_visible()

    # --- rendering -------------------------------------------------------------------------
    def _render_cell(
        self,
        row_index: int,
        column_index: int,
        base_style: Style,
        width: int,
        cursor: bool = False,
        hover: bool = False,
    ) -> SegmentLines:
        """One-line plain Text cells rendered straight to segments (same output as the stock
        path, which goes through Padding/Styled/render_lines and costs ~10x more per cell).
        Header, labels and anything else take the stock path."""
        if row_index < 0 or column_index < 0:
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        row_key = self._row_locations.get_key(row_index)
        column_key = self._column_locations.get_key(column_index)
        row = self.rows.get(row_key) if row_key is not None else None
        cell = None
        if row is not None and row_key is not None and column_key is not None:
            cell = self._data[row_key].get(column_key)
        if (
            not isinstance(cell, Text)
            or row is None
            or row.height != 1
            or cell.spans
            or "\n" in cell.plain
            or row_index < self.fixed_rows
            or column_index < self.fixed_columns
        ):
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        key = (
            row_key,
            column_key,
            row_index,
            base_style,
            cursor,
            hover,
            self._show_hover_cursor,
            self._pseudo_class_state,
            width,
            id(cell),
        )
        hit = self._fast.get(key)
        if hit is not None and hit[0] is cell:
            return hit[1]
        # Styles depend on position and cursor state only: cached across ticks (building
        # the row/column meta pickles, the costliest part of a cell).
        skey = (row_index, column_index, *key[3:8])
        styles = self._styles.get(skey)
        if styles is None:
            component_style, post_style = self._get_styles_to_render_cell(
                False,
                False,
                False,
                hover,
                cursor,
                self.show_cursor,
                self._show_hover_cursor,
                self.cursor_foreground_priority == "css",
                self.cursor_background_priority == "css",
            )
            pre = base_style + Style.from_meta({"row": row_index, "column": column_index})
            pre += component_style
            styles = (pre, post_style, pre + post_style)
            if len(self._styles) >= _FAST_CACHE_MAX:
                self._styles.clear()
            self._styles[skey] = styles
        pre, post_style, edge_style = styles
        pad = self.cell_padding
        inner = max(0, width - 2 * pad)
        plain = cell.plain
        if cell_len(plain) > inner:
            plain = set_cell_size(plain, inner)
        elif cell.justify == "right":
            plain = " " * (inner - cell_len(plain)) + plain
        tkey = (skey, str(cell.style))
        text_style = self._styles_text.get(tkey)
        if text_style is None:
            text_style = pre + self.app.console.get_style(cell.style) + post_style
            if len(self._styles_text) >= _FAST_CACHE_MAX:
                self._styles_text.clear()
            self._styles_text[tkey] = text_style
        edge = Segment(" " * pad, edge_style)
        fill = inner - cell_len(plain)
        line = [edge, Segment(plain, text_style)]
        if fill:
            line.append(Segment(" " * fill, edge_style))
        line.append(edge)
        lines: SegmentLines = [line]
        if len(self._fast) >= _FAST_CACHE_MAX:
            self._fast.clear()
        self._fast[key] = (cell, lines)
        return lines

    # --- tree keys ---------------------------------------------------------------------
    def _node_key(self) -> str | None:
        key = self.cursor_key
        if not self.tree_mode or key is None:
            return None
        return key

    def action_expand(self) -> None:
        key = self._node_key()
        if key is None:
            self.action_cursor_right()
        else:
            self.post_message(ToggleNode(key, True))

    def action_collapse(self) -> None:
        key = self._node_key()
        if key is None:
            self.action_cursor_left()
            return
        vr = self._view.get(key)
        if vr is not None and (not vr.children or not vr.expanded) and vr.row.parent in self._view:
            # On a leaf or a collapsed node, "left" jumps to the parent, as file trees do.
            self.move_cursor(row=self._order.index(vr.row.parent or ""), animate=False)
            return
        self.post_message(ToggleNode(key, False))

    def action_toggle_node(self) -> None:
        key = self._node_key()
        if key is not None:
            self.post_message(ToggleNode(key, None))
