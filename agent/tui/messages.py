"""Messages between the view's widgets and its app."""

from __future__ import annotations

from textual.message import Message

from agent.statsview.jsonio import StatsDoc


class DataArrived(Message):
    """A fresh snapshot of rows from the source (posted by the polling worker)."""

    def __init__(self, doc: StatsDoc) -> None:
        super().__init__()
        self.doc = doc


class SourceFailed(Message):
    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error


class ToggleNode(Message):
    """Expand (True), collapse (False) or toggle (None) a tree node."""

    def __init__(self, key: str, expand: bool | None) -> None:
        super().__init__()
        self.key = key
        self.expand = expand
