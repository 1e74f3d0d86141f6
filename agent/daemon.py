"""The agent: composes collector, exporter, API, workloads and policies in one asyncio TaskGroup.

Each part runs inside ``_guard``: an essential part (collector, API, exporter) that fails stops
the whole agent cleanly (systemd restarts it; workloads keep running in their shims); an
optional part (the policy engine) is logged and restarted with backoff. SIGTERM/SIGINT stop,
SIGHUP re-reads the configuration (agent.reloadcfg says what applies live) and the policy.
Readiness and the watchdog go to systemd through sd_notify.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from agent import sdnotify
from agent.config import AgentConfig
from agent.rootsetup import AgentLayout, prepare
from cgroupfs.mount import detect
from cgroupfs.paths import CgroupRoot
from collectors.store import Store

log = logging.getLogger("pystats.agent")


class _Leave(Exception):
    """Raised inside the TaskGroup on a requested stop, to cancel every part."""


class StopAgent(Exception):
    """An essential part failed: the TaskGroup unwinds and the agent exits non-zero."""


@dataclass
class Health:
    """What the agent knows about itself, for its self-metrics and the watchdog."""

    started_wall: float = field(default_factory=time.time)
    part_failures: dict[str, int] = field(default_factory=dict)
    shed_level: int = 0  # 0: everything; 1: slow files 4x rarer; 2: also shorter history


class Agent:
    def __init__(
        self, config: AgentConfig, reread: Callable[[], AgentConfig] | None = None
    ) -> None:
        """``reread``: loads the configuration again (file + flags) on SIGHUP; raises
        ConfigError for an invalid file, which then changes nothing."""
        self.config = config
        self.reread = reread
        self.monitor: object | None = None
        self.health = Health()
        self._stop = asyncio.Event()
        self.layout: AgentLayout | None = None
        self.store = Store(history_len=config.history_points)
        self.engine: object | None = None
        self.closers: list[Callable[[], Awaitable[None]]] = []
        self.sync_closers: list[Callable[[], None]] = []

    async def run(self) -> int:
        cfg = self.config
        mount = detect()
        self.layout = layout = prepare(mount, cfg.root)
        log.info(
            "cgroup mode %s at %s; agent root %s%s",
            mount.mode,
            mount.path,
            layout.root.path,
            " (delegated by systemd)" if layout.delegated else "",
        )
        parts = await self._build_parts(layout)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        loop.add_signal_handler(signal.SIGHUP, self.reload)
        status = 0
        try:
            async with asyncio.TaskGroup() as tg:
                for name, (factory, essential) in parts.items():
                    tg.create_task(self._guard(name, factory, essential), name=name)
                tg.create_task(self._watchdog(), name="watchdog")
                tg.create_task(self._ready(), name="ready")
                await self._stop.wait()
                sdnotify.notify("STOPPING=1")
                raise _Leave  # leave the TaskGroup, cancelling every part
        except* StopAgent:
            status = 1
        except* _Leave:
            pass
        finally:
            await self._close_parts()
        log.info("stopped (status %d); workloads keep running in their supervisors", status)
        return status

    async def _guard(
        self, name: str, factory: Callable[[], Awaitable[None]], essential: bool
    ) -> None:
        delay = 1.0
        while True:
            try:
                await factory()
                if essential:
                    log.error("%s returned; stopping", name)
                    raise StopAgent(name)
                return
            except asyncio.CancelledError:
                raise
            except StopAgent:
                raise
            except Exception:
                self.health.part_failures[name] = self.health.part_failures.get(name, 0) + 1
                if essential:
                    log.exception("%s failed; stopping the agent", name)
                    raise StopAgent(name) from None
                log.exception("%s failed; restarting it in %.0f s", name, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 60.0)

    async def _ready(self) -> None:
        """READY once the first tick is in: `systemctl start` returns when /metrics has data."""
        await self.store.wait_tick()
        # Everything built at start-up (modules, config, the first tick's tree) lives as long as
        # the agent: keep it out of every later collection (~0.5-1 µs per cgroup per tick).
        gc.freeze()
        sdnotify.notify("READY=1\nSTATUS=collecting")
        log.info("ready: first tick collected (%d cgroups)", self.store.stats.cgroups)

    async def _watchdog(self) -> None:
        interval = sdnotify.watchdog_interval_s()
        if interval is None:
            return
        while True:
            # Only pet the watchdog while ticks happen: a stuck collector gets us restarted.
            last = self.store.stats.last_success_wall
            if last is None or time.time() - last < max(10.0, 5 * self.config.interval_s):
                sdnotify.notify("WATCHDOG=1")
            await asyncio.sleep(interval)

    def reload(self) -> None:
        if self.reread is not None:
            self._reload_config(self.reread)
        reload = getattr(self.engine, "reload", None)
        if reload is None:
            log.info("SIGHUP: no policy configured, nothing to reload")
            return
        errors = reload()
        if errors:
            log.error("SIGHUP: new policy rejected, the previous one stays in force:")
            for e in errors:
                log.error("  %s", e)
        else:
            log.info("SIGHUP: policy reloaded")

    def _reload_config(self, reread: Callable[[], AgentConfig]) -> None:
        from agent.config import ConfigError
        from agent.reloadcfg import apply

        try:
            new = reread()
        except ConfigError as e:
            log.error("SIGHUP: configuration rejected, the previous one stays in force:")
            for line in e.errors:
                log.error("  %s", line)
            return
        for note in apply(self.config, new, self.engine, self.monitor):
            log.info("SIGHUP: %s", note)
        self.config = new

    async def _build_parts(
        self, layout: AgentLayout
    ) -> dict[str, tuple[Callable[[], Awaitable[None]], bool]]:
        from agent.parts import build_parts

        return await build_parts(self, layout)

    async def _close_parts(self) -> None:
        from agent.parts import close_parts

        with contextlib.suppress(Exception):
            await close_parts(self)


def collect_root(config: AgentConfig, layout: AgentLayout) -> CgroupRoot:
    """What the collector watches: the configured tree, or the whole cgroup2 mount."""
    if config.collect_root and config.collect_root != "auto":
        return CgroupRoot(os.path.realpath(config.collect_root))
    return CgroupRoot(os.path.realpath(layout.mount.path or layout.root.path))
