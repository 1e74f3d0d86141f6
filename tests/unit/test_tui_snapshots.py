"""Snapshots of the live view at fixed sizes, fed from a fixed store with a fixed clock.

Update after an intended change with: pytest tests/unit/test_tui_snapshots.py --snapshot-update
(then look at the SVGs in tests/unit/__snapshots__/).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from textual.pilot import Pilot

from agent.statsview.fake import T0, demo_store
from agent.tui.app import PystatsApp
from agent.tui.host import HostStats
from agent.tui.sources import SourceInfo, StoreSource

SnapCompare = Callable[..., bool]


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Clock strings are local time: pin the zone so snapshots are the same everywhere."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def app(mode: str = "hybrid v1/v2 (no cpu, io, memory, pids)") -> PystatsApp:
    info = SourceInfo(
        "standalone", "standalone /sys/fs/cgroup/unified", "/sys/fs/cgroup/unified", mode, False
    )
    src = StoreSource(demo_store(), info, names={"pystats.slice/web": "web"}, clock=lambda: T0 + 30)
    return PystatsApp(
        src,
        clock=lambda: T0 + 30,
        host=lambda: HostStats(37.0, 5 << 30, 16 << 30, 4),
        autorefresh=False,
    )


async def _settle(pilot: Pilot[Any]) -> None:
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def test_flat_80x24(snap_compare: SnapCompare) -> None:
    assert snap_compare(app(), terminal_size=(80, 24), run_before=_settle)


def test_flat_wide_160x30(snap_compare: SnapCompare) -> None:
    assert snap_compare(app("pure cgroup v2"), terminal_size=(160, 30), run_before=_settle)


def test_tree_with_detail_120x32(snap_compare: SnapCompare) -> None:
    async def before(pilot: Pilot[Any]) -> None:
        await pilot.press("t")
        tbl = pilot.app.table  # type: ignore[attr-defined]
        tbl.move_cursor(row=list(tbl.order).index("pystats.slice/batch"))
        await pilot.press("d")
        await _settle(pilot)

    assert snap_compare(app(), terminal_size=(120, 32), run_before=before)


def test_filter_80x24(snap_compare: SnapCompare) -> None:
    async def before(pilot: Pilot[Any]) -> None:
        await pilot.press("slash", *"system", "enter")
        await _settle(pilot)

    assert snap_compare(app(), terminal_size=(80, 24), run_before=before)


def test_help_80x24(snap_compare: SnapCompare) -> None:
    async def before(pilot: Pilot[Any]) -> None:
        await pilot.press("question_mark")
        await _settle(pilot)

    assert snap_compare(app(), terminal_size=(80, 24), run_before=before)
