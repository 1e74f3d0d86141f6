"""Every PromQL expression of every dashboard panel, ready to send to Prometheus.

Used by the end-to-end test (tests/vm/test_exporter_vm.py) to prove that no panel would show
"No data" against a real agent, and by the unit tests to check metric names.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Not imported from dashboards.build: the SDK is slow to import (seconds in the test VM).
JSON_DIR = Path(__file__).parent / "json"


@dataclass(frozen=True, slots=True)
class PanelQuery:
    dashboard: str  # file name
    panel: str  # panel title
    ref_id: str
    expr: str


def _panels(model: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    for p in model.get("panels") or []:
        yield p
        yield from p.get("panels") or []  # collapsed rows keep their panels inside


def panel_queries(json_dir: Path = JSON_DIR) -> list[PanelQuery]:
    out = []
    for path in sorted(json_dir.glob("*.json")):
        model = json.loads(path.read_text())
        for p in _panels(model):
            for t in p.get("targets") or []:
                if t.get("expr"):
                    out.append(
                        PanelQuery(path.name, p.get("title", ""), t.get("refId", ""), t["expr"])
                    )
    return out


def variable_queries(json_dir: Path = JSON_DIR) -> list[tuple[str, str, str]]:
    """(dashboard, variable name, query) of every query variable."""
    out = []
    for path in sorted(json_dir.glob("*.json")):
        model = json.loads(path.read_text())
        for v in (model.get("templating") or {}).get("list") or []:
            if v.get("type") == "query":
                q = v.get("query")
                q = q.get("query") if isinstance(q, dict) else q
                if q:
                    out.append((path.name, v["name"], q))
    return out


_VAR = re.compile(r"\$(__\w+|\w+)|\$\{(\w+)(?::\w+)?\}")


def substitute(expr: str, values: Mapping[str, str]) -> str:
    """Replace Grafana variables ($name, ${name}, $__rate_interval...) with ``values``.

    A variable missing from ``values`` raises KeyError, so a new variable cannot slip through
    the end-to-end test unexercised.
    """

    def repl(m: re.Match[str]) -> str:
        return values[m.group(1) or m.group(2)]

    return _VAR.sub(repl, expr)
