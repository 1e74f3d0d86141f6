"""The one declarative table of per-cgroup metrics (pystats naming).

Each row names a metric family, its type, help, unit and how to get its value(s) from a cgroup's
latest sample and rates. Both the fast renderer (render.py) and the prometheus_client collector
(collector.py) are driven by this table, and the dashboards and alert rules may only use names
produced here (tests/unit/test_dashboards_metrics.py checks that).

A getter returns ``None`` when the value is unavailable: the series is then left out, never 0.
Limits keep the kernel's "max" as +Inf (``cgroupfs.types.UNLIMITED``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, TypeAlias

from cgroupfs.types import MemoryEvents, Pressure
from collectors.sample import CgroupRates, CgroupSample

Value: TypeAlias = int | float
# One series: values of the spec's extra labels (in ``labels`` order), and the value.
Series: TypeAlias = tuple[tuple[str, ...], Value]
Getter: TypeAlias = Callable[[CgroupSample, CgroupRates], Value | None]
SeriesGetter: TypeAlias = Callable[[CgroupSample, CgroupRates], Sequence[Series]]
MetricType: TypeAlias = Literal["counter", "gauge"]

# Labels every per-cgroup series may carry, in this order. Only these come from the label
# provider: workload and policy names are bounded by configuration, never by processes.
BASE_LABELS: tuple[str, ...] = ("cgroup", "workload", "image", "policy")
ROOT_LABEL = "/"  # the `cgroup` label of the agent's root (its relative path is "")

MEMORY_EVENT_TYPES: tuple[str, ...] = ("low", "high", "max", "oom", "oom_kill", "oom_group_kill")


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """One metric family. Exactly one of ``get`` (one series) or ``series`` (several) is set."""

    name: str  # family name; counters without "_total" (the sample name adds it)
    type: MetricType
    help: str
    unit: str = ""  # OpenMetrics unit; when set, ``name`` ends with "_<unit>"
    get: Getter | None = None
    labels: tuple[str, ...] = ()  # extra label names, filled by ``series``
    series: SeriesGetter | None = None

    @property
    def sample_name(self) -> str:
        return self.name + "_total" if self.type == "counter" else self.name

    def __post_init__(self) -> None:
        if (self.get is None) == (self.series is None):
            raise ValueError(f"{self.name}: set exactly one of get/series")
        if bool(self.labels) != (self.series is not None):
            raise ValueError(f"{self.name}: extra labels go with series")
        if self.unit and not self.name.endswith("_" + self.unit):
            raise ValueError(f"{self.name}: must end with its unit {self.unit}")


# --- getters -----------------------------------------------------------------------------------
# Plain functions rather than lambdas where a value needs a None check on an inner object.


def _usec(v: int | None) -> float | None:
    return None if v is None else v / 1e6


def _cpu_usage(s: CgroupSample, r: CgroupRates) -> Value | None:
    return None if s.cpu is None else _usec(s.cpu.usage_usec)


def _cpu_user(s: CgroupSample, r: CgroupRates) -> Value | None:
    return None if s.cpu is None else _usec(s.cpu.user_usec)


def _cpu_system(s: CgroupSample, r: CgroupRates) -> Value | None:
    return None if s.cpu is None else _usec(s.cpu.system_usec)


def _cpu_periods(s: CgroupSample, r: CgroupRates) -> Value | None:
    return None if s.cpu is None else s.cpu.nr_periods


def _cpu_throttled_periods(s: CgroupSample, r: CgroupRates) -> Value | None:
    return None if s.cpu is None else s.cpu.nr_throttled


def _cpu_throttled_seconds(s: CgroupSample, r: CgroupRates) -> Value | None:
    return None if s.cpu is None else _usec(s.cpu.throttled_usec)


def _cpu_quota_cores(s: CgroupSample, r: CgroupRates) -> Value | None:
    m = s.cpu_max
    if m is None or not m.period_usec:
        return None
    return m.quota_usec / m.period_usec  # "max" stays +Inf


def _working_set(s: CgroupSample, r: CgroupRates) -> Value | None:
    if r.working_set is not None:
        return r.working_set
    # Same rule as cAdvisor when the collector gave no rate yet: current - inactive_file, >= 0.
    st = s.memory_stat
    if s.memory_current is None or st is None or st.inactive_file is None:
        return None
    return max(0, s.memory_current - st.inactive_file)


def _anon(s: CgroupSample, r: CgroupRates) -> Value | None:
    return None if s.memory_stat is None else s.memory_stat.anon


def _file(s: CgroupSample, r: CgroupRates) -> Value | None:
    return None if s.memory_stat is None else s.memory_stat.file


def memory_events(ev: MemoryEvents | None) -> list[Series]:
    if ev is None:
        return []
    out: list[Series] = []
    for t in MEMORY_EVENT_TYPES:
        v = getattr(ev, t)
        if v is not None:
            out.append(((t,), v))
    return out


def _memory_events(s: CgroupSample, r: CgroupRates) -> Sequence[Series]:
    return memory_events(s.memory_events)


def _io(fields: tuple[tuple[str, str], ...]) -> SeriesGetter:
    def get(s: CgroupSample, r: CgroupRates) -> Sequence[Series]:
        if s.io is None:
            return ()
        out: list[Series] = []
        for d in s.io.devices:
            dev = f"{d.major}:{d.minor}"
            for direction, attr in fields:
                out.append(((dev, direction), getattr(d, attr)))
        return out

    return get


def pressure(p: Pressure | None) -> list[Series]:
    if p is None:
        return []
    out: list[Series] = []
    if p.some is not None:
        out.append((("some",), p.some.total_usec / 1e6))
    if p.full is not None:
        out.append((("full",), p.full.total_usec / 1e6))
    return out


def _psi_cpu(s: CgroupSample, r: CgroupRates) -> Sequence[Series]:
    return pressure(s.cpu_pressure)


def _psi_memory(s: CgroupSample, r: CgroupRates) -> Sequence[Series]:
    return pressure(s.memory_pressure)


def _psi_io(s: CgroupSample, r: CgroupRates) -> Sequence[Series]:
    return pressure(s.io_pressure)


_P = "pystats_cgroup_"

CGROUP_METRICS: tuple[MetricSpec, ...] = (
    # --- cpu ---
    MetricSpec(_P + "cpu_usage_seconds", "counter", "CPU time consumed (cpu.stat usage_usec).",
               "seconds", get=_cpu_usage),
    MetricSpec(_P + "cpu_user_seconds", "counter", "User CPU time (cpu.stat user_usec).",
               "seconds", get=_cpu_user),
    MetricSpec(_P + "cpu_system_seconds", "counter", "System CPU time (cpu.stat system_usec).",
               "seconds", get=_cpu_system),
    MetricSpec(_P + "cpu_periods", "counter",
               "Elapsed CPU bandwidth periods (cpu.stat nr_periods).",
               get=_cpu_periods),
    MetricSpec(_P + "cpu_throttled_periods", "counter",
               "Periods in which the cgroup was throttled (cpu.stat nr_throttled).",
               get=_cpu_throttled_periods),
    MetricSpec(_P + "cpu_throttled_seconds", "counter",
               "Time the cgroup was throttled (cpu.stat throttled_usec).", "seconds",
               get=_cpu_throttled_seconds),
    MetricSpec(_P + "cpu_quota_cores", "gauge",
               "CPU limit in cores: cpu.max quota / period; +Inf when unlimited.", "cores",
               get=_cpu_quota_cores),
    # --- memory ---
    MetricSpec(_P + "memory_current_bytes", "gauge", "Memory in use (memory.current).", "bytes",
               get=lambda s, r: s.memory_current),
    MetricSpec(_P + "memory_working_set_bytes", "gauge",
               "memory.current minus inactive_file, floored at 0 (cAdvisor's working set).",
               "bytes", get=_working_set),
    MetricSpec(_P + "memory_anon_bytes", "gauge", "Anonymous memory (memory.stat anon).", "bytes",
               get=_anon),
    MetricSpec(_P + "memory_file_bytes", "gauge", "Page cache (memory.stat file).", "bytes",
               get=_file),
    MetricSpec(_P + "memory_peak_bytes", "gauge", "Highest memory use recorded (memory.peak).",
               "bytes", get=lambda s, r: s.memory_peak),
    MetricSpec(_P + "memory_limit_bytes", "gauge", "Hard memory limit (memory.max); +Inf if none.",
               "bytes", get=lambda s, r: s.memory_max),
    MetricSpec(_P + "memory_high_bytes", "gauge",
               "Memory throttling threshold (memory.high); +Inf if none.", "bytes",
               get=lambda s, r: s.memory_high),
    MetricSpec(_P + "memory_swap_bytes", "gauge", "Swap in use (memory.swap.current).", "bytes",
               get=lambda s, r: s.swap_current),
    MetricSpec(_P + "memory_swap_limit_bytes", "gauge",
               "Swap limit (memory.swap.max); +Inf if none.",
               "bytes", get=lambda s, r: s.swap_max),
    MetricSpec(_P + "memory_events", "counter",
               "memory.events counters (hierarchical) by type: low, high, max, oom, oom_kill, "
               "oom_group_kill.", labels=("type",), series=_memory_events),
    # --- pids ---
    MetricSpec(_P + "pids_current", "gauge", "Number of tasks (pids.current).",
               get=lambda s, r: s.pids_current),
    MetricSpec(_P + "pids_limit", "gauge", "Task limit (pids.max); +Inf if none.",
               get=lambda s, r: s.pids_max),
    # --- io ---
    MetricSpec(_P + "io_bytes", "counter",
               "Bytes transferred by device (major:minor) and direction (io.stat).",
               labels=("device", "direction"),
               series=_io((("read", "rbytes"), ("write", "wbytes"), ("discard", "dbytes")))),
    MetricSpec(_P + "io_operations", "counter",
               "I/O operations by device (major:minor) and direction (io.stat).",
               labels=("device", "direction"),
               series=_io((("read", "rios"), ("write", "wios"), ("discard", "dios")))),
    # --- pressure (PSI totals) ---
    MetricSpec(_P + "cpu_pressure_seconds", "counter",
               "Time some / all tasks stalled on CPU (cpu.pressure total).", "seconds",
               labels=("kind",), series=_psi_cpu),
    MetricSpec(_P + "memory_pressure_seconds", "counter",
               "Time some / all tasks stalled on memory (memory.pressure total).", "seconds",
               labels=("kind",), series=_psi_memory),
    MetricSpec(_P + "io_pressure_seconds", "counter",
               "Time some / all tasks stalled on I/O (io.pressure total).", "seconds",
               labels=("kind",), series=_psi_io),
)  # fmt: skip
