"""The manager's wait_changed passes a cancellation on even when a wake races it. On Python
3.11 asyncio.wait_for swallowed it (the awaited future was done), so a part looping on it (the
event log's watcher) outlived the agent's TaskGroup: the agent hung at stop, its loop idle."""

from __future__ import annotations

import asyncio

from workloads.lifecycle.manager import WorkloadManager


async def test_a_cancellation_racing_a_wake_is_never_swallowed() -> None:
    m = WorkloadManager.__new__(WorkloadManager)  # wait_changed needs only the condition
    m._changed = asyncio.Condition()
    raced = swallowed = 0
    for i in range(200):
        t = asyncio.create_task(m.wait_changed(5.0))
        await asyncio.sleep(0)  # waiting now
        async with m._changed:
            m._changed.notify_all()
        for _ in range(i % 4):  # cancel at different points of the wake-up
            await asyncio.sleep(0)
        if not t.cancel():
            continue  # it had returned already: nothing to swallow
        raced += 1
        try:
            await t
        except asyncio.CancelledError:
            continue
        swallowed += 1
    assert raced > 0 and swallowed == 0, (raced, swallowed)
