"""The exporter: the store's latest tick as a /metrics payload, rendered at most once per tick.

The per-cgroup families are rendered once per store tick and kept as text; the agent's
self-metrics (a dozen lines) are rendered on every scrape, so they are always current.
``render_async`` takes the snapshot on the event loop (the store and the label provider belong
to it) and formats in a worker thread, so a large render does not stall the loop. ``run`` may
pre-render after each tick so that scrapes only copy bytes.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from agent.exporter.agentinfo import AgentInfo, self_metrics
from agent.exporter.cadvisor import CADVISOR_METRICS, cadvisor_labels
from agent.exporter.metrics import CGROUP_METRICS, ROOT_LABEL, MetricSpec
from agent.exporter.render import (
    Family,
    Labeler,
    Row,
    join,
    render_cgroup_families,
    render_self_families,
)
from collectors.store import Store

Naming = Literal["pystats", "cadvisor", "both"]


def pystats_labels(path: str, extra: Mapping[str, str]) -> dict[str, str]:
    labels = {"cgroup": path or ROOT_LABEL}
    for k in ("workload", "image", "policy"):  # nothing else: labels stay bounded
        v = extra.get(k)
        if v:
            labels[k] = v
    return labels


@dataclass(frozen=True, slots=True)
class _Table:
    specs: tuple[MetricSpec, ...]
    labeler: Labeler


@dataclass(slots=True)
class _Rendered:
    tick: int
    families: list[Family]
    seconds: float
    text: bytes | None = None
    openmetrics: bytes | None = None
    served: bool = False  # a scrape used it


class Exporter:
    def __init__(
        self,
        store: Store,
        info: AgentInfo | None = None,
        *,
        naming: Naming = "pystats",
        cadvisor_id_prefix: str = "",
    ) -> None:
        self.store = store
        self.info = info or AgentInfo()
        self.naming = naming
        provider = self.info.labels
        tables = []
        if naming in ("pystats", "both"):
            tables.append(_Table(CGROUP_METRICS, Labeler(pystats_labels, provider)))
        if naming in ("cadvisor", "both"):
            base = cadvisor_labels(cadvisor_id_prefix)
            tables.append(_Table(CADVISOR_METRICS, Labeler(base, provider)))
        self._tables: tuple[_Table, ...] = tuple(tables)
        self._cache: _Rendered | None = None
        self._inflight: asyncio.Future[_Rendered] | None = None
        # Prometheus asks for OpenMetrics: pre-render that format in ``run`` by default.
        self.prerender_openmetrics = True

    # --- the two halves of a render ------------------------------------------------------------
    def snapshot(self) -> list[tuple[Sequence[MetricSpec], list[Row]]]:
        """Per table: its specs and one row per cgroup (label text, sample, rates). Loop only."""
        entries = list(self.store.entries.items())
        out: list[tuple[Sequence[MetricSpec], list[Row]]] = []
        for t in self._tables:
            get = t.labeler.get
            out.append((t.specs, [(get(p)[1], e.sample, e.rates) for p, e in entries]))
            if len(entries) != len(t.labeler._cache):
                t.labeler.forget_except(p for p, _ in entries)
        return out

    @staticmethod
    def format(snap: list[tuple[Sequence[MetricSpec], list[Row]]]) -> list[Family]:
        """Pure formatting of a snapshot: safe to run in a worker thread."""
        fams: list[Family] = []
        # Hundreds of thousands of short-lived objects would trigger collections that walk the
        # whole (large, long-lived) store: pause the cyclic GC; nothing here makes cycles.
        paused = gc.isenabled()
        gc.disable()
        try:
            for specs, rows in snap:
                fams.extend(render_cgroup_families(specs, rows))
        finally:
            if paused:
                gc.enable()
        return fams

    # --- cached payloads -------------------------------------------------------------------------
    def _fresh(self) -> _Rendered | None:
        c = self._cache
        return c if c is not None and c.tick == self.store.stats.ticks else None

    @staticmethod
    def _encode(r: _Rendered, openmetrics: bool) -> bytes:
        if openmetrics:
            if r.openmetrics is None:
                r.openmetrics = join(r.families, True).encode()
            return r.openmetrics
        if r.text is None:
            r.text = join(r.families, False).encode()
        return r.text

    def _own(self, r: _Rendered, openmetrics: bool) -> bytes:
        """The agent's self-metrics, rendered on every scrape (they change between ticks)."""
        fams = render_self_families(self_metrics(self.store, self.info, r.seconds))
        return (join(fams, openmetrics) + ("# EOF\n" if openmetrics else "")).encode()

    def render_parts(self, openmetrics: bool = False) -> tuple[bytes, bytes]:
        """(cached per-cgroup bytes of this tick, fresh self-metrics bytes); synchronous."""
        r = self._fresh()
        if r is None:
            tick = self.store.stats.ticks
            t0 = time.perf_counter()
            r = _Rendered(tick, self.format(self.snapshot()), 0.0)
            self._encode(r, openmetrics)
            r.seconds = time.perf_counter() - t0
            self._cache = r
        r.served = True
        return self._encode(r, openmetrics), self._own(r, openmetrics)

    def render(self, openmetrics: bool = False) -> bytes:
        body, own = self.render_parts(openmetrics)
        return body + own

    async def render_parts_async(self, openmetrics: bool = False) -> tuple[bytes, bytes]:
        """Like ``render_parts``; formatting and encoding run in a worker thread."""
        r = self._fresh()
        if r is None:
            r = await self._render_shared(openmetrics)
        want = r.openmetrics if openmetrics else r.text
        if want is None:  # the other format was rendered first in this tick
            want = await asyncio.to_thread(self._encode, r, openmetrics)
        r.served = True
        return want, self._own(r, openmetrics)

    async def render_async(self, openmetrics: bool = False) -> bytes:
        body, own = await self.render_parts_async(openmetrics)
        return body + own

    async def _render_shared(self, openmetrics: bool) -> _Rendered:
        # Concurrent scrapes of the same tick share one render.
        if self._inflight is not None and not self._inflight.done():
            return await asyncio.shield(self._inflight)
        fut: asyncio.Future[_Rendered] = asyncio.get_running_loop().create_future()
        self._inflight = fut
        try:
            tick = self.store.stats.ticks
            t0 = time.perf_counter()
            snap = self.snapshot()

            def work() -> _Rendered:
                r = _Rendered(tick, self.format(snap), 0.0)
                self._encode(r, openmetrics)
                return r

            r = await asyncio.to_thread(work)
            r.seconds = time.perf_counter() - t0
            if self._cache is None or self._cache.tick <= tick:
                self._cache = r
            fut.set_result(r)
            return r
        except BaseException as exc:
            fut.set_exception(exc)
            fut.exception()  # mark retrieved: the caller re-raises it
            raise
        finally:
            self._inflight = None

    async def run(self, on_error: Callable[[BaseException], None] | None = None) -> None:
        """Pre-render after each tick while scrapes keep up (optional).

        A tick is pre-rendered only when the previous payload was used by a scrape: when
        Prometheus scrapes about as often as the collector ticks, scrapes then only copy cached
        bytes; when it scrapes less often (15 s vs 1 s ticks), the first scrape after a tick
        renders on demand and at most one pre-render per scrape is wasted, not one per tick.
        """
        while True:
            await self.store.wait_tick()
            c = self._cache
            if c is not None and not c.served:
                continue
            try:
                await self._render_shared(self.prerender_openmetrics)
            except Exception as exc:  # keep pre-rendering; scrapes will surface the error
                if on_error is not None:
                    on_error(exc)

    @property
    def last_render_seconds(self) -> float | None:
        return None if self._cache is None else self._cache.seconds
