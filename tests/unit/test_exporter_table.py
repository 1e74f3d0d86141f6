"""The metric tables follow Prometheus naming rules and stay bounded."""

from __future__ import annotations

import re

import pytest

from agent.exporter import Exporter
from agent.exporter.cadvisor import CADVISOR_METRICS, cadvisor_labels
from agent.exporter.metrics import CGROUP_METRICS, MetricSpec
from collectors.store import Store
from tests.unit.test_exporter_golden import fixed_info, fixed_store, full_sample

BASE_UNITS = {"", "seconds", "bytes", "cores"}


def test_pystats_names_units_and_types() -> None:
    names = [s.name for s in CGROUP_METRICS]
    assert len(names) == len(set(names))
    for s in CGROUP_METRICS:
        assert re.fullmatch(r"pystats_cgroup_[a-z0-9_]+", s.name), s.name
        assert not s.name.endswith("_total"), "the sample name adds _total"
        assert s.unit in BASE_UNITS, s.name
        assert not re.search(r"_(milli|micro|kilo|mega)", s.name)
        assert set(s.labels).isdisjoint({"cgroup", "workload", "policy"})
        assert s.help.endswith(".")


def test_cadvisor_names_are_unique_and_prefixed() -> None:
    names = [s.sample_name for s in CADVISOR_METRICS]
    assert len(names) == len(set(names))
    assert all(n.startswith("container_") for n in names)
    assert {"container_cpu_usage_seconds_total", "container_memory_working_set_bytes",
            "container_oom_events_total", "container_spec_memory_limit_bytes",
            "container_pressure_memory_stalled_seconds_total"} <= set(names)  # fmt: skip


def test_spec_validation() -> None:
    with pytest.raises(ValueError):
        MetricSpec("x_seconds", "gauge", "h.", "bytes", get=lambda s, r: 1)
    with pytest.raises(ValueError):
        MetricSpec("x", "gauge", "h.")
    with pytest.raises(ValueError):
        MetricSpec("x", "gauge", "h.", labels=("a",), get=lambda s, r: 1)


def test_cadvisor_id_is_the_path_from_the_mount() -> None:
    base = cadvisor_labels("/system.slice/pystats.service/")
    assert base("", {}) == {"id": "/system.slice/pystats.service", "name": ""}
    assert base("a/b", {"workload": "web"}) == {
        "id": "/system.slice/pystats.service/a/b",
        "name": "web",
    }
    assert cadvisor_labels("")("a", {}) == {"id": "/a", "name": ""}
    assert cadvisor_labels("")("", {}) == {"id": "/", "name": ""}


def test_cadvisor_reports_cfs_only_with_a_quota() -> None:
    text = Exporter(fixed_store(), fixed_info(), naming="cadvisor").render().decode()
    periods = [ln for ln in text.splitlines() if ln.startswith("container_cpu_cfs_periods_total")]
    assert periods == ['container_cpu_cfs_periods_total{id="/workloads/web",name="web"} 1000']
    assert 'container_spec_cpu_quota{id="/workloads/web",name="web"} 50000' in text


def test_label_cache_follows_the_store_and_the_provider() -> None:
    store = Store()
    names = {"a": "one"}
    ex = Exporter(store, fixed_info().__class__(labels=lambda p: {"workload": names.get(p, "")}))
    store.publish([(full_sample("a", 1), fixed_store().entries["workloads/web"].rates)])
    assert 'workload="one"' in ex.render().decode()
    names["a"] = "two"  # the workload behind a cgroup changed: picked up on the next tick
    store.publish([(full_sample("a", 1), store.entries["a"].rates)])
    text = ex.render().decode()
    assert 'workload="two"' in text and 'workload="one"' not in text
    store.publish([(full_sample("b", 2), store.entries["a"].rates)], gone=["a"])
    store.expire_gone()
    ex.render()
    assert set(ex._tables[0].labeler._cache) == {"b"}
