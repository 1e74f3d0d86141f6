"""Drill-down: everything about one cgroup (or all cgroups of one workload)."""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard

from dashboards.common import INSTANCE, base_dashboard, query_variable, row, timeseries_panel

UID = "pystats-cgroup"
C = f'{INSTANCE}, workload=~"$workload", cgroup=~"$cgroup"'
R = "$__rate_interval"
L = "{{cgroup}}"


def build() -> Dashboard:
    d = base_dashboard(
        UID,
        "pystats / Cgroup",
        "One cgroup or workload in detail: CPU, throttling, memory, events, pids, I/O, PSI.",
        ["cgroup"],
    )
    d = d.with_variable(
        query_variable(
            "workload",
            "Workload",
            f"label_values(pystats_cgroup_cpu_usage_seconds_total{{{INSTANCE}}}, workload)",
        )
    )
    d = d.with_variable(
        query_variable(
            "cgroup",
            "Cgroup",
            f"label_values(pystats_cgroup_cpu_usage_seconds_total{{{INSTANCE}, "
            f'workload=~"$workload"}}, cgroup)',
        )
    )
    d = d.with_row(row("CPU"))
    d = d.with_panel(
        timeseries_panel(
            "CPU usage and limit",
            [
                (f"rate(pystats_cgroup_cpu_usage_seconds_total{{{C}}}[{R}])", f"{L} used"),
                (f"rate(pystats_cgroup_cpu_user_seconds_total{{{C}}}[{R}])", f"{L} user"),
                (f"rate(pystats_cgroup_cpu_system_seconds_total{{{C}}}[{R}])", f"{L} system"),
                (f"pystats_cgroup_cpu_quota_cores{{{C}}} < Inf", f"{L} limit (cpu.max)"),
            ],
            unit="none",
            description="Cores busy (CPU seconds per second) and the cpu.max limit.",
        )
    )
    d = d.with_panel(
        timeseries_panel(
            "CPU throttling",
            [
                (
                    f"rate(pystats_cgroup_cpu_throttled_periods_total{{{C}}}[{R}])"
                    f" / (rate(pystats_cgroup_cpu_periods_total{{{C}}}[{R}]) > 0)",
                    f"{L} periods",
                ),
                (f"rate(pystats_cgroup_cpu_throttled_seconds_total{{{C}}}[{R}])", f"{L} time"),
            ],
            unit="percentunit",
            description="Share of periods throttled, and seconds throttled per second.",
        )
    )
    d = d.with_row(row("Memory"))
    d = d.with_panel(
        timeseries_panel(
            "Memory",
            [
                (f"pystats_cgroup_memory_current_bytes{{{C}}}", f"{L} current"),
                (f"pystats_cgroup_memory_working_set_bytes{{{C}}}", f"{L} working set"),
                (f"pystats_cgroup_memory_anon_bytes{{{C}}}", f"{L} anon"),
                (f"pystats_cgroup_memory_file_bytes{{{C}}}", f"{L} file"),
                (f"pystats_cgroup_memory_peak_bytes{{{C}}}", f"{L} peak"),
                (f"pystats_cgroup_memory_limit_bytes{{{C}}} < Inf", f"{L} max"),
                (f"pystats_cgroup_memory_high_bytes{{{C}}} < Inf", f"{L} high"),
            ],
            unit="bytes",
            description="memory.current, working set, anon and file pages, "
            "memory.peak, and the memory.max / memory.high limits where set.",
        )
    )
    d = d.with_panel(
        timeseries_panel(
            "Memory events",
            [
                (
                    "sum by (cgroup, type) "
                    f"(increase(pystats_cgroup_memory_events_total{{{C}}}[{R}]))",
                    f"{L} {{{{type}}}}",
                )
            ],
            unit="none",
            bars=True,
            description="memory.events increments: low, high, max, oom, oom_kill, oom_group_kill.",
        )
    )
    d = d.with_panel(
        timeseries_panel(
            "Swap",
            [(f"pystats_cgroup_memory_swap_bytes{{{C}}}", f"{L} swap")],
            unit="bytes",
            width=8,
            description="memory.swap.current.",
        )
    )
    d = d.with_panel(
        timeseries_panel(
            "Tasks",
            [
                (f"pystats_cgroup_pids_current{{{C}}}", f"{L} tasks"),
                (f"pystats_cgroup_pids_limit{{{C}}} < Inf", f"{L} pids.max"),
            ],
            unit="none",
            width=8,
            description="pids.current and pids.max.",
        )
    )
    d = d.with_panel(
        timeseries_panel(
            "OOM kills (cumulative)",
            [(f'pystats_cgroup_memory_events_total{{{C}, type="oom_kill"}}', L)],
            unit="none",
            width=8,
            description="memory.events oom_kill since the cgroup was created.",
        )
    )
    d = d.with_row(row("I/O"))
    d = d.with_panel(
        timeseries_panel(
            "I/O throughput",
            [
                (
                    f"sum by (cgroup, device, direction) "
                    f"(rate(pystats_cgroup_io_bytes_total{{{C}}}[{R}]))",
                    f"{L} {{{{device}}}} {{{{direction}}}}",
                )
            ],
            unit="Bps",
            description="io.stat bytes per second by device (major:minor).",
        )
    )
    d = d.with_panel(
        timeseries_panel(
            "I/O operations",
            [
                (
                    f"sum by (cgroup, device, direction) "
                    f"(rate(pystats_cgroup_io_operations_total{{{C}}}[{R}]))",
                    f"{L} {{{{device}}}} {{{{direction}}}}",
                )
            ],
            unit="iops",
            description="io.stat operations per second by device (major:minor).",
        )
    )
    d = d.with_row(row("Pressure (PSI)"))
    for res in ("cpu", "memory", "io"):
        d = d.with_panel(
            timeseries_panel(
                f"{res} pressure",
                [
                    (
                        f"rate(pystats_cgroup_{res}_pressure_seconds_total{{{C}}}[{R}])",
                        f"{L} {{{{kind}}}}",
                    )
                ],
                unit="percentunit",
                width=8,
                description=f"Share of time some (or all) tasks were "
                f"stalled on {res} ({res}.pressure totals).",
            )
        )
    return d
