"""Agent health: is each agent up, ticking on time, erroring, and what its exporter costs."""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard

from dashboards.common import INSTANCE, base_dashboard, row, stat_panel, timeseries_panel

UID = "pystats-agent"
R = "$__rate_interval"
I = "{{instance}}"  # noqa: E741


def build() -> Dashboard:
    d = base_dashboard(
        UID,
        "pystats / Agent health",
        "pystats agents: up, tick rate and duration, staleness, errors, footprint, exporter cost.",
        ["agent"],
    )
    d = d.with_row(row("Status"))
    d = d.with_panel(
        stat_panel(
            "Agents up",
            f"sum(up{{{INSTANCE}}})",
            unit="none",
            description="Agents Prometheus scraped successfully.",
        )
    )
    d = d.with_panel(
        stat_panel(
            "Version",
            f"count by (version) (pystats_build_info{{{INSTANCE}}})",
            unit="none",
            description="Agents per pystats version (pystats_build_info).",
        )
    )
    d = d.with_panel(
        stat_panel(
            "Seconds since last good tick",
            f"max(time() - pystats_last_successful_tick_timestamp_seconds{{{INSTANCE}}})",
            unit="s",
            description="Age of the newest complete tick of the most stale agent.",
        )
    )
    d = d.with_panel(
        stat_panel(
            "Cgroups tracked",
            f"sum(pystats_cgroups_tracked{{{INSTANCE}}})",
            unit="none",
            description="Cgroups in the agents' stores.",
        )
    )
    d = d.with_row(row("Collector"))
    d = d.with_panel(
        timeseries_panel(
            "Tick rate and duration",
            [
                (f"rate(pystats_ticks_total{{{INSTANCE}}}[{R}])", f"{I} ticks/s"),
                (f"pystats_tick_duration_seconds{{{INSTANCE}}}", f"{I} tick duration (s)"),
            ],
            unit="none",
            description="Ticks published per second and the last tick's duration.",
        )
    )
    d = d.with_panel(
        timeseries_panel(
            "Collector errors",
            [
                (
                    f"sum by (instance, reason) (rate(pystats_errors_total{{{INSTANCE}}}[{R}]))"
                    " or on() vector(0)",
                    f"{I} {{{{reason}}}}",
                )
            ],
            unit="none",
            description="Errors per second by reason (0 when there were none).",
        )
    )
    d = d.with_panel(
        timeseries_panel(
            "Part failures",
            [
                (
                    "sum by (instance, part) "
                    f"(increase(pystats_agent_part_failures_total{{{INSTANCE}}}[{R}]))"
                    " or on() vector(0)",
                    f"{I} {{{{part}}}}",
                )
            ],
            unit="none",
            bars=True,
            description="Failures of the agent's parts (0 when there were none): an optional "
            "part (policies, selfmon, oomlog, events) is restarted, an essential one stops "
            "the agent.",
        )
    )
    d = d.with_row(row("Workloads and placement"))
    d = d.with_panel(
        timeseries_panel(
            "Workloads by state",
            [(f"count by (state) (pystats_workload_state{{{INSTANCE}}})", "{{state}}")],
            unit="none",
            stack=True,
            description="Workloads the agents manage, by state.",
        )
    )
    d = d.with_panel(
        timeseries_panel(
            "Placement actions",
            [
                (
                    "sum by (policy, outcome) "
                    f"(increase(pystats_placement_actions_total{{{INSTANCE}}}"
                    f"[{R}]))",
                    "{{policy}} {{outcome}}",
                )
            ],
            unit="none",
            bars=True,
            description="Placement actions by policy and outcome.",
        )
    )
    d = d.with_row(row("Footprint"))
    d = d.with_panel(
        timeseries_panel(
            "Agent memory",
            [
                (f"pystats_agent_resident_memory_bytes{{{INSTANCE}}}", f"{I} RSS"),
                (f"pystats_agent_memory_budget_bytes{{{INSTANCE}}}", f"{I} budget"),
            ],
            unit="bytes",
            description="The agent's RSS against its memory_budget; over it, work is shed.",
        )
    )
    d = d.with_panel(
        timeseries_panel(
            "Agent CPU and shedding",
            [
                (f"rate(pystats_agent_cpu_seconds_total{{{INSTANCE}}}[{R}])", f"{I} cores"),
                (f"pystats_agent_shed_level{{{INSTANCE}}}", f"{I} shed level"),
            ],
            unit="none",
            description="CPU the agent uses (cores), and the shed level (0 none, 1, 2).",
        )
    )
    d = d.with_row(row("Exporter"))
    d = d.with_panel(
        timeseries_panel(
            "Scrape cost",
            [
                (f"pystats_exporter_render_seconds{{{INSTANCE}}}", f"{I} render (s)"),
                (f"scrape_duration_seconds{{{INSTANCE}}}", f"{I} scrape (s)"),
            ],
            unit="s",
            description="Time to render one tick's metrics, and Prometheus' scrape time.",
        )
    )
    d = d.with_panel(
        timeseries_panel(
            "Series per scrape",
            [(f"scrape_samples_scraped{{{INSTANCE}}}", I)],
            unit="none",
            description="Samples in each scrape (cardinality watch).",
        )
    )
    return d
