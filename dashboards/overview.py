"""Overview: the busiest cgroups by CPU and memory, throttling, OOM kills, the workloads' network
and pressure."""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard

from dashboards.common import (
    INSTANCE,
    TOPK,
    base_dashboard,
    row,
    stat_panel,
    timeseries_panel,
)

UID = "pystats-overview"
S = f'{INSTANCE}, cgroup!="/"'  # every cgroup but the agent's root
TOP = f'{INSTANCE}, cgroup!="/", cgroup!~".*/.*"'  # direct children of the root: no double count
R = "$__rate_interval"


def build() -> Dashboard:
    d = base_dashboard(
        UID,
        "pystats / Overview",
        "Busiest cgroups by CPU and memory, CPU throttling, OOM kills and pressure stalls.",
        ["overview"],
    )
    d = d.with_row(row("Summary"))
    d = d.with_panel(
        stat_panel(
            "Cgroups tracked",
            f"sum(pystats_cgroups_tracked{{{INSTANCE}}})",
            unit="none",
            description="Cgroups the agents currently sample.",
        )
    )
    d = d.with_panel(
        stat_panel(
            "CPU in use",
            f"sum(rate(pystats_cgroup_cpu_usage_seconds_total{{{TOP}}}[{R}]))",
            unit="none",
            description="Cores busy, summed over the root's direct children.",
        )
    )
    d = d.with_panel(
        stat_panel(
            "Memory in use",
            f"sum(pystats_cgroup_memory_current_bytes{{{TOP}}})",
            unit="bytes",
            description="memory.current summed over the root's direct children.",
        )
    )
    d = d.with_panel(
        stat_panel(
            "OOM kills (since start)",
            f'sum(pystats_cgroup_memory_events_total{{{TOP}, type="oom_kill"}})',
            unit="none",
            description="memory.events oom_kill, hierarchical, summed over the root's children.",
        )
    )
    d = d.with_row(row("CPU"))
    d = d.with_panel(
        timeseries_panel(
            f"Top {TOPK} cgroups by CPU",
            [
                (
                    f"topk({TOPK}, rate(pystats_cgroup_cpu_usage_seconds_total{{{S}}}[{R}]))",
                    "{{cgroup}}",
                )
            ],
            unit="none",
            description="CPU time per second (1 = one core busy). Parents include "
            "their children (cgroup v2 is hierarchical).",
        )
    )
    d = d.with_panel(
        timeseries_panel(
            f"Top {TOPK} cgroups by CPU throttling",
            [
                (
                    f"topk({TOPK}, rate(pystats_cgroup_cpu_throttled_periods_total{{{S}}}[{R}])"
                    f" / (rate(pystats_cgroup_cpu_periods_total{{{S}}}[{R}]) > 0))",
                    "{{cgroup}}",
                )
            ],
            unit="percentunit",
            description="Share of cpu.max periods in which the cgroup was "
            "throttled (only cgroups with a CPU quota have periods).",
        )
    )
    d = d.with_panel(
        timeseries_panel(
            "Throttled time",
            [
                (
                    f"topk({TOPK}, rate(pystats_cgroup_cpu_throttled_seconds_total{{{S}}}[{R}])"
                    " > 0)",
                    "{{cgroup}}",
                )
            ],
            unit="percentunit",
            description="Seconds throttled per second (cpu.stat throttled_usec).",
        )
    )
    d = d.with_row(row("Memory"))
    d = d.with_panel(
        timeseries_panel(
            f"Top {TOPK} cgroups by memory working set",
            [(f"topk({TOPK}, pystats_cgroup_memory_working_set_bytes{{{S}}})", "{{cgroup}}")],
            unit="bytes",
            description="memory.current minus inactive file pages (as cAdvisor).",
        )
    )
    d = d.with_panel(
        timeseries_panel(
            f"Top {TOPK} cgroups closest to their memory limit",
            [
                (
                    f"topk({TOPK}, pystats_cgroup_memory_working_set_bytes{{{S}}}"
                    f" / (pystats_cgroup_memory_limit_bytes{{{S}}} < Inf))",
                    "{{cgroup}}",
                )
            ],
            unit="percentunit",
            description="Working set / memory.max, for cgroups with a limit.",
        )
    )
    d = d.with_panel(
        timeseries_panel(
            "OOM kills",
            [
                (
                    f"sum by (cgroup) (increase(pystats_cgroup_memory_events_total{{{S}, "
                    f'type="oom_kill"}}[{R}]))',
                    "{{cgroup}}",
                )
            ],
            unit="none",
            bars=True,
            description="Processes killed by the OOM killer (memory.events "
            "oom_kill; a parent counts its children's kills too).",
        )
    )
    d = d.with_panel(
        timeseries_panel(
            "Memory events",
            [
                (
                    f"sum by (type) (rate(pystats_cgroup_memory_events_total{{{TOP}, "
                    f'type=~"high|max|oom|oom_kill"}}[{R}]))',
                    "{{type}}",
                )
            ],
            unit="none",
            description="memory.events per second: high (throttled at memory.high), "
            "max (hit memory.max), oom, oom_kill.",
        )
    )
    d = d.with_row(row("Network"))
    for way, title in (("receive", "received"), ("transmit", "sent")):
        d = d.with_panel(
            timeseries_panel(
                f"Top {TOPK} workloads by bytes {title}",
                [
                    (
                        f"topk({TOPK}, rate(pystats_network_{way}_bytes_total{{{INSTANCE}}}[{R}]))",
                        "{{workload}}",
                    )
                ],
                unit="Bps",
                width=12,
                description=f"Bytes {title} per second over a workload's own network namespace "
                "(bridge, user networks, pods; not --net host), all interfaces but lo.",
            )
        )
    d = d.with_row(row("Pressure (PSI)"))
    for res in ("cpu", "memory", "io"):
        d = d.with_panel(
            timeseries_panel(
                f"Top {TOPK} cgroups by {res} pressure",
                [
                    (
                        f"topk({TOPK}, rate(pystats_cgroup_{res}_pressure_seconds_total{{{S}, "
                        f'kind="some"}}[{R}]))',
                        "{{cgroup}}",
                    )
                ],
                unit="percentunit",
                width=8,
                description=f"Share of time some tasks of the cgroup "
                f"were stalled waiting for {res} ({res}.pressure 'some').",
            )
        )
    return d
