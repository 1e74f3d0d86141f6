"""A real Prometheus (Debian's package) for VM tests: started on a free loopback port with the
shipped alert rules (plus a copy with ``for: 0s`` that fires within seconds), scraping one target.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

from dashboards.queries import JSON_DIR

ALERTS = JSON_DIR.parent / "alerts.yaml"
PROMETHEUS = "/usr/bin/prometheus"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(
    what: str, cond: Callable[[], object], timeout: float = 120.0, every: float = 0.25
) -> None:
    """Poll ``cond`` until true; OSError/ValueError/KeyError count as "not yet"."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError, KeyError):
            if cond():
                return
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def prom_api(base: str, path: str, **params: str) -> Any:
    url = f"{base}{path}?{urllib.parse.urlencode(params)}" if params else base + path
    with urllib.request.urlopen(url, timeout=30) as resp:
        doc = json.load(resp)
    assert doc["status"] == "success", doc
    return doc["data"]


def _fast_rules(src: Path, dst: Path) -> None:
    """The shipped rules with ``for: 0s`` and a ``Fast`` suffix: they fire within seconds."""
    doc = yaml.safe_load(src.read_text())
    for g in doc["groups"]:
        g["name"] += "-fast"
        for r in g["rules"]:
            r["alert"] += "Fast"
            r["for"] = "0s"
    dst.write_text(yaml.safe_dump(doc))


@contextlib.contextmanager
def prometheus_server(tmp: Path, target_port: int) -> Iterator[str]:
    port = free_port()
    shutil.copy(ALERTS, tmp / "alerts.yaml")
    _fast_rules(ALERTS, tmp / "alerts_fast.yaml")
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(tmp / "alerts.yaml"), str(tmp / "alerts_fast.yaml")],
        "scrape_configs": [
            {"job_name": "pystats", "static_configs": [{"targets": [f"127.0.0.1:{target_port}"]}]}
        ],
    }
    (tmp / "prometheus.yml").write_text(yaml.safe_dump(config))
    (tmp / "data").mkdir()
    log = open(tmp / "prometheus.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={tmp / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--web.enable-lifecycle",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for("Prometheus to be ready", lambda: _ready(base), timeout=90, every=0.5)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _ready(base: str) -> bool:
    with urllib.request.urlopen(base + "/-/ready", timeout=5) as resp:
        return bool(resp.status == 200)


def scraped_up(prom: str) -> bool:
    """Prometheus has scraped the pystats job successfully."""
    res = prom_api(prom, "/api/v1/query", query='up{job="pystats"}')["result"]
    return bool(res) and res[0]["value"][1] == "1"
