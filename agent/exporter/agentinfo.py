"""What the daemon tells the exporter about itself, and the agent's self-metrics.

The daemon fills an ``AgentInfo`` with callables over its own state, so the exporter never
imports the workload manager or the policy engine. Every callable is called on the event loop,
once per scrape (self-metrics) or once per cgroup per rendered tick (``labels``); keep them cheap.

The self-metrics come from one declarative table, ``SELF_METRICS``, as the per-cgroup ones come
from ``CGROUP_METRICS``: each row names the family and says how to get its samples from a
``SelfView`` (one scrape's view of the store's tick stats and the ``AgentInfo``). A family
without samples is left out of the exposition.
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import Literal, TypeAlias

from agent.exporter.metrics import Value
from collectors.netdev import NetIO
from collectors.store import Store, TickStats
from workloads.supervisor.record import State

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
    # workload name -> its current state (a State value), e.g. {"web": State.RUNNING}
    workload_states: Callable[[], Mapping[str, str]] | None = None
    # workload name -> the image it runs from (workloads without one are absent)
    workload_images: Callable[[], Mapping[str, str]] | None = None
    # the agent's own footprint (agent.selfmon.SelfMonitor.values): FOOTPRINT key -> value
    footprint: Callable[[], Mapping[str, float]] | None = None
    # part of the agent (collector, policies, ...) -> failures since start (agent.health)
    part_failures: Callable[[], Mapping[str, int]] | None = None
    # the history recorder (agent.recording.AgentRecorder.values): RECORDER key -> value
    recorder: Callable[[], Mapping[str, float]] | None = None
    # (cgroup, workload or "") -> OOM kills recorded, all time (survives removal and restarts)
    oom_kills_recorded: Callable[[], Mapping[tuple[str, str], int]] | None = None
    # workload name -> its network namespace's counters (agent.netio; no entry: no own netns)
    workload_network: Callable[[], Mapping[str, NetIO]] | None = None
    # cAdvisor's names too (cadvisor_compat): container_network_* beside pystats_network_*
    cadvisor_names: bool = False


@dataclass(frozen=True, slots=True)
class SelfView:
    """What one scrape's self-metrics are read from."""

    stats: TickStats
    info: AgentInfo
    footprint: Mapping[str, float]  # taken once per scrape
    render_seconds: float | None


SelfSamples: TypeAlias = list[tuple[dict[str, str], Value]]
SelfType: TypeAlias = Literal["counter", "gauge", "info"]


def _no_samples(view: SelfView) -> SelfSamples:
    return []


@dataclass(frozen=True, slots=True)
class SelfMetric:
    name: str  # family name; counters without "_total", info without "_info"
    type: SelfType
    help: str
    unit: str = ""
    samples: Callable[[SelfView], SelfSamples] = _no_samples

    @property
    def sample_name(self) -> str:
        if self.type == "counter":
            return self.name + "_total"
        return self.name + "_info" if self.type == "info" else self.name


SelfSeries: TypeAlias = tuple[SelfMetric, SelfSamples]


# --- getters -----------------------------------------------------------------------------------


def _one(value: Value | None) -> SelfSamples:
    return [] if value is None else [({}, value)]


def _build(v: SelfView) -> SelfSamples:
    return [({"version": v.info.version or _version(), "python": platform.python_version()}, 1)]


def _placements(v: SelfView) -> SelfSamples:
    get = v.info.placement_actions
    if get is None:
        return []
    return [({"policy": p, "outcome": o}, n) for (p, o), n in sorted(get().items())]


def _workload_states(v: SelfView) -> SelfSamples:
    get = v.info.workload_states
    if get is None:
        return []
    images = {} if v.info.workload_images is None else v.info.workload_images()
    out: SelfSamples = []
    for w, s in sorted(get().items()):
        # State(...) keeps the label bounded: a state outside the enum is a bug, not a new series.
        labels = {"workload": w, "state": State(s).value}
        if images.get(w):
            labels["image"] = images[w]
        out.append((labels, 1))
    return out


def _part_failures(v: SelfView) -> SelfSamples:
    get = v.info.part_failures
    if get is None:
        return []
    return [({"part": part}, n) for part, n in sorted(get().items())]


def _recorder(key: str) -> Callable[[SelfView], SelfSamples]:
    def get(v: SelfView) -> SelfSamples:
        f = v.info.recorder
        return [] if f is None else _one(f().get(key))

    return get


def _oom_recorded(v: SelfView) -> SelfSamples:
    get = v.info.oom_kills_recorded
    if get is None:
        return []
    out: SelfSamples = []
    for (cgroup, workload), n in sorted(get().items()):
        labels = {"cgroup": cgroup or "/"}
        if workload:
            labels["workload"] = workload
        out.append((labels, n))
    return out


def _net(field: str) -> Callable[[SelfView], SelfSamples]:
    def get(v: SelfView) -> SelfSamples:
        fn = v.info.workload_network
        if fn is None:
            return []
        return [({"workload": w}, getattr(io, field)) for w, io in sorted(fn().items())]

    return get


def _net_cadvisor(field: str) -> Callable[[SelfView], SelfSamples]:
    """cAdvisor's container_network_* (label ``name``: the workload, as its per-cgroup series
    name it; summed over the interfaces but lo, where cAdvisor has one series per interface)."""
    pystats = _net(field)

    def get(v: SelfView) -> SelfSamples:
        if not v.info.cadvisor_names:
            return []
        return [({"name": labels["workload"]}, n) for labels, n in pystats(v)]

    return get


# (metric name after pystats_network_ / container_network_, NetIO field, help, unit)
_NET = (
    ("receive_bytes", "rx_bytes", "Bytes received by", "bytes"),
    ("transmit_bytes", "tx_bytes", "Bytes sent by", "bytes"),
    ("receive_packets", "rx_packets", "Packets received by", ""),
    ("transmit_packets", "tx_packets", "Packets sent by", ""),
    ("receive_errors", "rx_errors", "Receive errors of", ""),
    ("transmit_errors", "tx_errors", "Transmit errors of", ""),
    ("receive_packets_dropped", "rx_dropped", "Received packets dropped by", ""),
    ("transmit_packets_dropped", "tx_dropped", "Packets to send dropped by", ""),
)


def _footprint(key: str) -> Callable[[SelfView], SelfSamples]:
    def get(v: SelfView) -> SelfSamples:
        return _one(v.footprint.get(key))

    return get


SELF_METRICS: tuple[SelfMetric, ...] = (
    SelfMetric("pystats_build", "info", "pystats build information.", samples=_build),
    SelfMetric("pystats_ticks", "counter", "Collector ticks published.",
               samples=lambda v: _one(v.stats.ticks)),
    SelfMetric("pystats_tick_duration_seconds", "gauge", "Duration of the last tick.", "seconds",
               samples=lambda v: _one(v.stats.last_duration_s)),
    SelfMetric("pystats_last_successful_tick_timestamp_seconds", "gauge",
               "Unix time of the last tick that completed without a fatal error.", "seconds",
               samples=lambda v: _one(v.stats.last_success_wall)),
    SelfMetric("pystats_cgroups_tracked", "gauge", "Cgroups present in the store.",
               samples=lambda v: _one(v.stats.cgroups)),
    SelfMetric("pystats_errors", "counter", "Collector errors by reason.",
               samples=lambda v: [({"reason": k}, n) for k, n in sorted(v.stats.errors.items())]),
    SelfMetric("pystats_placement_actions", "counter", "Placement actions by policy and outcome.",
               samples=_placements),
    SelfMetric("pystats_workload_state", "gauge", "1 for each workload's current state.",
               samples=_workload_states),
    # the agent's footprint (agent.selfmon), keyed as SelfMonitor.values() names it
    SelfMetric("pystats_agent_resident_memory_bytes", "gauge",
               "The agent's resident memory, as last checked against its budget.", "bytes",
               samples=_footprint("resident_memory_bytes")),
    SelfMetric("pystats_agent_memory_budget_bytes", "gauge",
               "The configured memory budget (memory_budget); over it the agent sheds work.",
               "bytes", samples=_footprint("memory_budget_bytes")),
    SelfMetric("pystats_agent_shed_level", "gauge",
               "Work shed to stay in budget: 0 none, 1 slow files 4x rarer, 2 also history cut.",
               samples=_footprint("shed_level")),
    SelfMetric("pystats_agent_open_fds", "gauge", "File descriptors the agent holds.",
               samples=_footprint("open_fds")),
    SelfMetric("pystats_agent_cpu_seconds", "counter",
               "CPU time (user + system) the agent has used.", "seconds",
               samples=_footprint("cpu_seconds_total")),
    SelfMetric("pystats_agent_part_failures", "counter",
               "Failures of each part of the agent since start: an optional part (policies, "
               "selfmon, oomlog, events) is restarted, an essential one stops the agent.",
               samples=_part_failures),
    # the history recorder (agent.recording)
    SelfMetric("pystats_recorder_ticks", "counter", "Ticks written to the durable history.",
               samples=_recorder("ticks_recorded")),
    SelfMetric("pystats_recorder_dropped_ticks", "counter",
               "Ticks not recorded: the recorder's writer was behind (slow disk) or stopped.",
               samples=_recorder("ticks_dropped")),
    SelfMetric("pystats_recorder_events", "counter", "Events written to the durable history.",
               samples=_recorder("events_recorded")),
    SelfMetric("pystats_recorder_written_bytes", "counter",
               "Bytes the recorder appended to its segments.", "bytes",
               samples=_recorder("bytes_written")),
    SelfMetric("pystats_recorder_disk_bytes", "gauge",
               "Bytes of history on disk (all segments, after retention).", "bytes",
               samples=_recorder("disk_bytes")),
    SelfMetric("pystats_recorder_cpu_seconds", "counter",
               "CPU time of the recorder's writer thread (encoding, compressing, writing).",
               "seconds", samples=_recorder("cpu_seconds")),
    SelfMetric("pystats_recorder_stopped", "gauge",
               "1 when recording stopped (no space left, write error; see the log).",
               samples=_recorder("stopped")),
    SelfMetric("pystats_cgroup_oom_kills_recorded", "counter",
               "OOM kills per cgroup from the durable history: keeps counting across the "
               "cgroup's removal and the agent's restarts.", samples=_oom_recorded),
    # each workload's network namespace, all interfaces but lo (collectors.netdev); the same
    # values under cAdvisor's names in its mode
    *(SelfMetric(f"pystats_network_{name}", "counter", f"{what} a workload.", unit,
                 samples=_net(field)) for name, field, what, unit in _NET),
    *(SelfMetric(f"container_network_{name}", "counter", f"{what} a workload (cAdvisor's name).",
                 unit, samples=_net_cadvisor(field)) for name, field, what, unit in _NET),
    SelfMetric("pystats_exporter_render_seconds", "gauge",
               "Time the exporter took to render the per-cgroup metrics of the last tick.",
               "seconds", samples=lambda v: _one(v.render_seconds)),
)  # fmt: skip

# SelfMonitor.values() keys, each exported by one row above
FOOTPRINT: Sequence[str] = (
    "resident_memory_bytes",
    "memory_budget_bytes",
    "shed_level",
    "open_fds",
    "cpu_seconds_total",
)


def self_metrics(
    store: Store, info: AgentInfo, render_seconds: float | None
) -> Iterator[SelfSeries]:
    """Every family of ``SELF_METRICS`` with its samples (possibly none) at this scrape."""
    footprint = info.footprint() if info.footprint is not None else {}
    view = SelfView(store.stats, info, footprint, render_seconds)
    for m in SELF_METRICS:
        yield m, m.samples(view)
