"""Grafana dashboards as code (grafana-foundation-sdk) and Prometheus alert rules for pystats.

    python -m dashboards.build          # regenerate dashboards/json/*.json
    python -m dashboards.build --check  # exit 1 if the checked-in JSON is out of date
    promtool test rules dashboards/alerts_test.yaml

Modules: overview, cgroup (drill-down), agent (health), common (shared helpers), build,
queries (every panel's PromQL, for the end-to-end test).
"""
