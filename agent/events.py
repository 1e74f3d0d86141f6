"""The agent's own events per cgroup (launches, exits, placements) for the live view's detail
pane, beside the OOM kills the store keeps. Bounded: a few per cgroup, a few thousand cgroups."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from typing import Any

from agent.statsview.history import Event
from workloads.lifecycle.exitinfo import describe_exit
from workloads.supervisor.record import State


class EventLog:
    def __init__(self, per_cgroup: int = 20, max_cgroups: int = 4096) -> None:
        self.per_cgroup = per_cgroup
        self.max_cgroups = max_cgroups
        self._by_path: OrderedDict[str, deque[Event]] = OrderedDict()

    def add(self, path: str, kind: str, text: str, wall: float | None = None) -> None:
        """``path``: the cgroup as the store names it (relative to the collect root)."""
        q = self._by_path.get(path)
        if q is None:
            q = self._by_path[path] = deque(maxlen=self.per_cgroup)
            if len(self._by_path) > self.max_cgroups:
                self._by_path.popitem(last=False)  # the cgroup heard from least recently
        else:
            self._by_path.move_to_end(path)
        q.append(Event(time.time() if wall is None else wall, kind, text))

    def events(self, path: str) -> Iterable[Event]:
        return tuple(self._by_path.get(path, ()))


def workload_events(old: dict[str, Any] | None, new: dict[str, Any]) -> list[tuple[str, str]]:
    """(kind, text) for what changed in one workload's record between two looks."""
    state, run = new.get("state"), new.get("run")
    if old is not None and (old.get("state"), old.get("run")) == (state, run):
        return []
    if state == State.RUNNING and (old is None or old.get("run") != run):
        argv = " ".join(new.get("argv") or [])
        again = f" (restart {new.get('restart_count')})" if new.get("restart_count") else ""
        return [("launch", f"launched{again}: {argv[:60]}")]
    if state == State.EXITED:
        return [("exit", describe_exit(new))]
    return []


async def watch_workloads(manager: Any, log: EventLog, path_of: Callable[[str], str]) -> None:
    """Turn the workload manager's state changes into events (it wakes us on each change)."""
    seen: dict[str, dict[str, Any]] = {d["name"]: d for d in manager.listing(all_=True)}
    while True:
        await manager.wait_changed(5.0)
        now: dict[str, dict[str, Any]] = {d["name"]: d for d in manager.listing(all_=True)}
        for name, d in now.items():
            for kind, text in workload_events(seen.get(name), d):
                log.add(path_of(name), kind, text)
        seen = now


def placement_events(log: EventLog, prefix: str) -> Callable[[int, str, str, str], None]:
    """The policy engine's ``on_placed``: it runs on the engine's threads, so the event is
    handed to the event loop (the log is not thread-safe). ``prefix``: the agent's root as the
    store names it, so the event lands on the group's cgroup."""
    loop = asyncio.get_running_loop()

    def placed(pid: int, comm: str, group: str, reason: str) -> None:
        text = f"placed {pid} ({comm}): {reason}"
        with contextlib.suppress(RuntimeError):  # the loop closed while the agent stops
            loop.call_soon_threadsafe(log.add, f"{prefix}policies/{group}", "placement", text)

    return placed
