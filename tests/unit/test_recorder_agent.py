"""The agent's recorder part: store ticks and events to disk; OOM counters across restarts."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from pathlib import Path

from agent.config import AgentConfig
from agent.recording import AgentRecorder
from collectors.recorder.reader import HistoryReader
from collectors.sample import OomEvent
from collectors.store import Store
from tests.unit.history_synth import HOST, SyntheticHost


def _labels(path: str) -> Mapping[str, str]:
    return {"workload": "web"} if path.endswith("c1") else {}


async def _run_ticks(state: Path, ticks: int, oom: list[OomEvent]) -> AgentRecorder:
    store = Store()
    rec = AgentRecorder(AgentConfig(state_dir=str(state)), store, HOST, _labels)
    task = asyncio.create_task(rec.run())
    h = SyntheticHost(8)
    await asyncio.sleep(0.3)  # start-up (recovery, seeding) runs in a thread
    for k in range(ticks):
        t = h.next_tick()
        store.publish(
            [(e.sample, e.rates) for e in t.entries], oom=oom if k == 1 else (), mono=t.mono
        )
        await asyncio.sleep(0.05)
    rec.events.add("workloads/w0/c1", "launch", "launched (restart 2): sleep 1")
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    rec.close()
    return rec


async def test_ticks_events_and_oom_counter_survive_a_restart(tmp_path: Path) -> None:
    kill = OomEvent("workloads/w0/c1", time.time() + 0.1, 2, 2, pid=412, comm="python3")
    rec = await _run_ticks(tmp_path, 4, [kill])
    assert rec.oom_counts() == {("workloads/w0/c1", "web"): 2}
    r = HistoryReader(str(tmp_path / "history"))
    span = r.span()
    assert span is not None
    snap = r.at(span[1])
    assert len(snap.entries) == 8
    kinds = [(e.kind, e.workload, e.pid) for e in r.events()]
    assert kinds == [
        ("agent_start", None, None),
        ("oom", "web", 412),
        ("restart", "web", None),
        ("agent_stop", None, None),
    ]
    # The cgroup is gone and the agent restarts: the counter goes on from the durable events.
    rec2 = await _run_ticks(tmp_path, 2, [])
    assert rec2.oom_counts() == {("workloads/w0/c1", "web"): 2}
    assert rec2.values()["ticks_recorded"] == 2
    (oom,) = rec2.oom_kills("web")  # what `inspect` would show
    assert (oom.pid, oom.comm, oom.count) == (412, "python3", 2)
    assert rec2.values()["disk_bytes"] > 0
