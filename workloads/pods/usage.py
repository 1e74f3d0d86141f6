"""What a pod's cgroup and its workloads' use right now (pystats pod stats), via cgroupfs."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

from cgroupfs import reader
from cgroupfs.errors import CgroupError
from cgroupfs.parsers import parse_cpu_stat, parse_int, parse_limit
from cgroupfs.paths import CgroupRoot

SAMPLE_S = 0.5  # between the two cpu.stat reads a CPU percentage is computed from


@dataclass(frozen=True)
class Usage:
    cgroup: str
    memory_bytes: int | None
    memory_max: int | None  # None: no limit
    pids: int | None
    cpu_usec: int | None
    cpu_percent: float | None = None  # of one core, over SAMPLE_S

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _read(root: CgroupRoot, rel: str, file: str) -> bytes | None:
    try:
        return reader.read_file(root, rel, file)
    except (CgroupError, OSError):  # gone, or a controller not enabled there
        return None


def read(root: CgroupRoot, rel: str) -> Usage:
    mem, lim, pids, cpu = (
        _read(root, rel, f) for f in ("memory.current", "memory.max", "pids.current", "cpu.stat")
    )
    limit = None if lim is None else parse_limit(lim)
    return Usage(
        cgroup=rel,
        memory_bytes=None if mem is None else parse_int(mem),
        memory_max=None if limit is None or isinstance(limit, float) else int(limit),
        pids=None if pids is None else parse_int(pids, "pids.current"),
        cpu_usec=None if cpu is None else parse_cpu_stat(cpu).usage_usec,
    )


def sample(root: CgroupRoot, rels: list[str], interval_s: float = SAMPLE_S) -> list[Usage]:
    """Each cgroup's usage, with CPU % from two reads ``interval_s`` apart (docker stats')."""
    first = [read(root, r) for r in rels]
    t0 = time.monotonic()
    time.sleep(interval_s)
    out = []
    for before in first:
        now = read(root, before.cgroup)
        pct = None
        if now.cpu_usec is not None and before.cpu_usec is not None:
            elapsed_us = (time.monotonic() - t0) * 1e6
            pct = round(100.0 * (now.cpu_usec - before.cpu_usec) / elapsed_us, 1)
        out.append(Usage(**{**asdict(now), "cpu_percent": pct}))
    return out
