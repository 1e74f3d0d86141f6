"""What the table shows, in order: filter, hide unpopulated, sort, tree. Pure, no Textual.

Flat mode sorts every shown row. Tree mode sorts siblings and lists each subtree under its
parent; a collapsed node hides its descendants and shows their count. A filter keeps the
matching rows and, in tree mode, their ancestors (for context).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from agent.statsview.rows import StatsRow, subtree_totals, visible
from agent.tui.columns import BY_KEY


@dataclass(frozen=True, slots=True)
class ViewRow:
    row: StatsRow
    depth: int = 0
    children: int = 0  # shown children (tree mode)
    expanded: bool = True
    hidden: int = 0  # descendants hidden by collapse

    @property
    def key(self) -> str:
        return self.row.path

    def label(self, tree: bool) -> str:
        r = self.row
        if not tree:
            name = r.workload or (r.path or "/")
        else:
            mark = ("▾ " if self.expanded else "▸ ") if self.children else "  "
            name = "  " * self.depth + mark + r.name
            if self.hidden:
                name += f" (+{self.hidden})"
        if r.gone:
            name += " (gone)"
        elif r.frozen:
            name += " (frozen)"
        return name


@dataclass(slots=True)
class ViewState:
    sort_key: str = "cpu"
    reverse: bool = True  # biggest first, like top
    filter: str = ""
    tree: bool = False
    show_all: bool = False
    collapsed: set[str] = field(default_factory=set)


def _matches(r: StatsRow, needle: str) -> bool:
    return needle in r.path.lower() or needle in r.name.lower()


def build_view(rows: Iterable[StatsRow], st: ViewState) -> list[ViewRow]:
    shown = visible(rows, st.show_all)
    col = BY_KEY.get(st.sort_key, BY_KEY["cpu"])
    needle = st.filter.lower()
    if not st.tree:
        if needle:
            shown = [r for r in shown if _matches(r, needle)]
        # Ties broken by path so the order is stable tick to tick.
        shown.sort(key=lambda r: r.path)
        shown.sort(key=col.sort_value, reverse=st.reverse)
        return [ViewRow(r) for r in shown]
    return _tree(shown, st, col.sort_value, needle)


def _tree(
    shown: Sequence[StatsRow], st: ViewState, sort_value: object, needle: str
) -> list[ViewRow]:
    totals = subtree_totals(shown)
    by_path = {r.path: totals[r.path] for r in shown}
    keep = set(by_path)
    if needle:
        keep = set()
        for r in by_path.values():
            if _matches(r, needle):
                p: str | None = r.path
                while p is not None and p in by_path and p not in keep:
                    keep.add(p)
                    p = by_path[p].parent
    kids: dict[str | None, list[StatsRow]] = {}
    for path in keep:
        r = by_path[path]
        parent = r.parent if r.parent in keep else None
        kids.setdefault(parent, []).append(r)
    key = sort_value  # a Column.sort_value
    for lst in kids.values():
        lst.sort(key=lambda r: r.path)
        lst.sort(key=key, reverse=st.reverse)  # type: ignore[arg-type]

    def count(path: str) -> int:
        return sum(1 + count(c.path) for c in kids.get(path, ()))

    out: list[ViewRow] = []
    stack: list[tuple[StatsRow, int]] = [(r, 0) for r in reversed(kids.get(None, []))]
    while stack:
        r, depth = stack.pop()
        children = kids.get(r.path, [])
        expanded = r.path not in st.collapsed
        hidden = 0 if expanded or not children else count(r.path)
        out.append(ViewRow(r, depth, len(children), expanded, hidden))
        if expanded:
            stack.extend((c, depth + 1) for c in reversed(children))
    return out
