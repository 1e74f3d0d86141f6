"""Logs every OOM kill the collector sees, once, with the victim where the kernel log named it:
the operator reading the journal learns of a kill without a dashboard."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from collectors.sample import OomEvent
from collectors.store import Store

log = logging.getLogger("pystats.agent")


def describe(ev: OomEvent, labels: Mapping[str, str]) -> str:
    who = f" (workload {labels['workload']})" if labels.get("workload") else ""
    return f"{ev.what()} in cgroup /{ev.cgroup}{who}; oom_kill now {ev.total}"


async def log_oom_kills(store: Store, labels: Callable[[str], Mapping[str, str]]) -> None:
    seen = store.stats.oom_events  # only kills from now on: earlier ones were logged before
    while True:
        await store.wait_tick()
        total = store.stats.oom_events
        if total == seen:
            continue
        events = store.oom_events()
        for ev in events[max(0, len(events) - (total - seen)) :]:
            log.warning("%s", describe(ev, labels(ev.cgroup)))
        seen = total
