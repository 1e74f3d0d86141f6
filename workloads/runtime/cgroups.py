"""The workload's cgroup, through cgroupfs (the only code that touches files under the root).

Layout under the agent's cgroup root:

    <root>/workloads/<name>   one leaf per workload: its limits, and nothing but its processes
    <root>/shims              one leaf holding every shim (each a small Python process)

The shims live outside the workload cgroups so that a workload's memory.max, pids.max and
memory.events count the workload alone, and outside the agent's own cgroup so that stopping the
agent's unit (or a cgroup.kill of it) leaves the workloads and their supervisors running.
"""

from __future__ import annotations

import contextlib

from cgroupfs import reader, writer
from cgroupfs.errors import CgroupError, CgroupGone
from cgroupfs.parsers import parse_memory_events
from cgroupfs.paths import CgroupRoot
from cgroupfs.units import cpu_max_value
from workloads.runtime.spec import Limits

WORKLOADS = "workloads"
SHIMS = "shims"
CONTROLLERS = ("cpu", "memory", "pids")
CPU_PERIOD_USEC = 100_000


def workload_rel(name: str) -> str:
    return f"{WORKLOADS}/{name}"


def limit_files(limits: Limits) -> dict[str, str]:
    files: dict[str, str] = {}
    if limits.memory_bytes is not None:
        files["memory.max"] = str(limits.memory_bytes)
    if limits.cpus is not None:
        files["cpu.max"] = cpu_max_value(limits.cpus, CPU_PERIOD_USEC)
    if limits.pids is not None:
        files["pids.max"] = str(limits.pids)
    return files


def create_workload_cgroup(root: CgroupRoot, name: str, limits: Limits) -> list[str]:
    """Create <root>/workloads/<name> with its limits; on any failure remove what was created."""
    rel = workload_rel(name)
    created = writer.create(root, rel, list(CONTROLLERS))
    try:
        files = limit_files(limits)
        if files:
            writer.set_limits(root, rel, files)
        if limits.memory_bytes is not None:
            # Without this a memory limit only pushes the workload into swap; docker's default
            # (--memory-swap unset) also bounds it. Kernels without swap accounting lack the file.
            with contextlib.suppress(CgroupError):
                writer.write(root, rel, "memory.swap.max", "0")
    except BaseException:
        remove_workload_cgroup(root, name)
        raise
    return created


def ensure_shims_cgroup(root: CgroupRoot) -> None:
    writer.create(root, SHIMS, [])


def move_to(root: CgroupRoot, rel: str, pid: int) -> bool:
    return writer.move_pid(root, rel, pid)


def procs(root: CgroupRoot, name: str) -> tuple[int, ...]:
    try:
        return tuple(reader.read_procs(root, workload_rel(name)))
    except CgroupGone:
        return ()


def oom_kills(root: CgroupRoot, name: str) -> int:
    """memory.events oom_kill of the workload cgroup (0 when it is gone or unreadable)."""
    try:
        raw = reader.read_file(root, workload_rel(name), "memory.events")
    except (CgroupError, OSError):  # gone, or no memory controller (hybrid host)
        return 0
    return parse_memory_events(raw).oom_kill or 0


def kill_workload_cgroup(root: CgroupRoot, name: str) -> None:
    with contextlib.suppress(CgroupGone):
        writer.kill(root, workload_rel(name))


def remove_workload_cgroup(root: CgroupRoot, name: str) -> None:
    """Kill what is left and remove the cgroup; a cgroup already gone is fine."""
    kill_workload_cgroup(root, name)
    with contextlib.suppress(CgroupGone):
        writer.remove(root, workload_rel(name))
