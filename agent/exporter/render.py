"""Fast exposition rendering: Prometheus text 0.0.4 and OpenMetrics 1.0 from the metric tables.

prometheus_client builds a Sample object per series and formats labels from dicts on every
scrape (~7 µs per line, anchors.md). Here each cgroup's label string is built once and cached,
values are formatted with ``repr`` and lines are joined per family, so the same table renders at
roughly a microsecond per line. Label order inside braces does not matter to either format.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from agent.exporter.agentinfo import SelfSeries
from agent.exporter.metrics import MetricSpec, Value
from collectors.sample import CgroupRates, CgroupSample

TEXT_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"

_SPECIAL = {"inf": "+Inf", "-inf": "-Inf", "nan": "NaN"}

# (label string of the cgroup, sample, rates): one row per cgroup, taken on the event loop.
Row = tuple[str, CgroupSample, CgroupRates]


def escape_label_value(v: str) -> str:
    return v.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def escape_help(v: str) -> str:
    return v.replace("\\", r"\\").replace("\n", r"\n")


def fmt_value(v: Value) -> str:
    s = repr(v)  # ints stay exact; floats round-trip; inf/nan need Prometheus' spelling
    return _SPECIAL.get(s, s)


def label_text(labels: Mapping[str, str]) -> str:
    return ",".join(f'{k}="{escape_label_value(v)}"' for k, v in labels.items() if v)


class Labeler:
    """cgroup path -> its base labels (dict and rendered text), cached while they don't change."""

    def __init__(
        self,
        base: Callable[[str, Mapping[str, str]], dict[str, str]],
        provider: Callable[[str], Mapping[str, str]] | None,
    ) -> None:
        self._base = base
        self._provider = provider
        self._cache: dict[str, tuple[tuple[tuple[str, str], ...], dict[str, str], str]] = {}

    def get(self, path: str) -> tuple[dict[str, str], str]:
        extra: tuple[tuple[str, str], ...] = ()
        if self._provider is not None:
            got = self._provider(path)
            if got:
                extra = tuple(got.items())
        hit = self._cache.get(path)
        if hit is not None and hit[0] == extra:
            return hit[1], hit[2]
        labels = {k: v for k, v in self._base(path, dict(extra)).items() if v}  # "" = absent
        text = label_text(labels)
        self._cache[path] = (extra, labels, text)
        return labels, text

    def forget_except(self, paths: Iterable[str]) -> None:
        """Drop cached labels of cgroups no longer in the store (bounded memory)."""
        keep = set(paths)
        for p in [p for p in self._cache if p not in keep]:
            del self._cache[p]


@dataclass(frozen=True, slots=True)
class Family:
    """A rendered family: its header data and the sample lines (already newline-terminated)."""

    name: str  # OpenMetrics family name (counters without _total)
    type: str  # "counter", "gauge" or "info"
    help: str
    unit: str
    body: str

    def text(self) -> str:
        if self.type == "counter":
            name, typ = self.name + "_total", "counter"
        elif self.type == "info":
            name, typ = self.name + "_info", "gauge"
        else:
            name, typ = self.name, self.type
        return f"# HELP {name} {escape_help(self.help)}\n# TYPE {name} {typ}\n{self.body}"

    def openmetrics(self) -> str:
        n = self.name
        unit = f"# UNIT {n} {self.unit}\n" if self.unit else ""
        h = escape_help(self.help).replace('"', r"\"")
        return f"# HELP {n} {h}\n# TYPE {n} {self.type}\n{unit}{self.body}"


def render_cgroup_families(specs: Sequence[MetricSpec], rows: Sequence[Row]) -> list[Family]:
    """The per-cgroup families of ``specs`` for ``rows``; empty families are left out."""
    out: list[Family] = []
    for spec in specs:
        lines: list[str] = []
        app = lines.append
        name = spec.sample_name
        get = spec.get
        if get is not None:
            for lbl, s, r in rows:
                v = get(s, r)
                if v is not None:
                    sv = repr(v)
                    app(f"{name}{{{lbl}}} {_SPECIAL.get(sv, sv)}\n")
        else:
            series = spec.series
            assert series is not None
            suffixes: dict[tuple[str, ...], str] = {}
            names = spec.labels
            for lbl, s, r in rows:
                for vals, v in series(s, r):
                    sfx = suffixes.get(vals)
                    if sfx is None:
                        sfx = suffixes[vals] = "".join(
                            f',{n}="{escape_label_value(x)}"'
                            for n, x in zip(names, vals, strict=True)
                        )
                    sv = repr(v)
                    app(f"{name}{{{lbl}{sfx}}} {_SPECIAL.get(sv, sv)}\n")
        if lines:
            out.append(Family(spec.name, spec.type, spec.help, spec.unit, "".join(lines)))
    return out


def render_self_families(families: Iterable[SelfSeries]) -> list[Family]:
    out: list[Family] = []
    for m, samples in families:
        if not samples:
            continue
        lines = []
        for labels, v in samples:
            lt = label_text(dict(sorted(labels.items())))
            lines.append(f"{m.sample_name}{{{lt}}} {fmt_value(v)}\n" if lt else
                         f"{m.sample_name} {fmt_value(v)}\n")  # fmt: skip
        out.append(Family(m.name, m.type, m.help, m.unit, "".join(lines)))
    return out


def join(families: Iterable[Family], openmetrics: bool) -> str:
    if openmetrics:
        return "".join(f.openmetrics() for f in families)
    return "".join(f.text() for f in families)
