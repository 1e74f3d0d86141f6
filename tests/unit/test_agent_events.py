"""The agent's own events for the detail pane: workload launches and exits, bounded."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from agent.events import EventLog, placement_events, watch_workloads, workload_events


def test_event_log_is_bounded_per_cgroup_and_in_cgroups() -> None:
    log = EventLog(per_cgroup=2, max_cgroups=2)
    for i in range(3):
        log.add("a", "launch", f"a{i}", wall=float(i))
    log.add("b", "launch", "b0")
    log.add("a", "exit", "a3")  # a is now the most recent
    log.add("c", "launch", "c0")  # evicts b, the least recently heard from
    assert [e.text for e in log.events("a")] == ["a2", "a3"]
    assert list(log.events("b")) == []
    assert [e.kind for e in log.events("c")] == ["launch"]


def test_workload_transitions() -> None:
    running = {"state": "running", "run": 1, "argv": ["sleep", "9"], "restart_count": 0}
    assert workload_events(None, running) == [("launch", "launched: sleep 9")]
    assert workload_events(running, dict(running)) == []
    exited = {**running, "state": "exited", "exit_code": 137, "oom_killed": True}
    assert workload_events(running, exited) == [("exit", "exited with status 137, OOM-killed")]
    again = {**running, "run": 2, "restart_count": 1}
    assert workload_events(exited, again) == [("launch", "launched (restart 1): sleep 9")]


class FakeManager:
    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = [{"name": "old", "state": "running", "run": 1}]
        self.changed = asyncio.Event()

    def listing(self, all_: bool = False) -> list[dict[str, Any]]:
        return [dict(r) for r in self.records]

    async def wait_changed(self, timeout: float) -> None:
        await self.changed.wait()
        self.changed.clear()


async def test_watch_reports_changes_not_the_workloads_found_at_start() -> None:
    mgr, log = FakeManager(), EventLog()
    task = asyncio.create_task(watch_workloads(mgr, log, lambda n: f"pystats/workloads/{n}"))
    await asyncio.sleep(0)
    mgr.records.append({"name": "web", "state": "running", "run": 1, "argv": ["httpd"]})
    mgr.changed.set()
    await asyncio.sleep(0.01)
    mgr.records[1] = {"name": "web", "state": "exited", "run": 1, "exit_code": 3}
    mgr.changed.set()
    await asyncio.sleep(0.01)
    task.cancel()
    assert list(log.events("pystats/workloads/old")) == []
    assert [(e.kind, e.text) for e in log.events("pystats/workloads/web")] == [
        ("launch", "launched: httpd"),
        ("exit", "exited with status 3"),
    ]


async def test_placements_from_another_thread_land_on_the_group() -> None:
    log = EventLog()
    placed = placement_events(log, "pystats/")
    t = threading.Thread(target=placed, args=(42, "make", "build/jobs", "rule at line 3"))
    t.start()
    t.join()
    await asyncio.sleep(0.01)  # handed to the loop, not written from the thread
    [ev] = log.events("pystats/policies/build/jobs")
    assert (ev.kind, ev.text) == ("placement", "placed 42 (make): rule at line 3")
