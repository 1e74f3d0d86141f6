"""The agent's recorder part: every tick of the store and the agent's events to durable history.

Runs on the event loop only to hand over references (a TickEntry per store entry, ~1 ms at
1,000 cgroups); encoding, compression and writing happen on the recorder's thread, which sheds
ticks when it falls behind. OOM kills, workload starts/exits/restarts, placements and the
agent's own start and stop go to the events stream. ``oom_counts`` keeps a counter per cgroup
that survives the cgroup's removal and the agent's restart: it is seeded from the recorded
events at start (exported as pystats_cgroup_oom_kills_recorded_total).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable, Mapping

from agent.config import AgentConfig
from agent.events import EventLog
from collectors.rates import HostInfo
from collectors.recorder.codec import TickEntry, TickInput
from collectors.recorder.events import RecordedEvent, from_oom
from collectors.recorder.reader import HistoryReader
from collectors.recorder.retention import segments
from collectors.recorder.writer import Recorder, RecorderConfig, history_dir_of
from collectors.store import Store

log = logging.getLogger("pystats.agent")
_PLACED = re.compile(r"placed (\d+) \(([^)]*)\)")


def tick_input(store: Store, host: HostInfo) -> TickInput:
    """The store's current tick as the recorder takes it (references only)."""
    entries = [
        TickEntry(p, e.sample, e.rates, e.gone, e.stale_ticks > 0, e.first_seen_wall)
        for p, e in store.entries.items()
    ]
    return TickInput(time.monotonic(), time.time(), entries, host)


class DurableEventLog(EventLog):
    """The live view's per-cgroup event log, each event also handed to ``sink``."""

    def __init__(self, sink: Callable[[str, str, str, float], None]) -> None:
        super().__init__()
        self._sink = sink

    def add(self, path: str, kind: str, text: str, wall: float | None = None) -> None:
        w = time.time() if wall is None else wall
        super().add(path, kind, text, w)
        self._sink(path, kind, text, w)


class AgentRecorder:
    def __init__(
        self,
        cfg: AgentConfig,
        store: Store,
        host: HostInfo,
        labels: Callable[[str], Mapping[str, str]],
    ) -> None:
        self.store = store
        self.host = host
        self.labels = labels
        self.directory = history_dir_of(cfg.state_dir)
        self.recorder = Recorder(
            RecorderConfig(
                self.directory,
                max_age_s=cfg.history_retention_s,
                max_bytes=cfg.history_max_bytes,
            )
        )
        self.events = DurableEventLog(self._agent_event)
        self._oom: dict[tuple[str, str], int] = {}  # (cgroup, workload) -> kills, all time
        self._started = False
        self._disk = (0.0, 0)  # (monotonic time, bytes) of the last directory listing

    # --- the part ----------------------------------------------------------------------------
    async def run(self) -> None:
        if not self._started:
            self._started = True
            try:
                await asyncio.to_thread(self._start)
            except OSError as e:
                self.recorder.stats.stopped = f"cannot use {self.directory}: {e}"
                log.error("history recording off: %s", self.recorder.stats.stopped)
                return
            self.recorder.submit_event(RecordedEvent(time.time(), "agent_start", text="started"))
        store = self.store
        seen = store.stats.oom_events
        while True:
            await store.wait_tick()
            self.recorder.submit_tick(tick_input(store, self.host))
            total = store.stats.oom_events
            if total != seen:
                events = store.oom_events()
                for ev in events[max(0, len(events) - (total - seen)) :]:
                    w = self.labels(ev.cgroup).get("workload")
                    self._count_oom(ev.cgroup, w or "", ev.count)
                    self.recorder.submit_event(from_oom(ev, w))
                seen = total

    def _start(self) -> None:
        """Blocking: recovery of unfinished segments, the OOM counters from recorded events."""
        self.recorder.start()
        reader = HistoryReader(self.directory)
        for ev in reader.events():
            if ev.kind == "oom":
                self._count_oom(ev.cgroup, ev.workload or "", ev.count)
        for p in reader.problems:
            log.warning("history: %s", p)

    def _count_oom(self, cgroup: str, workload: str, n: int) -> None:
        key = (cgroup, workload)
        self._oom[key] = self._oom.get(key, 0) + n

    def close(self) -> None:
        if self._started:
            self.recorder.submit_event(RecordedEvent(time.time(), "agent_stop", text="stopped"))
        self.recorder.close()

    # --- events from the agent's EventLog ----------------------------------------------------
    def _agent_event(self, path: str, kind: str, text: str, wall: float) -> None:
        workload = self.labels(path).get("workload")
        pid = comm = None
        if kind == "launch":
            kind = "restart" if "(restart" in text else "start"
        elif kind == "placement":
            m = _PLACED.match(text)
            if m is not None:
                pid, comm = int(m[1]), m[2]
        self.recorder.submit_event(RecordedEvent(wall, kind, path, workload, pid, comm, text=text))

    # --- for `inspect` -----------------------------------------------------------------------
    def oom_kills(self, workload: str) -> list[RecordedEvent]:
        """Blocking (reads the events stream; call it in a thread): every recorded OOM kill of
        a workload, oldest first, with its victim (pid, comm) where the kernel log named it."""
        reader = HistoryReader(self.directory)
        return [e for e in reader.events() if e.kind == "oom" and e.workload == workload]

    # --- metrics -----------------------------------------------------------------------------
    def oom_counts(self) -> Mapping[tuple[str, str], int]:
        return self._oom

    def values(self) -> Mapping[str, float]:
        st = self.recorder.stats
        now = time.monotonic()
        if now - self._disk[0] > 30.0:  # a directory listing, at most twice a minute
            self._disk = (now, sum(s.size for s in segments(self.directory)))
        return {
            "ticks_recorded": st.ticks_recorded,
            "ticks_dropped": st.ticks_dropped,
            "events_recorded": st.events_recorded,
            "bytes_written": st.bytes_written,
            "disk_bytes": self._disk[1],
            "cpu_seconds": st.encode_seconds,
            "stopped": 0 if st.stopped is None else 1,
        }
