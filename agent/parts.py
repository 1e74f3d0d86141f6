"""Wiring: build each part of the agent from its configuration (the composition root).

Kept apart from daemon.py so the daemon's control flow (TaskGroup, signals, watchdog) reads
on its own, and this file is the one place that knows every part's constructor. It returns
what it built as a frozen ``Parts``; it never writes into the daemon (which imports it, not the
other way round).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web

from agent.api.access import ApiAccess
from agent.api.agent_client import AgentFacts
from agent.api.agent_routes import add_agent_routes
from agent.api.server import (
    SHUTDOWN_GRACE_S,
    add_workload_routes,
    peer_check_middleware,
    serve_unix,
)
from agent.api.stats_routes import add_stats_routes
from agent.config import AgentConfig
from agent.events import EventLog, placement_events, watch_workloads
from agent.exporter.agentinfo import AgentInfo
from agent.exporter.exporter import Exporter
from agent.exporter.http import add_metrics_routes
from agent.health import Health
from agent.netio import workload_network
from agent.oomlog import log_oom_kills
from agent.recording import AgentRecorder
from agent.rootsetup import AgentLayout
from agent.selfmon import SelfMonitor
from cgroupfs.paths import CgroupRoot
from collectors.collector import Collector
from collectors.store import Store
from workloads.lifecycle.manager import WorkloadManager
from workloads.runtime.cgroups import workload_rel

if TYPE_CHECKING:
    from agent.policyhost import HostedEngine

log = logging.getLogger("pystats.agent")


@dataclass(frozen=True, slots=True)
class Part:
    run: Callable[[], Awaitable[None]]
    essential: bool  # its failure stops the agent; an optional part is restarted with backoff


@dataclass(frozen=True, slots=True)
class Parts:
    """Everything ``build_parts`` made: the tasks to run, what SIGHUP reaches, what to close."""

    runs: Mapping[str, Part]  # task name -> part, in start order
    monitor: SelfMonitor
    engine: HostedEngine | None  # None without a policy
    # Builds the engine for a policy first configured by SIGHUP (the daemon runs it).
    make_engine: Callable[[AgentConfig], HostedEngine] | None = None
    closers: tuple[Callable[[], Awaitable[None]], ...] = ()
    sync_closers: tuple[Callable[[], None], ...] = ()


def collect_root(config: AgentConfig, layout: AgentLayout) -> CgroupRoot:
    """What the collector watches: the configured tree, or the whole cgroup2 mount."""
    if config.collect_root and config.collect_root != "auto":
        return CgroupRoot(os.path.realpath(config.collect_root))
    return CgroupRoot(os.path.realpath(layout.mount.path or layout.root.path))


def agent_prefix(collect_path: str, layout: AgentLayout) -> str | None:
    """The agent's root as the store names cgroups ("" or "pystats/"), None when the agent's
    root is outside the collected tree."""
    rel = os.path.relpath(layout.root.path, collect_path)
    if rel.startswith(".."):
        return None
    return "" if rel == "." else rel + "/"


def _labeler(prefix: str | None, manager: WorkloadManager) -> Callable[[str], Mapping[str, str]]:
    """Metric labels for a collected cgroup: its workload or policy group, when it has one."""
    policies = f"{prefix}policies/"

    def labels(path: str) -> Mapping[str, str]:
        if prefix is None or not path.startswith(prefix):
            return {}
        rel = path[len(prefix) :]
        name = manager.labels_for_cgroup(rel)
        if name is not None:
            image = manager.workload_images().get(name)
            return {"workload": name, "image": image} if image else {"workload": name}
        if path.startswith(policies):
            return {"policy": path[len(policies) :]}
        return {}

    return labels


async def build_parts(
    cfg: AgentConfig, layout: AgentLayout, store: Store, health: Health, access: ApiAccess
) -> Parts:
    """Build and start serving every part; the tasks in ``Parts.runs`` are the caller's to run.
    ``access``: who may use the API socket (resolved by the caller from the configuration)."""
    croot = collect_root(cfg, layout)
    collector = Collector(
        croot,
        store,
        interval_s=cfg.interval_s,
        slow_every=cfg.slow_every,
        max_depth=cfg.max_depth,
        include=cfg.include,
        exclude=cfg.exclude,
    )
    manager = WorkloadManager(layout.root, cfg.state_dir)
    await manager.start()
    for problem in manager.problems:
        log.warning("workload state: %s", problem)

    prefix = agent_prefix(croot.path, layout)
    labels = _labeler(prefix, manager)
    recorder = AgentRecorder(cfg, store, collector.sampler.host, labels)
    events: EventLog = recorder.events  # also written to the durable history

    def workload_path(name: str) -> str:
        return (prefix or "") + workload_rel(name)

    def new_engine(c: AgentConfig) -> HostedEngine:
        from agent.policyhost import make_engine

        return make_engine(c, layout, on_placed=placement_events(events, prefix or ""))

    engine = new_engine(cfg) if cfg.policy else None

    monitor = SelfMonitor(cfg.memory_budget, store, collector, health)
    net = workload_network(manager)
    info = AgentInfo(
        labels=labels,
        workload_states=manager.states,
        workload_images=manager.workload_images,
        placement_actions=None if engine is None else engine.action_counts,
        footprint=monitor.values,
        part_failures=lambda: health.part_failures,
        recorder=recorder.values,
        oom_kills_recorded=recorder.oom_counts,
        workload_network=net,  # pystats_network_*
        cadvisor_names=cfg.cadvisor_compat,
    )
    exporter = Exporter(store, info, naming="both" if cfg.cadvisor_compat else "pystats")

    # The API: workloads and stats on a Unix socket; every connection's peer is checked.
    api = web.Application(middlewares=[peer_check_middleware(access)])
    add_workload_routes(api, manager, recorder.oom_kills)
    add_agent_routes(api, AgentFacts(layout.root.path, layout.policies, os.getpid()))
    add_stats_routes(
        api,
        store,
        croot,
        mount=layout.mount,
        names=lambda: {p: n for p in store.entries if (n := labels(p).get("workload"))},
        images=lambda: {p: i for p in store.entries if (i := labels(p).get("image"))},
        interval_s=cfg.interval_s,
        events=events.events,
        net=net,
    )
    api_runner = await serve_unix(api, cfg.socket, mode=cfg.socket_mode, gid=access.socket_gid)
    metrics = web.Application()
    add_metrics_routes(metrics, exporter)
    metrics_runner = web.AppRunner(metrics, access_log=None, shutdown_timeout=SHUTDOWN_GRACE_S)
    await metrics_runner.setup()
    host, port = cfg.metrics_host_port
    await web.TCPSite(metrics_runner, host, port).start()
    log.info("API on %s; metrics on http://%s:%d/metrics", cfg.socket, host, port)

    runs: dict[str, Part] = {
        "collector": Part(collector.run, True),
        "exporter": Part(exporter.run, True),
        "workloads": Part(manager.run, True),
        "selfmon": Part(monitor.run, False),
        "oomlog": Part(lambda: log_oom_kills(store, labels), False),
        "events": Part(lambda: watch_workloads(manager, events, workload_path), False),
        "recorder": Part(recorder.run, False),
    }
    if engine is not None:
        runs["policies"] = Part(engine.run, False)
    return Parts(
        runs=runs,
        monitor=monitor,
        engine=engine,
        make_engine=new_engine,
        closers=(api_runner.cleanup, metrics_runner.cleanup, manager.close),
        sync_closers=(collector.close, recorder.close),
    )


async def close_parts(parts: Parts) -> None:
    for close in parts.closers:
        try:
            await close()
        except Exception:
            log.exception("while stopping")
    for sync_close in parts.sync_closers:
        sync_close()
