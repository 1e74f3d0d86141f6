"""Where the live view and `pystats stats` get rows: a store (standalone) or an agent's socket.

No Textual here: `pystats stats` uses these too and must start fast.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from agent.statsview.history import History, history_from_store
from agent.statsview.jsonio import StatsDoc
from agent.statsview.rows import RowCache
from cgroupfs.errors import CgroupError
from cgroupfs.mount import CgroupMount, describe_mount, detect
from collectors.store import Store

ACTIONS = ("freeze", "thaw", "stop", "kill")


class ActionUnavailable(Exception):
    """An action that needs an agent (or a workload) was asked of something that has none."""


@dataclass(frozen=True, slots=True)
class SourceInfo:
    kind: str  # "standalone" or "agent"
    label: str  # what the header says, e.g. "agent /run/pystats/agent.sock"
    root: str
    mode: str  # cgroup mode in words
    can_act: bool  # freeze/thaw/stop/kill need an agent


class Source(Protocol):
    info: SourceInfo
    interval_s: float

    async def start(self) -> None: ...
    async def close(self) -> None: ...
    async def fetch(self) -> StatsDoc: ...
    async def history(self, path: str) -> History | None: ...
    async def wait(self) -> None: ...
    async def act(self, action: str, path: str, workload: str | None) -> None: ...


class StoreSource:
    """Rows straight from a Store. Tests feed it a fixed store; standalone mode adds a collector."""

    def __init__(
        self,
        store: Store,
        info: SourceInfo,
        interval_s: float = 1.0,
        names: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.info = info
        self.interval_s = interval_s
        self._names = names
        self._clock = clock
        self._cache = RowCache()

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def fetch(self) -> StatsDoc:
        rows = self._cache.rows(self.store, self._names)
        info = self.info
        return StatsDoc(
            rows,
            self._clock(),
            info.kind,
            info.root,
            info.mode,
            self.store.stats.ticks,
            self.interval_s,
        )

    async def history(self, path: str) -> History | None:
        return history_from_store(self.store, path)

    async def wait(self) -> None:
        # Woken by the next tick; the timeout keeps a fixed (test) store refreshing too.
        with contextlib.suppress(TimeoutError):  # asyncio.timeout, not wait_for: on 3.11
            async with asyncio.timeout(self.interval_s):  # wait_for can swallow a cancellation
                await self.store.wait_tick()

    async def act(self, action: str, path: str, workload: str | None) -> None:
        raise ActionUnavailable(f"{action} needs a running pystats-agent (this view is standalone)")


class CollectorSource(StoreSource):
    """Standalone mode: sample cgroupfs ourselves with the collectors at the view's interval."""

    def __init__(self, store: Store, info: SourceInfo, collector: Any, interval_s: float) -> None:
        super().__init__(store, info, interval_s)
        self.collector = collector
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._set_interval()
        self._task = asyncio.create_task(self.collector.run())

    def _set_interval(self) -> None:
        # The collector reads its interval each tick, so the view's +/- keys take effect live.
        if hasattr(self.collector, "interval_s"):
            self.collector.interval_s = self.interval_s

    async def wait(self) -> None:
        self._set_interval()
        await super().wait()

    async def prime(self, ticks: int = 2) -> None:
        """Run the collector until it has ``ticks`` ticks: rates need two samples (like docker)."""
        if self._task is None:
            await self.start()
        while self.store.stats.ticks < ticks:
            if self._task is not None and self._task.done():
                self._task.result()  # the collector died: raise its error
                raise RuntimeError("the collector stopped")
            with contextlib.suppress(TimeoutError):  # asyncio.timeout, not wait_for: on 3.11
                async with asyncio.timeout(0.5):  # wait_for can swallow a cancellation
                    await self.store.wait_tick()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        close = getattr(self.collector, "close", None)
        if close is not None:
            close()


class AgentSource:
    """Rows from a running agent's /v1/stats; actions through its API."""

    def __init__(self, client: Any, interval_s: float = 1.0) -> None:
        self.client = client
        self.interval_s = interval_s
        self.info = SourceInfo("agent", f"agent {client.socket_path}", "", "", True)

    async def start(self) -> None:
        doc = await self.client.stats()
        self.info = SourceInfo("agent", self.info.label, doc.root, doc.mode, True)

    async def close(self) -> None:
        await self.client.close()

    async def fetch(self) -> StatsDoc:
        doc: StatsDoc = await self.client.stats(show_all=True)
        return doc

    async def history(self, path: str) -> History | None:
        h: History = await self.client.history(path)
        return h

    async def wait(self) -> None:
        await asyncio.sleep(self.interval_s)

    async def act(self, action: str, path: str, workload: str | None) -> None:
        if action in ("stop", "kill"):
            if workload is None:
                raise ActionUnavailable(f"{action} works on workloads; {path or '/'} is not one")
            await getattr(self.client, action)(workload)
        elif action in ("freeze", "thaw"):
            await getattr(self.client, action)(path)
        else:
            raise ValueError(action)


def mode_text(mount: CgroupMount | None) -> str:
    return describe_mount(mount)


WANTED = ("cpu", "io", "memory", "pids")


def controllers_text(have: set[str]) -> str:
    """The mode in words from a root's cgroup.controllers, when mount detection says nothing."""
    missing = [c for c in WANTED if c not in have]
    return "cgroup v2" + (f" (no {', '.join(missing)})" if missing else "")


def _detect() -> CgroupMount | None:
    """cgroupfs' mount detection (mode and missing controllers), None when it finds none."""
    try:
        found = detect()
    except CgroupError:
        return None
    return None if found.path is None else found


def open_standalone(root_path: str | None, interval_s: float) -> CollectorSource:
    """Sample cgroupfs ourselves: the detected cgroup2 mount, or ``root_path`` beneath it."""
    from cgroupfs.paths import CgroupRoot
    from cgroupfs.reader import read_file
    from collectors.collector import Collector

    mount = _detect()
    if root_path is None and mount is None:
        raise CgroupError("no cgroup2 mount found; pass --root PATH of a cgroup v2 tree")
    path = root_path or (mount.path if mount is not None and mount.path else "")
    root = CgroupRoot(path)
    try:
        have = set(read_file(root, "", "cgroup.controllers").decode().split())
    except (CgroupError, OSError):
        raise CgroupError(f"{path} is not a cgroup v2 directory (no cgroup.controllers)") from None
    mode = mode_text(mount) if mount is not None else controllers_text(have)
    store = Store()
    collector = Collector(root, store, interval_s=interval_s)
    info = SourceInfo("standalone", f"standalone {path}", path, mode, False)
    return CollectorSource(store, info, collector, interval_s)


async def agent_answers(socket_path: str) -> bool:
    from agent.api.stats_client import StatsClient

    async with StatsClient(socket_path, timeout_s=1.0) as client:
        return await client.ping()


def choose_source(
    socket_path: str, root_path: str | None, interval_s: float, force_standalone: bool = False
) -> Source:
    """The agent when one answers on ``socket_path`` (unless --root or --standalone says no).

    Called outside any event loop: the ping runs in its own short loop, and the chosen source
    opens its connections lazily inside the loop that uses it.
    """
    if not force_standalone and root_path is None and asyncio.run(agent_answers(socket_path)):
        from agent.api.stats_client import StatsClient

        return AgentSource(StatsClient(socket_path), interval_s)
    return open_standalone(root_path, interval_s)
