"""The replay source: the live view on recorded history (`pystats replay --at TIME`).

It plugs in like the local and agent sources; the view stays on one recorded tick until a
step key moves it ([ ] a tick, { } a minute). Reading and decoding run in a worker thread.
No agent is needed: the store's segments are read directly (also while an agent writes them).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import replace

from agent.statsview.history import History
from agent.statsview.jsonio import StatsDoc
from agent.statsview.recorded import doc_at, history_of, names_from_events
from agent.statsview.rows import RowCache
from agent.tui.sources import ActionUnavailable, SourceInfo
from collectors.recorder.events import RecordedEvent
from collectors.recorder.reader import HistoryReader

MINUTE = 60.0


def label(wall: float) -> str:
    """The header's source: "replay@07:45:44 2026-12-07" (narrow: the part before the space)."""
    return time.strftime("replay@%H:%M:%S %Y-%m-%d", time.localtime(wall))


class ReplaySource:
    def __init__(self, directory: str, at: float, interval_s: float = 1.0) -> None:
        self.reader = HistoryReader(directory)
        self.directory = directory
        self.at = at
        self.interval_s = interval_s
        self.info = SourceInfo("replay", label(at), "", "recorded", False)
        self._moves: list[tuple[str, float]] = []  # ("tick", n) / ("seconds", s), pending
        self._moved = asyncio.Event()
        self._cache = RowCache()
        self._events: list[RecordedEvent] = []
        self._names: dict[str, str] = {}

    async def start(self) -> None:
        await asyncio.to_thread(self._open)

    def _open(self) -> None:
        self.at = self.reader.tick_near(self.at)
        self._events = list(self.reader.events())
        self._names = names_from_events(self._events)

    async def close(self) -> None:
        return None

    def step(self, ticks: int) -> None:
        self._moves.append(("tick", float(ticks)))
        self._moved.set()

    def step_seconds(self, seconds: float) -> None:
        self._moves.append(("seconds", seconds))
        self._moved.set()

    def _apply_moves(self) -> None:
        moves, self._moves = self._moves, []
        r = self.reader
        for kind, n in moves:
            if kind == "tick":
                self.at = r.step(self.at, int(n))
            elif n < 0:
                self.at = r.tick_near(self.at + n)
            else:  # forwards: the last tick within the minute ahead (never past the end)
                self.at = max(self.at, r.tick_near(self.at + n))

    def _fetch_sync(self) -> StatsDoc:
        self._apply_moves()
        snap = self.reader.at(self.at)
        self.info = replace(self.info, label=label(snap.wall))
        return doc_at(snap, self._names, cache=self._cache, interval_s=self.interval_s)

    async def fetch(self) -> StatsDoc:
        return await asyncio.to_thread(self._fetch_sync)

    async def history(self, path: str) -> History | None:
        points = await asyncio.to_thread(self.reader.series, path)
        if not points:
            return None
        return history_of(path, points, self._events, self.at)

    async def wait(self) -> None:
        """Until a step key moves the view (recorded data does not change by itself)."""
        with contextlib.suppress(TimeoutError):  # asyncio.timeout, not wait_for: on 3.11
            async with asyncio.timeout(3600):  # wait_for can swallow a cancellation
                await self._moved.wait()
        self._moved.clear()

    async def act(self, action: str, path: str, workload: str | None) -> None:
        raise ActionUnavailable(f"{action} is not possible in a replay of recorded history")
