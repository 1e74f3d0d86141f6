"""What the daemon tells the exporter about itself, and the agent's self-metrics.

The daemon fills an ``AgentInfo`` with callables over its own state, so the exporter never
imports workloads or policies. Every callable is called on the event loop, once per scrape
(self-metrics) or once per cgroup per rendered tick (``labels``); keep them cheap.
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from importlib import metadata

from agent.exporter.metrics import MetricType, Value
from collectors.store import Store

# cgroup path (relative to the agent root, "" for the root) -> {"workload": ..., "policy": ...}
LabelProvider = Callable[[str], Mapping[str, str]]


def _version() -> str:
    try:
        return metadata.version("pystats")
    except metadata.PackageNotFoundError:  # running from a source tree
        return "unknown"


@dataclass(frozen=True, slots=True)
class AgentInfo:
    version: str = ""  # "" -> the installed package's version
    labels: LabelProvider | None = None
    # (policy, outcome) -> count since start, e.g. ("batch", "moved"), ("batch", "failed")
    placement_actions: Callable[[], Mapping[tuple[str, str], int]] | None = None
    # workload name -> its current state, e.g. {"web": "running", "job": "exited"}
    workload_states: Callable[[], Mapping[str, str]] | None = None
    # the agent's own footprint (agent.selfmon.SelfMonitor.values): key -> value
    footprint: Callable[[], Mapping[str, float]] | None = None


# footprint key -> (metric, type, help, unit)
_FOOTPRINT: dict[str, tuple[str, str, str, str]] = {
    "resident_memory_bytes": (
        "pystats_agent_resident_memory_bytes",
        "gauge",
        "The agent's resident memory, as last checked against its budget.",
        "bytes",
    ),
    "memory_budget_bytes": (
        "pystats_agent_memory_budget_bytes",
        "gauge",
        "The configured memory budget (memory_budget); over it the agent sheds work.",
        "bytes",
    ),
    "shed_level": (
        "pystats_agent_shed_level",
        "gauge",
        "Work shed to stay in budget: 0 none, 1 slow files 4x rarer, 2 also history cut.",
        "",
    ),
    "open_fds": ("pystats_agent_open_fds", "gauge", "File descriptors the agent holds.", ""),
    "cpu_seconds_total": (
        "pystats_agent_cpu_seconds",
        "counter",
        "CPU time (user + system) the agent has used.",
        "seconds",
    ),
}


@dataclass(frozen=True, slots=True)
class SelfMetric:
    name: str
    type: MetricType | str  # "counter", "gauge" or "info"
    help: str
    unit: str = ""

    @property
    def sample_name(self) -> str:
        if self.type == "counter":
            return self.name + "_total"
        return self.name + "_info" if self.type == "info" else self.name


SelfSeries = tuple[SelfMetric, list[tuple[dict[str, str], Value]]]


def self_metrics(
    store: Store, info: AgentInfo, render_seconds: float | None
) -> Iterator[SelfSeries]:
    """The agent's own families, each with its samples; families without samples are skipped."""
    st = store.stats
    yield (
        SelfMetric("pystats_build", "info", "pystats build information."),
        [({"version": info.version or _version(), "python": platform.python_version()}, 1)],
    )
    yield SelfMetric("pystats_ticks", "counter", "Collector ticks published."), [({}, st.ticks)]
    yield (
        SelfMetric(
            "pystats_tick_duration_seconds", "gauge", "Duration of the last tick.", "seconds"
        ),
        [({}, st.last_duration_s)],
    )
    if st.last_success_wall is not None:
        yield (
            SelfMetric(
                "pystats_last_successful_tick_timestamp_seconds",
                "gauge",
                "Unix time of the last tick that completed without a fatal error.",
                "seconds",
            ),
            [({}, st.last_success_wall)],
        )
    yield (
        SelfMetric("pystats_cgroups_tracked", "gauge", "Cgroups present in the store."),
        [({}, st.cgroups)],
    )
    yield (
        SelfMetric("pystats_errors", "counter", "Collector errors by reason."),
        [({"reason": k}, v) for k, v in sorted(st.errors.items())],
    )
    if info.placement_actions is not None:
        yield (
            SelfMetric(
                "pystats_placement_actions", "counter", "Placement actions by policy and outcome."
            ),
            [
                ({"policy": p, "outcome": o}, n)
                for (p, o), n in sorted(info.placement_actions().items())
            ],
        )
    if info.workload_states is not None:
        yield (
            SelfMetric("pystats_workload_state", "gauge", "1 for each workload's current state."),
            [({"workload": w, "state": s}, 1) for w, s in sorted(info.workload_states().items())],
        )
    if info.footprint is not None:
        for key, value in info.footprint().items():
            name, kind, help_, unit = _FOOTPRINT[key]
            yield SelfMetric(name, kind, help_, unit), [({}, value)]
    if render_seconds is not None:
        yield (
            SelfMetric(
                "pystats_exporter_render_seconds",
                "gauge",
                "Time the exporter took to render the per-cgroup metrics of the last tick.",
                "seconds",
            ),
            [({}, render_seconds)],
        )
