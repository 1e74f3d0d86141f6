"""The alert rules load (`promtool check rules`) and behave (`promtool test rules`)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

DASHBOARDS = Path(__file__).resolve().parents[2] / "dashboards"
ALERTS = DASHBOARDS / "alerts.yaml"
EXPECTED = {
    "PystatsOOMKill",
    "PystatsMemoryNearLimit",
    "PystatsCPUThrottled",
    "PystatsAgentDown",
    "PystatsAgentStale",
}


def _promtool() -> str:
    tool = shutil.which("promtool") or "/usr/bin/promtool"
    if not os.path.exists(tool):
        pytest.skip("promtool not installed (Debian package prometheus)")
    return tool


def _run(*args: str) -> str:
    res = subprocess.run(
        [_promtool(), *args], cwd=DASHBOARDS, capture_output=True, text=True, timeout=120
    )
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    return out


def test_every_alert_is_defined_once_and_unit_tested() -> None:
    rules = [r for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]]
    names = [r["alert"] for r in rules]
    assert sorted(names) == sorted(EXPECTED)
    tests = yaml.safe_load((DASHBOARDS / "alerts_test.yaml").read_text())["tests"]
    tested_firing = {
        case["alertname"]
        for t in tests
        for case in t.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert tested_firing == EXPECTED


@pytest.mark.prometheus
def test_promtool_check_rules() -> None:
    assert "SUCCESS: 5 rules found" in _run("check", "rules", "alerts.yaml")


@pytest.mark.prometheus
def test_promtool_test_rules() -> None:
    assert "SUCCESS" in _run("test", "rules", "alerts_test.yaml")
