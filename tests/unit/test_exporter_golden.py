"""Golden exposition files from a fixed store, the same series through prometheus_client's path,
and `promtool check metrics` on the output.

Regenerate the golden files after an intended change with
``PYSTATS_UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit/test_exporter_golden.py``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as om_generate_latest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as om_parse
from prometheus_client.parser import text_string_to_metric_families

from agent.exporter import AgentInfo, Exporter
from agent.exporter.collector import StoreCollector
from cgroupfs.types import (
    UNLIMITED,
    CpuMax,
    CpuStat,
    IoDeviceStat,
    IoStat,
    MemoryEvents,
    MemoryStat,
    Pressure,
    PressureLine,
)
from collectors.sample import CgroupRates, CgroupSample
from collectors.store import Store

GOLDEN = Path(__file__).parent / "golden"


def _psi(some: int, full: int | None) -> Pressure:
    line = PressureLine(0.0, 0.0, 0.0, some)
    return Pressure(line, None if full is None else PressureLine(0.0, 0.0, 0.0, full))


def full_sample(path: str, inode: int) -> CgroupSample:
    return CgroupSample(
        path=path,
        inode=inode,
        mono=100.0,
        wall=1_700_000_000.5,
        cpu=CpuStat(2_500_000, 2_000_000, 500_000, 1000, 40, 1_250_000),
        cpu_max=CpuMax(50_000, 100_000),
        memory_current=104_857_600,
        memory_peak=209_715_200,
        memory_max=134_217_728,
        memory_high=UNLIMITED,
        memory_low=0,
        swap_current=0,
        swap_max=UNLIMITED,
        memory_events=MemoryEvents(0, 3, 7, 2, 2, 0),
        memory_stat=MemoryStat(anon=80_000_000, file=20_000_000, inactive_file=4_857_600),
        pids_current=12,
        pids_max=100,
        io=IoStat((IoDeviceStat(8, 0, 4096, 8192, 1, 2, 0, 0),)),
        cpu_pressure=_psi(1_000_000, 250_000),
        memory_pressure=_psi(50_000, 10_000),
        io_pressure=_psi(0, 0),
    )


def fixed_store() -> Store:
    """Three cgroups: the root, a fully read one with a workload, and one with missing data
    (no controllers, a read error) — plus collector errors counted in the tick stats."""
    store = Store()
    root = CgroupSample(
        path="",
        inode=1,
        mono=100.0,
        wall=1_700_000_000.5,
        cpu=CpuStat(usage_usec=9_000_000, user_usec=6_000_000, system_usec=3_000_000),
        memory_current=1_073_741_824,
        memory_stat=MemoryStat(anon=900, file=100, inactive_file=2_000_000_000),
        cpu_pressure=_psi(3_000_000, None),
    )
    web = full_sample("workloads/web", 2)
    # A hybrid-host-like cgroup: cpu.stat only, no memory/pids/io controllers, PSI missing,
    # and a path needing label escaping.
    odd = CgroupSample(
        path='system.slice/we"ird\\unit.service',
        inode=3,
        mono=100.0,
        wall=1_700_000_000.5,
        cpu=CpuStat(usage_usec=1, user_usec=None, system_usec=None),
    )
    store.publish(
        [
            (root, CgroupRates(cpu_cores=1.5)),
            (web, CgroupRates(cpu_cores=0.5, working_set=100_000_000)),
            (odd, CgroupRates()),
        ],
        duration_s=0.012,
        errors={"parse": 2, "gone": 1},
    )
    store.stats.last_success_wall = 1_700_000_000.75
    return store


def fixed_info() -> AgentInfo:
    labels = {"workloads/web": {"workload": "web", "policy": "batch", "pid": "ignored"}}
    return AgentInfo(
        version="0.1.0-test",
        labels=lambda p: labels.get(p, {}),
        placement_actions=lambda: {("batch", "moved"): 4, ("batch", "failed"): 1},
        workload_states=lambda: {"web": "running", "job": "exited"},
        footprint=lambda: {
            "resident_memory_bytes": 52428800.0,
            "memory_budget_bytes": 268435456.0,
            "shed_level": 1.0,
            "open_fds": 812.0,
            "cpu_seconds_total": 12.5,
        },
    )


def _normalize(payload: str) -> str:
    # The render time and the Python version differ between runs.
    out = []
    for line in payload.splitlines():
        if line.startswith("pystats_exporter_render_seconds "):
            line = "pystats_exporter_render_seconds <elapsed>"
        elif line.startswith("pystats_build_info{"):
            line = re.sub(r'python="[^"]*"', 'python="<x>"', line)
        out.append(line)
    return "\n".join(out) + "\n"


def _check_golden(name: str, payload: str) -> None:
    path = GOLDEN / name
    got = _normalize(payload)
    if os.environ.get("PYSTATS_UPDATE_GOLDEN") == "1":
        path.write_text(got)
    assert path.exists(), f"{path} missing: run with PYSTATS_UPDATE_GOLDEN=1"
    assert got == path.read_text()


@pytest.mark.parametrize("naming", ["pystats", "cadvisor"])
def test_text_matches_golden(naming: str) -> None:
    ex = Exporter(fixed_store(), fixed_info(), naming=naming)  # type: ignore[arg-type]
    _check_golden(f"exporter_{naming}.prom", ex.render().decode())


def test_openmetrics_matches_golden() -> None:
    ex = Exporter(fixed_store(), fixed_info())
    payload = ex.render(openmetrics=True).decode()
    assert payload.endswith("# EOF\n")
    _check_golden("exporter_pystats.om.txt", payload)


def test_missing_values_emit_no_series() -> None:
    text = Exporter(fixed_store(), fixed_info()).render().decode()
    odd = [ln for ln in text.splitlines() if 'we\\"ird' in ln]
    # Only cpu usage is known for that cgroup: no zeros stand in for missing data.
    assert [ln.split("{")[0] for ln in odd] == ["pystats_cgroup_cpu_usage_seconds_total"]
    assert 'pystats_errors_total{reason="parse"} 2' in text
    assert 'pystats_errors_total{reason="gone"} 1' in text
    assert "pid=" not in text  # labels beyond workload/policy are never exported


def test_agent_footprint_is_exported() -> None:
    text = Exporter(fixed_store(), fixed_info()).render().decode()
    assert "pystats_agent_shed_level 1.0" in text
    assert "pystats_agent_resident_memory_bytes 52428800.0" in text
    assert "# TYPE pystats_agent_cpu_seconds_total counter" in text


def _series(families: object) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    out: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for fam in families:  # type: ignore[attr-defined]
        for s in fam.samples:
            if s.name == "pystats_exporter_render_seconds":
                continue
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


@pytest.mark.parametrize("naming", ["pystats", "cadvisor", "both"])
def test_fast_renderer_equals_prometheus_client(naming: str) -> None:
    ex = Exporter(fixed_store(), fixed_info(), naming=naming)  # type: ignore[arg-type]
    registry = CollectorRegistry()
    registry.register(StoreCollector(ex))
    ours = _series(text_string_to_metric_families(ex.render().decode()))
    theirs = _series(text_string_to_metric_families(generate_latest(registry).decode()))
    assert ours == theirs
    ours_om = _series(om_parse(ex.render(openmetrics=True).decode()))
    theirs_om = _series(om_parse(om_generate_latest(registry).decode()))
    assert ours_om == theirs_om
    assert len(ours) > 30


def test_render_is_cached_per_tick() -> None:
    store = fixed_store()
    ex = Exporter(store, fixed_info())
    first = ex.render()
    cached = ex._cache
    assert ex.render() == first and ex._cache is cached
    e = store.entries["workloads/web"]
    store.publish([(e.sample, e.rates)])
    ex.render()
    assert ex._cache is not cached


def _promtool() -> str:
    tool = shutil.which("promtool") or "/usr/bin/promtool"
    if not os.path.exists(tool):
        pytest.skip("promtool not installed (Debian package prometheus)")
    return tool


@pytest.mark.prometheus
@pytest.mark.parametrize("naming", ["pystats", "cadvisor"])
def test_promtool_check_metrics_is_clean(naming: str) -> None:
    ex = Exporter(fixed_store(), fixed_info(), naming=naming)  # type: ignore[arg-type]
    res = subprocess.run(
        [_promtool(), "check", "metrics"], input=ex.render(), capture_output=True, timeout=60
    )
    problems = (res.stdout + res.stderr).decode()
    assert res.returncode == 0 and problems.strip() == "", problems
