"""A prometheus_client custom collector over the store, driven by the same metric tables.

For callers who want pystats metrics in a prometheus_client registry (their own HTTP server,
``generate_latest``, pushgateway). The agent's /metrics uses the faster renderer in render.py;
tests check that both produce the same series.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from agent.exporter.agentinfo import self_metrics
from agent.exporter.exporter import Exporter


class StoreCollector(Collector):
    def __init__(self, exporter: Exporter) -> None:
        self._exporter = exporter

    def collect(self) -> Iterator[Metric]:
        ex = self._exporter
        entries = list(ex.store.entries.items())
        for table in ex._tables:
            rows = [(table.labeler.get(p)[0], e.sample, e.rates) for p, e in entries]
            for spec in table.specs:
                fam = Metric(spec.name, spec.help, spec.type, spec.unit)
                for labels, s, r in rows:
                    if spec.get is not None:
                        v = spec.get(s, r)
                        if v is not None:
                            fam.add_sample(spec.sample_name, labels, float(v))
                    else:
                        assert spec.series is not None
                        for vals, v2 in spec.series(s, r):
                            extra = dict(zip(spec.labels, vals, strict=True))
                            fam.add_sample(spec.sample_name, {**labels, **extra}, float(v2))
                if fam.samples:
                    yield fam
        for m, samples in self_metrics(ex.store, ex.info, ex.last_render_seconds):
            if not samples:
                continue
            fam = Metric(m.name, m.help, m.type, m.unit)
            for labels, v in samples:
                fam.add_sample(m.sample_name, labels, float(v))
            yield fam
