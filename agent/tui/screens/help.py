"""`?`: the key bindings and what each column means."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from agent.tui.columns import COLUMNS

KEYS = (
    ("q", "quit"),
    ("?", "this help"),
    ("/", "filter by text (path or name); Esc clears"),
    ("s / S", "sort by next / previous column"),
    ("1-9, 0", "sort by the Nth shown column"),
    ("r", "reverse the sort order"),
    ("t", "tree mode (subtree totals)"),
    ("→ / ←, space", "expand / collapse a tree node"),
    ("a", "show all cgroups (also unpopulated ones)"),
    ("d, Enter", "detail pane of the selected cgroup"),
    ("p", "pause / resume"),
    ("+ / -", "refresh interval"),
    ("f / u", "freeze / thaw (agent)"),
    ("x / K", "stop / kill the workload (agent)"),
)


def help_table() -> Table:
    t = Table.grid(padding=(0, 2))
    t.add_column(style="bold cyan")
    t.add_column()
    for k, v in KEYS:
        t.add_row(Text(k), Text(v))
    t.add_row("", "")
    for c in COLUMNS:
        t.add_row(Text(c.label), Text(c.help))
    t.add_row("", "")
    t.add_row(Text("-"), Text("unavailable (controller absent or not read yet), never zero"))
    return t


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box"):
            yield Static(help_table())

    def action_dismiss(self, result: None = None) -> None:  # type: ignore[override]
        self.dismiss(None)
