"""The checked-in dashboard JSON is what the code generates, and every query is valid PromQL
over metric names the exporter really produces."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from agent.exporter.agentinfo import self_metrics
from agent.exporter.cadvisor import CADVISOR_METRICS
from agent.exporter.metrics import CGROUP_METRICS
from dashboards import build
from dashboards.queries import panel_queries, substitute, variable_queries
from tests.unit.test_exporter_golden import fixed_info, fixed_store

ALERTS = Path(build.__file__).parent / "alerts.yaml"
VALUES = {"instance": ".+", "workload": ".*", "cgroup": ".+", "__rate_interval": "1m"}
# Series Prometheus adds itself for every target.
PROMETHEUS_OWN = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}


def test_checked_in_json_is_regenerated_exactly() -> None:
    generated = build.generate()
    on_disk = {p.name: p.read_text() for p in build.JSON_DIR.glob("*.json")}
    assert sorted(on_disk) == sorted(generated), "run: python -m dashboards.build"
    for name, text in generated.items():
        assert on_disk[name] == text, f"{name} is stale: run python -m dashboards.build"


def test_build_check_mode_reports_stale_files(tmp_path: Path) -> None:
    assert build.main(["--out", str(tmp_path), "--check"]) == 1
    assert build.main(["--out", str(tmp_path)]) == 0
    assert build.main(["--out", str(tmp_path), "--check"]) == 0
    (tmp_path / "pystats-agent.json").write_text("{}")
    assert build.main(["--out", str(tmp_path), "--check"]) == 1


def test_dashboards_have_unique_uids_titled_described_panels_and_variables() -> None:
    uids = set()
    for path in build.JSON_DIR.glob("*.json"):
        model = json.loads(path.read_text())
        uids.add(model["uid"])
        names = [v["name"] for v in model["templating"]["list"]]
        assert names[:2] == ["datasource", "instance"]
        for p in model["panels"]:
            if p["type"] == "row":
                continue
            assert p["title"] and p.get("description"), (path.name, p)
            assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
    assert len(uids) == 3
    cgroup_vars = {v for d, v, _ in variable_queries() if d == "pystats-cgroup.json"}
    assert cgroup_vars == {"instance", "workload", "cgroup"}  # the drill-down's selectors


def _exported_names() -> dict[str, str]:
    """Sample name -> type, over every table and the agent's self-metrics."""
    names = {s.sample_name: s.type for s in (*CGROUP_METRICS, *CADVISOR_METRICS)}
    for m, _ in self_metrics(fixed_store(), fixed_info(), 0.0):
        names[m.sample_name] = str(m.type)
    return names


def _metric_names(expr: str) -> set[str]:
    words = set(re.findall(r"\b([a-z_][a-z0-9_]*)\b(?=\s*[{\[),\s]|$)", expr))
    return {w for w in words if w.startswith(("pystats_", "container_")) or w in PROMETHEUS_OWN}


def _all_exprs() -> list[str]:
    exprs = [q.expr for q in panel_queries()] + [q for _, _, q in variable_queries()]
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    exprs += [r["expr"] for g in groups for r in g["rules"]]
    return exprs


def test_every_metric_name_in_dashboards_and_alerts_is_exported() -> None:
    exported = _exported_names()
    used: set[str] = set()
    for expr in _all_exprs():
        names = _metric_names(expr)
        assert names, f"no metric found in {expr!r}"
        used |= names
    assert used - PROMETHEUS_OWN <= set(exported), used - set(exported) - PROMETHEUS_OWN
    # The dashboards cover the families a user cares about, not only a few.
    assert len(used) >= 25


def test_rate_is_only_applied_to_counters() -> None:
    exported = _exported_names()
    for expr in _all_exprs():
        for fn, name in re.findall(r"\b(rate|increase)\((\w+)", expr):
            assert exported.get(name) == "counter", f"{fn}() over non-counter {name}: {expr}"


@pytest.mark.prometheus
def test_every_query_is_valid_promql(tmp_path: Path) -> None:
    tool = shutil.which("promtool") or "/usr/bin/promtool"
    if not os.path.exists(tool):
        pytest.skip("promtool not installed (Debian package prometheus)")
    # promtool has no PromQL checker of its own in this version: recording rules are parsed.
    rules = [
        {"record": f"check:q{i}", "expr": substitute(q.expr, VALUES)}
        for i, q in enumerate(panel_queries())
    ]
    f = tmp_path / "q.yaml"
    f.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    res = subprocess.run([tool, "check", "rules", str(f)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"SUCCESS: {len(rules)} rules found" in res.stdout


def test_substitute_fails_on_unknown_variables() -> None:
    assert substitute('x{a=~"$cgroup"}[$__rate_interval]', VALUES) == 'x{a=~".+"}[1m]'
    assert substitute("${cgroup:regex}", VALUES) == ".+"
    with pytest.raises(KeyError):
        substitute("$nope", VALUES)
