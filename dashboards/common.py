"""Shared pieces of the pystats dashboards: data source, variables, panel helpers.

Every panel query is PromQL over metric names produced by agent/exporter/metrics.py (the test
tests/unit/test_dashboards_metrics.py checks each name against the exporter's tables).
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import common as common_b
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import prometheus, stat, timeseries
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models.dashboard import (
    DataSourceRef,
    VariableOption,
    VariableRefresh,
    VariableSort,
)

DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
# Every query selects the chosen agents; dashboards add their own matchers after it.
INSTANCE = 'instance=~"$instance"'
TOPK = "10"


def datasource_variable() -> dash.DatasourceVariable:
    return dash.DatasourceVariable("datasource").label("Data source").type("prometheus")


def query_variable(
    name: str, label: str, query: str, *, include_all: bool = True, multi: bool = True
) -> dash.QueryVariable:
    v = (
        dash.QueryVariable(name)
        .label(label)
        .datasource(DATASOURCE)
        .query(query)
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC)
        .multi(multi)
        .include_all(include_all)
    )
    if include_all:
        v = v.all_value(".*").current(VariableOption(selected=True, text="All", value="$__all"))
    return v


def instance_variable() -> dash.QueryVariable:
    return query_variable("instance", "Agent", "label_values(pystats_build_info, instance)")


def _target(expr: str, legend: str, ref: str) -> prometheus.Dataquery:
    return prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(ref).range()


def timeseries_panel(
    title: str,
    targets: list[tuple[str, str]],
    *,
    unit: str,
    description: str,
    width: int = 12,
    height: int = 8,
    stack: bool = False,
    bars: bool = False,
) -> timeseries.Panel:
    """A time series panel; ``targets`` are (PromQL, legend format) pairs."""
    p = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .span(width)
        .height(height)
        .legend(
            common_b.VizLegendOptions()
            .display_mode(common.LegendDisplayMode.TABLE)
            .placement(common.LegendPlacement.RIGHT)
            .show_legend(True)
            .calcs(["lastNotNull", "max"])
        )
        .tooltip(common_b.VizTooltipOptions().mode(common.TooltipDisplayMode.MULTI))
    )
    if stack:
        p = p.stacking(common_b.StackingConfig().mode(common.StackingMode.NORMAL)).fill_opacity(30)
    if bars:
        p = p.draw_style(common.GraphDrawStyle.BARS).fill_opacity(80)
    for i, (expr, legend) in enumerate(targets):
        p = p.with_target(_target(expr, legend, chr(ord("A") + i)))
    return p


def stat_panel(
    title: str, expr: str, *, unit: str, description: str, width: int = 6, height: int = 4
) -> stat.Panel:
    return (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .span(width)
        .height(height)
        .with_target(_target(expr, "", "A"))
    )


def row(title: str) -> dash.Row:
    return dash.Row(title)


def base_dashboard(uid: str, title: str, description: str, tags: list[str]) -> dash.Dashboard:
    return (
        dash.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["pystats", *tags])
        .refresh("30s")
        .time("now-1h", "now")
        .timezone("browser")
        .editable()
        .with_variable(datasource_variable())
        .with_variable(instance_variable())
    )
