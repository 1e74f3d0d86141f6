"""Wiring: build each part of the agent from its configuration (the composition root).

Kept apart from daemon.py so the daemon's control flow (TaskGroup, signals, watchdog) reads
on its own, and this file is the one place that knows every part's constructor.
"""

from __future__ import annotations

import grp
import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING

from aiohttp import web

from agent.api.server import add_workload_routes, peer_check_middleware, serve_unix
from agent.api.stats_routes import add_stats_routes
from agent.events import EventLog, placement_events, watch_workloads
from agent.exporter.agentinfo import AgentInfo
from agent.exporter.exporter import Exporter
from agent.exporter.http import add_metrics_routes
from agent.oomlog import log_oom_kills
from agent.rootsetup import AgentLayout
from agent.selfmon import SelfMonitor
from collectors.collector import Collector
from workloads.lifecycle.manager import WorkloadManager
from workloads.runtime.cgroups import workload_rel

if TYPE_CHECKING:
    from agent.daemon import Agent

log = logging.getLogger("pystats.agent")
Part = tuple[Callable[[], Awaitable[None]], bool]  # (run, essential)


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
            return {"workload": name}
        if path.startswith(policies):
            return {"policy": path[len(policies) :]}
        return {}

    return labels


async def build_parts(agent: Agent, layout: AgentLayout) -> dict[str, Part]:
    from agent.daemon import collect_root

    cfg = agent.config
    croot = collect_root(cfg, layout)
    collector = Collector(
        croot,
        agent.store,
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
    events = EventLog()

    def workload_path(name: str) -> str:
        return (prefix or "") + workload_rel(name)

    engine = None
    if cfg.policy:
        from agent.policyhost import make_engine

        engine = make_engine(cfg, layout, on_placed=placement_events(events, prefix or ""))
    agent.engine = engine

    monitor = SelfMonitor(cfg.memory_budget, agent.store, collector, agent.health)
    agent.monitor = monitor

    info = AgentInfo(
        labels=labels,
        workload_states=manager.states,
        placement_actions=getattr(engine, "action_counts", None),
        footprint=monitor.values,
    )
    exporter = Exporter(agent.store, info, naming="both" if cfg.cadvisor_compat else "pystats")

    # The API: workloads and stats on a root-only Unix socket.
    gid = grp.getgrnam(cfg.socket_group).gr_gid if cfg.socket_group else None
    # A socket opened to a group (0660) is meant for that group: the file mode is the gate.
    group_open = bool(cfg.socket_mode & 0o077)
    api = web.Application(
        middlewares=[] if group_open else [peer_check_middleware((0, os.getuid()))]
    )
    add_workload_routes(api, manager)
    add_stats_routes(
        api,
        agent.store,
        croot,
        mount=layout.mount,
        names=lambda: {p: n for p in agent.store.entries if (n := labels(p).get("workload"))},
        interval_s=cfg.interval_s,
        events=events.events,
    )
    api_runner = await serve_unix(api, cfg.socket, mode=cfg.socket_mode, gid=gid)
    metrics = web.Application()
    add_metrics_routes(metrics, exporter)
    metrics_runner = web.AppRunner(metrics, access_log=None)
    await metrics_runner.setup()
    host, port = cfg.metrics_host_port
    await web.TCPSite(metrics_runner, host, port).start()
    log.info("API on %s; metrics on http://%s:%d/metrics", cfg.socket, host, port)
    agent.closers = [api_runner.cleanup, metrics_runner.cleanup, manager.close]
    agent.sync_closers = [collector.close]

    parts: dict[str, Part] = {
        "collector": (collector.run, True),
        "exporter": (exporter.run, True),
        "workloads": (manager.run, True),
        "selfmon": (monitor.run, False),
        "oomlog": (lambda: log_oom_kills(agent.store, labels), False),
        "events": (lambda: watch_workloads(manager, events, workload_path), False),
    }
    if engine is not None:
        parts["policies"] = (engine.run, False)
    return parts


async def close_parts(agent: Agent) -> None:
    for close in agent.closers:
        try:
            await close()
        except Exception:
            log.exception("while stopping")
    for sync_close in agent.sync_closers:
        sync_close()
