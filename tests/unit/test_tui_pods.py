"""The live view's tree shows a pod with its workloads below it: a pod is the cgroup subtree
<root>/pods/<pod>, its members' cgroups sit beneath, and tree mode follows cgroup paths."""

from __future__ import annotations

from agent.statsview.rows import StatsRow
from agent.tui.model import ViewState, build_view


def test_a_pod_is_a_node_with_its_workloads_beneath() -> None:
    rows = [
        StatsRow(path="", name="/", populated=True),
        StatsRow(path="pods", name="pods", populated=True),
        StatsRow(path="pods/web", name="web", populated=True),
        StatsRow(path="pods/web/web-infra", name="web-infra", workload="web-infra", populated=True),
        StatsRow(path="pods/web/api", name="api", workload="api", populated=True),
        StatsRow(path="solo", name="solo", workload="solo", populated=True),
    ]
    view = build_view(rows, ViewState(tree=True, sort_key="name", reverse=False))
    depth = {v.row.path: v.depth for v in view}
    order = [v.row.path for v in view]
    assert depth["pods/web"] == depth["pods"] + 1
    assert depth["pods/web/api"] == depth["pods/web/web-infra"] == depth["pods/web"] + 1
    # the members follow their pod, before anything outside it
    at = order.index("pods/web")
    assert set(order[at + 1 : at + 3]) == {"pods/web/api", "pods/web/web-infra"}
    pod = next(v for v in view if v.row.path == "pods/web")
    assert pod.children == 2 and "web" in pod.label(tree=True)
    collapsed = build_view(
        rows, ViewState(tree=True, sort_key="name", reverse=False, collapsed={"pods/web"})
    )
    folded = next(v for v in collapsed if v.row.path == "pods/web")
    assert "(+2)" in folded.label(tree=True)
    assert not any(v.row.path.startswith("pods/web/") for v in collapsed)
