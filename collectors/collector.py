"""The collector: every tick, discover the tree, sample it in one thread hop, publish to the store.

    collector = Collector(CgroupRoot("/sys/fs/cgroup"), store)
    task = asyncio.create_task(collector.run())   # until cancelled
    ...
    collector.tick_sync()                          # one tick, blocking (tests, --no-stream)

The event loop never touches cgroupfs: discovery, reads, parsing, rates and OOM accounting run
in ``asyncio.to_thread`` (one per tick; one more when a watch fires between ticks), and only
``Store.publish`` runs on the loop. Between ticks, inotify on memory.events reports OOM kills
(``Store.record_oom``) and on cgroup.events refreshes a cgroup that emptied, so its final
counters are fresh if it is removed before the next tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Sequence

from cgroupfs.paths import CgroupRoot
from cgroupfs.reader import KeptReader, walk
from collectors.hostinfo import host_info, system_cpu_usec
from collectors.oom import KmsgVictims
from collectors.sample import OomEvent
from collectors.sampler import BatchResult, Sampler
from collectors.store import Store
from collectors.tree import Tree
from collectors.watch import Watcher


class Collector:
    def __init__(
        self,
        root: CgroupRoot,
        store: Store,
        *,
        interval_s: float = 1.0,
        slow_every: int = 10,
        max_depth: int | None = None,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        host_cpus: int | None = None,
        host_mem: int | None = None,
        idle_every: int = 5,
        watch: bool = True,
        kmsg: bool = True,
        max_fds: int | None = None,
    ) -> None:
        """``idle_every``: unpopulated cgroups are read in full every N ticks (1 = always).
        ``watch``: inotify between ticks on memory.events/cgroup.events, and on directories
        for discovery (falls back to per-tick reads and walks when unavailable).
        ``kmsg``: name OOM victims from /dev/kmsg where readable.
        ``max_fds``: file fds the reader may keep (default: from RLIMIT_NOFILE)."""
        self.root = root
        self.store = store
        self.interval_s = interval_s  # read each tick: may be changed while running
        self.reader = KeptReader(root, max_fds=max_fds)
        self.tree = Tree(
            lambda start, depth: walk(root, depth, start=start),
            include,
            exclude,
            max_depth=max_depth,
            resolve=lambda rel: root.resolve(rel, strict=False),
            watch_dirs=watch,
        )
        self._kmsg = KmsgVictims() if kmsg else None
        self.sampler = Sampler(
            self.reader,
            host_info(host_cpus, host_mem),
            root_path=root.path,
            slow_every=slow_every,
            idle_every=idle_every,
            kmsg=self._kmsg,
        )
        self._watch_wanted = watch
        self.watcher: Watcher | None = None
        self._tick = 0
        self._sys_prev: float | None = None
        self._dirty: set[str] = set()  # cgroup.events changed since the last tick
        self._oom_dirty: set[str] = set()  # memory.events changed, OOM check pending
        self._pending = BatchResult()  # between-tick results published with the next tick
        self._mutex = threading.Lock()  # the sampler's state: one batch at a time
        self._between: asyncio.Task[None] | None = None
        self._watch_all = False  # add watches for every known cgroup at the next tick

    # --- one tick ----------------------------------------------------------------------------
    def collect(self) -> BatchResult:
        """Blocking: discover, read, parse, derive. Safe to call from a worker thread."""
        with self._mutex:
            t0 = time.perf_counter()
            diff = self.tree.scan()
            sys_now = system_cpu_usec()
            sys_delta = None
            if sys_now is not None and self._sys_prev is not None:
                sys_delta = sys_now - self._sys_prev
            self._sys_prev = sys_now
            dirty, self._dirty = frozenset(self._dirty), set()
            w = self.watcher
            res = self.sampler.sample_batch(
                diff.current,
                self._tick,
                vanished=diff.vanished,
                dirty=dirty,
                system_delta_usec=sys_delta,
                events_watched=w is not None and w.ok,
            )
            if w is not None:  # watches are added here, off the loop (~100 us each)
                for rel, _ino in diff.vanished:
                    w.remove(rel)
                added = diff.new
                if self._watch_all:  # the watcher started after some ticks: catch up
                    added, self._watch_all = diff.current, False
                for rel, _ino in added:
                    w.add(rel, self.root.resolve(rel, strict=False))
            self._tick += 1
            pend, self._pending = self._pending, BatchResult()
            if pend.samples or pend.gone or pend.errors:
                gone_now = set(res.gone)
                res.samples[:0] = [s for s in pend.samples if s[0].path not in gone_now]
                res.gone[:0] = [g for g in pend.gone if g not in gone_now]
                for r, n in pend.errors.items():
                    res.errors[r] = res.errors.get(r, 0) + n
            res.duration_s = time.perf_counter() - t0
            return res

    def publish(self, res: BatchResult) -> None:
        self.store.publish(
            res.samples,
            gone=res.gone,
            oom=res.oom,
            duration_s=res.duration_s,
            errors=res.errors,
        )

    def tick_sync(self) -> None:
        """One tick, blocking (tests, benchmarks, ``pystats stats --no-stream``)."""
        self.publish(self.collect())

    # --- the loop ----------------------------------------------------------------------------
    async def run(self) -> None:
        """Tick every ``interval_s`` until cancelled; the loop never blocks on cgroupfs."""
        loop = asyncio.get_running_loop()
        if self._watch_wanted and self.watcher is None:
            w = Watcher()
            if w.fd >= 0:
                self._watch_all = self._tick > 0
                self.watcher = w
                loop.add_reader(w.fd, self._on_watch)
        try:
            next_at = loop.time()
            while True:
                res = await asyncio.to_thread(self.collect)
                self.publish(res)
                next_at += self.interval_s
                now = loop.time()
                if next_at < now:  # a tick overran: skip, don't burst
                    next_at = now
                await asyncio.sleep(next_at - now)
        finally:
            if self._between is not None:
                self._between.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self._between
            if self.watcher is not None:
                loop.remove_reader(self.watcher.fd)
                self.watcher.close()
                self.watcher = None

    def _on_watch(self) -> None:
        w = self.watcher
        if w is None:
            return
        for rel, name in w.read():
            (self._oom_dirty if name == "memory.events" else self._dirty).add(rel)
        if (self._oom_dirty or self._dirty) and (self._between is None or self._between.done()):
            self._between = asyncio.get_running_loop().create_task(self._between_ticks())

    async def _between_ticks(self) -> None:
        await asyncio.sleep(0.02)  # let a burst of events coalesce
        oom_rels, self._oom_dirty = list(self._oom_dirty), set()
        refresh = list(self._dirty)  # they also stay dirty for the next tick's full read
        events = await asyncio.to_thread(self._between_sync, oom_rels, refresh)
        if events:
            self.store.record_oom(events)

    def _between_sync(self, oom_rels: list[str], refresh: list[str]) -> list[OomEvent]:
        """OOM checks for changed memory.events; a fresh read of cgroups whose cgroup.events
        changed (emptied, most likely about to be removed) so that their final counters are
        recent. Refreshed samples are not published on their own (the tick follows), but a
        cgroup found gone keeps its final sample and "gone" for the next publish."""
        with self._mutex:
            events = self.sampler.check_oom(oom_rels) if oom_rels else []
            if refresh:
                known = self.tree.known
                res = self.sampler.sample_batch(
                    [(r, known[r]) for r in refresh if r in known],
                    self._tick,
                    dirty=frozenset(refresh),
                )
                events.extend(res.oom)
                gone = set(res.gone)
                pend = self._pending
                pend.samples.extend(s for s in res.samples if s[0].path in gone)
                pend.gone.extend(res.gone)
                for r, n in res.errors.items():
                    pend.errors[r] = pend.errors.get(r, 0) + n
            return events

    def close(self) -> None:
        if self.watcher is not None:
            self.watcher.close()
            self.watcher = None
        self.tree.close()
        if self._kmsg is not None:
            self._kmsg.close()
        close = getattr(self.reader, "close", None)
        if close is not None:
            close()
