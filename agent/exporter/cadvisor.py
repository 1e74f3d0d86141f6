"""Optional cAdvisor-compatible names for the same values (``container_*``, labels ``id``/``name``).

The mapping (documented in agent/exporter/README.md) follows cAdvisor's cgroup v2 metrics so
that existing cAdvisor dashboards work. It reuses the getters of the pystats table.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from agent.exporter import metrics as m
from agent.exporter.metrics import MetricSpec, Series, Value
from cgroupfs.types import UNLIMITED
from collectors.sample import CgroupRates, CgroupSample


def cadvisor_labels(id_prefix: str) -> Callable[[str, Mapping[str, str]], dict[str, str]]:
    """``id`` is the cgroup's path from the cgroup2 mount ("/" + path under the agent root,
    after ``id_prefix`` when the agent's root is not the mount); ``name`` the workload and
    ``image`` its image, if any (cAdvisor's labels for a container)."""
    prefix = id_prefix.rstrip("/")

    def base(path: str, extra: Mapping[str, str]) -> dict[str, str]:
        out = {"id": f"{prefix}/{path}" if path else (prefix or "/")}
        if extra.get("image"):
            out["image"] = extra["image"]
        out["name"] = extra.get("workload", "")
        return out

    return base


def _quota_set(s: CgroupSample) -> bool:
    return s.cpu_max is not None and s.cpu_max.quota_usec != UNLIMITED


def _cpu_total(s: CgroupSample, r: CgroupRates) -> Sequence[Series]:
    v = m._cpu_usage(s, r)
    return () if v is None else ((("total",), v),)


def _if_quota(g: m.Getter) -> m.Getter:
    # cAdvisor reports CFS periods and throttling only for containers with a CPU quota.
    def get(s: CgroupSample, r: CgroupRates) -> Value | None:
        return g(s, r) if _quota_set(s) else None

    return get


def _quota_usec(s: CgroupSample, r: CgroupRates) -> Value | None:
    return s.cpu_max.quota_usec if s.cpu_max is not None and _quota_set(s) else None


def _period_usec(s: CgroupSample, r: CgroupRates) -> Value | None:
    return s.cpu_max.period_usec if s.cpu_max is not None and _quota_set(s) else None


def _oom_kills(s: CgroupSample, r: CgroupRates) -> Value | None:
    return None if s.memory_events is None else s.memory_events.oom_kill


def _mapped_file(s: CgroupSample, r: CgroupRates) -> Value | None:
    return None if s.memory_stat is None else s.memory_stat.file_mapped


def _io_one(attr: str) -> m.SeriesGetter:
    def get(s: CgroupSample, r: CgroupRates) -> Sequence[Series]:
        if s.io is None:
            return ()
        return [((f"{d.major}:{d.minor}",), getattr(d, attr)) for d in s.io.devices]

    return get


def _psi(attr: str, kind: str) -> m.Getter:
    def get(s: CgroupSample, r: CgroupRates) -> Value | None:
        p = getattr(s, attr)
        line = None if p is None else getattr(p, kind)
        return None if line is None else line.total_usec / 1e6

    return get


_C = "container_"
_psi_specs = tuple(
    MetricSpec(f"{_C}pressure_{res}_{word}_seconds", "counter",
               f"Total time {'some' if kind == 'some' else 'all'} tasks {word} on {res} "
               f"({res}.pressure {kind} total).", get=_psi(f"{res}_pressure", kind))
    for res in ("cpu", "memory", "io")
    for kind, word in (("some", "waiting"), ("full", "stalled"))
)  # fmt: skip

CADVISOR_METRICS: tuple[MetricSpec, ...] = (
    MetricSpec(_C + "cpu_usage_seconds", "counter", "Cumulative cpu time consumed in seconds.",
               labels=("cpu",), series=_cpu_total),
    MetricSpec(_C + "cpu_user_seconds", "counter", "Cumulative user cpu time consumed in seconds.",
               get=m._cpu_user),
    MetricSpec(_C + "cpu_system_seconds", "counter",
               "Cumulative system cpu time consumed in seconds.", get=m._cpu_system),
    MetricSpec(_C + "cpu_cfs_periods", "counter", "Number of elapsed enforcement period intervals.",
               get=_if_quota(m._cpu_periods)),
    MetricSpec(_C + "cpu_cfs_throttled_periods", "counter", "Number of throttled period intervals.",
               get=_if_quota(m._cpu_throttled_periods)),
    MetricSpec(_C + "cpu_cfs_throttled_seconds", "counter",
               "Total time duration the container has been throttled.",
               get=_if_quota(m._cpu_throttled_seconds)),
    MetricSpec(_C + "spec_cpu_quota", "gauge", "CPU quota of the container (cpu.max, µs).",
               get=_quota_usec),
    MetricSpec(_C + "spec_cpu_period", "gauge", "CPU period of the container (cpu.max, µs).",
               get=_period_usec),
    MetricSpec(_C + "memory_usage_bytes", "gauge", "Current memory usage in bytes.",
               get=lambda s, r: s.memory_current),
    MetricSpec(_C + "memory_working_set_bytes", "gauge", "Current working set in bytes.",
               get=m._working_set),
    MetricSpec(_C + "memory_rss", "gauge", "Size of RSS in bytes (memory.stat anon).", get=m._anon),
    MetricSpec(_C + "memory_cache", "gauge", "Number of bytes of page cache memory.", get=m._file),
    MetricSpec(_C + "memory_mapped_file", "gauge", "Size of memory mapped files in bytes.",
               get=_mapped_file),
    MetricSpec(_C + "memory_swap", "gauge", "Container swap usage in bytes.",
               get=lambda s, r: s.swap_current),
    MetricSpec(_C + "memory_max_usage_bytes", "gauge", "Maximum memory usage recorded in bytes.",
               get=lambda s, r: s.memory_peak),
    MetricSpec(_C + "spec_memory_limit_bytes", "gauge", "Memory limit for the container.",
               get=lambda s, r: s.memory_max),
    MetricSpec(_C + "spec_memory_reservation_limit_bytes", "gauge",
               "Memory reservation limit for the container (memory.low).",
               get=lambda s, r: s.memory_low),
    MetricSpec(_C + "spec_memory_swap_limit_bytes", "gauge", "Memory swap limit for the container.",
               get=lambda s, r: s.swap_max),
    MetricSpec(_C + "oom_events", "counter", "Count of out of memory events observed for the "
               "container (memory.events oom_kill).", get=_oom_kills),
    MetricSpec(_C + "threads", "gauge", "Number of threads running inside the container.",
               get=lambda s, r: s.pids_current),
    MetricSpec(_C + "threads_max", "gauge",
               "Maximum number of threads allowed inside the container.",
               get=lambda s, r: s.pids_max),
    MetricSpec(_C + "fs_reads_bytes", "counter", "Cumulative count of bytes read.",
               labels=("device",), series=_io_one("rbytes")),
    MetricSpec(_C + "fs_writes_bytes", "counter", "Cumulative count of bytes written.",
               labels=("device",), series=_io_one("wbytes")),
    MetricSpec(_C + "fs_reads", "counter", "Cumulative count of reads completed.",
               labels=("device",), series=_io_one("rios")),
    MetricSpec(_C + "fs_writes", "counter", "Cumulative count of writes completed.",
               labels=("device",), series=_io_one("wios")),
    *_psi_specs,
    MetricSpec(_C + "last_seen", "gauge", "Last time a container was seen by the exporter.",
               get=lambda s, r: s.wall),
)  # fmt: skip
