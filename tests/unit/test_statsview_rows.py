"""Display rows from a store: unavailable stays None, docker's units, tree totals, JSON schema."""

from __future__ import annotations

import json
import math

import jsonschema
import pytest

from agent.statsview import fmt
from agent.statsview.fake import T0, MiB, demo_store, sample
from agent.statsview.history import history_from_json, history_from_store, history_to_json
from agent.statsview.jsonio import StatsDoc, doc_from_json, doc_to_json, dumps, schema
from agent.statsview.render import HEADERS, render_table
from agent.statsview.rows import ROW_FIELDS, StatsRow, rows_from_store, subtree_totals, visible
from collectors.store import Store


def _rows() -> dict[str, StatsRow]:
    return {r.path: r for r in rows_from_store(demo_store())}


def test_unavailable_values_stay_none_not_zero() -> None:
    r = _rows()["hybrid.slice"]
    assert r.mem_usage is None and r.mem_percent is None and r.pids_current is None
    assert r.memory_events is None and r.oom_kills is None
    assert r.cpu_percent == pytest.approx(5.0)


def test_limits_use_max_for_unlimited_and_quota_in_cores() -> None:
    rows = _rows()
    web = rows["pystats.slice/web"]
    assert web.memory_max == 512 * MiB
    assert web.memory_high == "max"
    assert web.pids_max == "max"
    assert web.cpu_quota_cores == pytest.approx(1.0)
    assert rows["system.slice"].cpu_quota_cores is None


def test_names_map_cgroups_to_workloads() -> None:
    rows = {r.path: r for r in rows_from_store(demo_store(), {"pystats.slice/web": "web"})}
    assert rows["pystats.slice/web"].name == "web"
    assert rows["pystats.slice/web"].workload == "web"
    assert rows["system.slice"].workload is None
    assert rows[""].name == "/"


def test_visible_hides_unpopulated_unless_all() -> None:
    rows = list(_rows().values())
    assert "system.slice/old.service" not in {r.path for r in visible(rows, show_all=False)}
    assert "system.slice/old.service" in {r.path for r in visible(rows, show_all=True)}


def test_unknown_populated_counts_as_shown() -> None:
    assert StatsRow(path="x", name="x", populated=None).shown_populated
    assert not StatsRow(path="x", name="x", populated=False).shown_populated


def test_subtree_totals_fill_only_missing_values() -> None:
    tot = subtree_totals(_rows().values())
    # The root has no memory.current (as on a real host): its total is its children's sum.
    children = [r for p, r in _rows().items() if p and "/" not in p]
    want = sum(r.memory_current for r in children if r.memory_current is not None)
    assert tot[""].memory_current == want
    # cpu is hierarchical in the kernel: the root's own value is kept, not summed again.
    assert tot[""].cpu_cores == _rows()[""].cpu_cores
    assert tot["pystats.slice"].mem_usage == _rows()["pystats.slice"].mem_usage


def test_docker_units() -> None:
    assert fmt.bytes_binary(1536 * MiB) == "1.5GiB"
    assert fmt.bytes_binary(100) == "100B"
    assert fmt.bytes_binary(None) == "-"
    assert fmt.bytes_decimal(12_345_678) == "12.3MB"
    assert fmt.percent(12.3456) == "12.35%"
    assert fmt.usage_limit(None, None) == "- / -"
    assert fmt.limit_bytes("max") == "max"
    assert fmt.block_io(0, 1000) == "0B / 1kB"


def test_render_table_has_docker_columns_and_dashes() -> None:
    text = render_table(visible(_rows().values(), False))
    lines = text.splitlines()
    assert lines[0].split("   ")[0] == "CGROUP"
    for h in HEADERS:
        assert h in lines[0]
    hybrid = next(line for line in lines if line.startswith("hybrid.slice"))
    assert "- / -" in hybrid and "0B" not in hybrid
    web = next(line for line in lines if line.startswith("pystats.slice/web"))
    assert "395MiB / 512MiB" in web


def test_json_document_validates_and_round_trips() -> None:
    rows = visible(_rows().values(), True)
    doc = StatsDoc(rows, T0, "standalone", "/sys/fs/cgroup", "cgroup v2", 30, 1.0)
    data = json.loads(dumps(doc))
    jsonschema.validate(data, schema())
    back = doc_from_json(data)
    assert back.rows == list(rows)
    assert back.mode == "cgroup v2" and back.tick == 30


def test_schema_rejects_a_zero_for_unlimited_and_unknown_fields() -> None:
    doc = doc_to_json(StatsDoc(list(_rows().values()), T0, "agent", "/", "v2"))
    bad = json.loads(json.dumps(doc))
    bad["rows"][0]["memory_max"] = "unlimited"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema())
    bad = json.loads(json.dumps(doc))
    bad["rows"][0]["surprise"] = 1
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema())


def test_schema_lists_every_row_field() -> None:
    row_schema = schema()["$defs"]["row"]
    assert set(row_schema["required"]) == set(ROW_FIELDS)
    assert set(row_schema["properties"]) == set(ROW_FIELDS)


def test_history_and_oom_events_from_store() -> None:
    store = demo_store(ticks=30)
    h = history_from_store(store, "pystats.slice/batch")
    assert h is not None
    assert len(h.cpu_cores) == 30
    kinds = [e.kind for e in h.events]
    assert kinds.count("oom_kill") == 2 and "first_seen" in kinds
    assert history_from_json(json.loads(json.dumps(history_to_json(h)))) == h
    assert history_from_store(store, "nope") is None


def test_row_keeps_identity_of_gone_cgroups() -> None:
    store = Store()
    store.publish([sample("a", 0, cores=0.5, mem=MiB)])
    store.publish([], gone=["a"])
    (row,) = rows_from_store(store)
    assert row.gone and row.cpu_cores == 0.5
    assert visible([row], show_all=False) == []


def test_nan_never_reaches_json() -> None:
    row = StatsRow(path="x", name="x", cpu_percent=math.nan)
    with pytest.raises(ValueError):
        dumps(StatsDoc([row], T0, "agent", "/", "v2"))


def test_checked_in_schema_is_what_schema_gen_builds() -> None:
    from agent.statsview.schema_gen import SCHEMA_PATH, render

    assert SCHEMA_PATH.read_text() == render(), "run: python -m agent.statsview.schema_gen"


def test_cpu_max_unknown_vs_unlimited() -> None:
    from agent.tui.widgets.detail import limits_text

    rows = _rows()
    assert limits_text(rows["pystats.slice/web"]).startswith("cpu.max 1 cores")
    assert rows["system.slice"].cpu_max_quota_usec == "max"
    assert limits_text(rows["system.slice"]).startswith("cpu.max max")
    assert rows["hybrid.slice"].cpu_max_quota_usec is None  # no cpu controller: unknown
    assert limits_text(rows["hybrid.slice"]).startswith("cpu.max -")


def test_row_cache_rebuilds_only_changed_entries() -> None:
    from agent.statsview.rows import RowCache

    store = Store()
    store.publish([sample("a", 0, cores=1.0, mem=MiB), sample("b", 0, cores=2.0, mem=MiB)])
    cache = RowCache()
    first = {r.path: r for r in cache.rows(store)}
    # Only "a" is re-read: "b" keeps its sample. Its row changes once (it is now stale), then
    # its row object is reused while nothing about it changes.
    store.publish([sample("a", 1, cores=1.5, mem=MiB)])
    second = {r.path: r for r in cache.rows(store)}
    assert second["a"] is not first["a"] and second["a"].cpu_cores == 1.5
    assert second["b"].stale == (store.entries["b"].stale_ticks > 0)
    store.publish([sample("a", 2, cores=1.5, mem=MiB)])
    assert {r.path: r for r in cache.rows(store)}["b"] is second["b"]
    # A new workload name is a change too.
    third = {r.path: r for r in cache.rows(store, {"b": "web"})}
    assert third["b"] is not first["b"] and third["b"].name == "web"
    assert cache.rows(store, {"b": "web"}) == rows_from_store(store, {"b": "web"})
