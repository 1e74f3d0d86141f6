"""The agent: composes collector, exporter, API, workloads and policies in one asyncio TaskGroup.

Each part runs inside ``_guard``: an essential part (collector, API, exporter) that fails stops
the whole agent cleanly (systemd restarts it; workloads keep running in their shims); an
optional part (the policy engine) is logged and restarted with backoff. SIGTERM/SIGINT stop,
SIGHUP re-reads the configuration (agent.reloadcfg says what applies live) and the policy.
Readiness and the watchdog go to systemd through sd_notify. Before it touches its socket or its
workloads it takes the locks of its state directory and cgroup root (agent.pidlock), so a second
agent on either refuses to start. The parts come from agent.parts.build_parts as one value.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from agent import pidlock, sdnotify
from agent.api.access import ApiAccess, resolve_access
from agent.checkconfig import tree_problems
from agent.config import AgentConfig, ConfigError
from agent.health import Health
from agent.parts import Part, Parts, build_parts, close_parts
from agent.policycheck import policy_problems
from agent.rootsetup import AgentLayout, RootError, choose_root, prepare
from cgroupfs.mount import detect
from collectors.store import Store

if TYPE_CHECKING:
    from agent.policyhost import HostedEngine

__all__ = ["Agent", "Health", "StopAgent"]  # Health: older imports of it from here

log = logging.getLogger("pystats.agent")


class _Leave(Exception):
    """Raised inside the TaskGroup on a requested stop, to cancel every part."""


class StopAgent(Exception):
    """An essential part failed: the TaskGroup unwinds and the agent exits non-zero."""


class Agent:
    def __init__(
        self, config: AgentConfig, reread: Callable[[], AgentConfig] | None = None
    ) -> None:
        """``reread``: loads the configuration again (file + flags) on SIGHUP; raises
        ConfigError for an invalid file, which then changes nothing."""
        self.config = config
        self.reread = reread
        self.health = Health()
        self._stop = asyncio.Event()
        self.store = Store(history_len=config.history_points)
        self.parts: Parts | None = None  # set once built; SIGHUP reaches the engine and monitor
        self._tg: asyncio.TaskGroup | None = None  # where SIGHUP starts a new policy engine
        self._late_engine: HostedEngine | None = None  # a policy first configured by SIGHUP

    async def run(self) -> int:
        """Run until a stop signal (0) or an essential part's failure (1). Raises AlreadyRunning
        when another agent holds the state directory or the cgroup root, AccessError for an
        unknown API group, RootError/CgroupError/OSError when the root cannot be used."""
        cfg = self.config
        access = resolve_access(cfg)
        os.makedirs(cfg.state_dir, mode=0o700, exist_ok=True)
        # Before anything that a second agent must not touch (the socket, the workloads).
        state_lock = os.path.join(cfg.state_dir, "agent.pid")
        locks = [pidlock.acquire(state_lock, f"state directory {cfg.state_dir}")]
        try:
            mount = detect()
            # Checked before prepare() creates anything: it would run, watching nothing.
            if problems := tree_problems(cfg, choose_root(mount, cfg.root)[0]):
                raise RootError("; ".join(problems))
            layout = prepare(mount, cfg.root)
            root = layout.root.path
            locks.append(pidlock.acquire(pidlock.root_lock_path(root), f"cgroup root {root}"))
            return await self._run(layout, access)
        finally:
            for lock in locks:
                lock.release()

    async def _run(self, layout: AgentLayout, access: ApiAccess) -> int:
        mount = layout.mount
        log.info(
            "cgroup mode %s at %s; agent root %s%s",
            mount.mode,
            mount.path,
            layout.root.path,
            " (delegated by systemd)" if layout.delegated else "",
        )
        self.parts = parts = await build_parts(self.config, layout, self.store, self.health, access)
        for name in parts.runs:
            self.health.part_failures.setdefault(name, 0)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        loop.add_signal_handler(signal.SIGHUP, self.reload)
        status = 0
        try:
            async with asyncio.TaskGroup() as tg:
                self._tg = tg
                for name, part in parts.runs.items():
                    tg.create_task(self._guard(name, part), name=name)
                tg.create_task(self._watchdog(), name="watchdog")
                tg.create_task(self._ready(), name="ready")
                await self._stop.wait()
                log.info("stopping")  # what follows is bounded: a hang shows after this line
                sdnotify.notify("STOPPING=1")
                raise _Leave  # leave the TaskGroup, cancelling every part
        except* StopAgent:
            status = 1
        except* _Leave:
            pass
        finally:
            with contextlib.suppress(Exception):
                await close_parts(parts)
        log.info("stopped (status %d); workloads keep running in their supervisors", status)
        return status

    async def _guard(self, name: str, part: Part) -> None:
        essential = part.essential
        delay = 1.0
        while True:
            try:
                await part.run()
                if essential:
                    log.error("%s returned; stopping", name)
                    raise StopAgent(name)
                return
            except asyncio.CancelledError:
                raise
            except StopAgent:
                raise
            except Exception:
                self.health.failed(name)
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
        engine, policy = self._engine(), self.config.policy
        if engine is None:
            if policy is None:
                log.info("SIGHUP: no policy configured, nothing to reload")
            elif not self._policy_errors(policy) and self._start_engine():
                log.info("SIGHUP: policy %s turned on", policy)
            return
        if policy is None:  # removed from the configuration: what it placed stays until a restart
            log.info("SIGHUP: policy %s stays in force until a restart", engine.policy_path)
            return
        errors = engine.reload()
        if errors:
            log.error("SIGHUP: new policy rejected, the previous one stays in force:")
            for e in errors:
                log.error("  %s", e)
        else:
            log.info("SIGHUP: policy reloaded")

    @staticmethod
    def _policy_errors(path: str) -> bool:
        """Check a policy the agent is about to start for; log why it is refused."""
        problems = policy_problems(path)
        if problems:
            log.error("SIGHUP: policy %s rejected, no policy is in force:", path)
            for problem in problems:
                log.error("  %s", problem)
        return bool(problems)

    def _engine(self) -> HostedEngine | None:
        if self.parts is not None and self.parts.engine is not None:
            return self.parts.engine
        return self._late_engine

    def _start_engine(self) -> bool:
        """Run a policy engine for a policy the agent started without (SIGHUP)."""
        parts, tg = self.parts, self._tg
        if parts is None or parts.make_engine is None or tg is None:
            return False
        engine = self._late_engine = parts.make_engine(self.config)
        self.health.part_failures.setdefault("policies", 0)
        tg.create_task(self._guard("policies", Part(engine.run, False)), name="policies")
        return True

    def _reload_config(self, reread: Callable[[], AgentConfig]) -> None:
        from agent.reloadcfg import apply

        try:
            new = reread()
        except ConfigError as e:
            log.error("SIGHUP: configuration rejected, the previous one stays in force:")
            for line in e.errors:
                log.error("  %s", line)
            return
        parts = self.parts
        engine, monitor = self._engine(), (None if parts is None else parts.monitor)
        for note in apply(self.config, new, engine, monitor):
            log.info("SIGHUP: %s", note)
        self.config = new
