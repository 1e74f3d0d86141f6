"""The agent logs each OOM kill once, with the workload and the victim when known."""

from __future__ import annotations

import asyncio
import logging

import pytest

from agent.oomlog import describe, log_oom_kills
from collectors.sample import OomEvent
from collectors.store import Store


def test_describe_names_workload_and_victim() -> None:
    ev = OomEvent("pystats/workloads/hog", 0.0, 1, 3, pid=412, comm="python3")
    assert describe(ev, {"workload": "hog"}) == (
        "OOM kill: killed PID 412 (python3) in cgroup /pystats/workloads/hog (workload hog); "
        "oom_kill now 3"
    )
    assert describe(OomEvent("a/b", 0.0, 2, 2), {}) == "OOM kill x2 in cgroup /a/b; oom_kill now 2"


async def test_each_kill_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    store = Store(history_len=4)
    store.publish([], oom=[OomEvent("old", 0.0, 1, 1)])  # before the agent looked: not logged
    task = asyncio.create_task(log_oom_kills(store, lambda p: {}))
    await asyncio.sleep(0)
    with caplog.at_level(logging.WARNING, logger="pystats.agent"):
        store.record_oom([OomEvent("x", 0.0, 1, 1, pid=7)])
        store.publish([], oom=[OomEvent("y", 0.0, 1, 1)])
        await asyncio.sleep(0.01)
        store.publish([])
        await asyncio.sleep(0.01)
    task.cancel()
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "OOM kill: killed PID 7 in cgroup /x; oom_kill now 1",
        "OOM kill in cgroup /y; oom_kill now 1",
    ]
