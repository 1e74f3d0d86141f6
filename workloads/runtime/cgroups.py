"""The workload's cgroup, through cgroupfs (the only code that touches files under the root).

Layout under the agent's cgroup root:

    <root>/workloads/<name>   one leaf per workload: its limits, and nothing but its processes
    <root>/shims              one leaf holding every shim (each a small Python process)
    <root>/pods/<pod>         a pod (workloads.pods): its limits, shared by the workloads below
    <root>/pods/<pod>/<name>  a workload of the pod (its infra too), as a workload's leaf above

The shims live outside the workload cgroups so that a workload's memory.max, pids.max and
memory.events count the workload alone, and outside the agent's own cgroup so that stopping the
agent's unit (or a cgroup.kill of it) leaves the workloads and their supervisors running.

Each workload cgroup is made with bounds the workload cannot lift from inside (the kernel lets
a cgroup namespace's root write none of its own interface files but cgroup.procs, .threads and
.subtree_control):

- cgroup.max.descendants = 32, cgroup.max.depth = 8. A workload that made 60 child cgroups took
  the agent's series from 352 to 901 (about 9 per cgroup), so 32 bounds what one workload can
  add at about 300, while a systemd or a nested runtime inside (--privileged) still gets room:
  a minimal systemd container uses 20-odd units, and systemd's deepest layout
  (user.slice/user-0.slice/user@0.service/app.slice/X.service) is 5 levels.
- runc's default device allow-list as a cgroup device program (workloads.runtime.devices),
  attached before any process is in the cgroup.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence

from cgroupfs import reader, writer
from cgroupfs.errors import CgroupError, CgroupGone
from cgroupfs.parsers import parse_cgroup_events, parse_memory_events
from cgroupfs.paths import CgroupRoot
from cgroupfs.units import cpu_max_value
from workloads.runtime import bpf, devices
from workloads.runtime.devices import DeviceRule
from workloads.runtime.spec import Limits

WORKLOADS = "workloads"
SHIMS = "shims"
PODS = "pods"
CONTROLLERS = ("cpu", "memory", "pids")
CPU_PERIOD_USEC = 100_000
MAX_DESCENDANTS = 32
MAX_DEPTH = 8
NESTING_FILES = {"cgroup.max.descendants": str(MAX_DESCENDANTS), "cgroup.max.depth": str(MAX_DEPTH)}


def workload_rel(name: str, pod: str | None = None) -> str:
    """A workload's cgroup; a pod's workloads are below the pod's (the seed's nested limits)."""
    return f"{WORKLOADS}/{name}" if pod is None else f"{pod_rel(pod)}/{name}"


def pod_rel(pod: str) -> str:
    return f"{PODS}/{pod}"


def limit_files(limits: Limits) -> dict[str, str]:
    files: dict[str, str] = {}
    if limits.memory_bytes is not None:
        files["memory.max"] = str(limits.memory_bytes)
    if limits.cpus is not None:
        files["cpu.max"] = cpu_max_value(limits.cpus, CPU_PERIOD_USEC)
    if limits.pids is not None:
        files["pids.max"] = str(limits.pids)
    return files


def create_workload_cgroup(
    root: CgroupRoot,
    name: str,
    limits: Limits,
    device_rules: Sequence[DeviceRule] = devices.DEFAULT_RULES,
    pod: str | None = None,
) -> list[str]:
    """Create <root>/workloads/<name> (or its pod's child) with its limits, nesting bounds and
    device program (``device_rules``: see devices.workload_rules); on any failure remove what
    was created."""
    rel = workload_rel(name, pod)
    # An empty cgroup left by an earlier workload of this name (its record lost; the manager
    # refuses a populated one) is made afresh: its device program would stack onto the new one
    # (BPF_F_ALLOW_MULTI: all must allow), and its limits and children would linger.
    with contextlib.suppress(CgroupGone):
        writer.remove(root, rel)
    created = writer.create(root, rel, list(CONTROLLERS))
    try:
        writer.set_limits(root, rel, {**NESTING_FILES, **limit_files(limits)})
        attach_device_rules(root, rel, device_rules)
        if limits.memory_bytes is not None:
            # Without this a memory limit only pushes the workload into swap; docker's default
            # (--memory-swap unset) also bounds it. Kernels without swap accounting lack the file.
            with contextlib.suppress(CgroupError):
                writer.write(root, rel, "memory.swap.max", "0")
    except BaseException:
        remove_workload_cgroup(root, name, pod)
        raise
    return created


def create_pod_cgroup(root: CgroupRoot, pod: str, limits: Limits) -> None:
    """<root>/pods/<pod> with the pod's limits, its controllers enabled for its workloads."""
    rel = pod_rel(pod)
    writer.create(root, rel, list(CONTROLLERS))
    try:
        writer.enable_controllers(root, rel, CONTROLLERS)
        writer.set_limits(root, rel, limit_files(limits))
        if limits.memory_bytes is not None:  # as for a workload: the limit is not swap's
            with contextlib.suppress(CgroupError):
                writer.write(root, rel, "memory.swap.max", "0")
    except BaseException:
        remove_pod_cgroup(root, pod)
        raise


def remove_pod_cgroup(root: CgroupRoot, pod: str) -> None:
    """Kill what is left below the pod and remove its (by then childless) cgroup."""
    with contextlib.suppress(CgroupGone):
        writer.kill(root, pod_rel(pod))
        writer.remove(root, pod_rel(pod))  # depth first, retried while processes exit


def attach_device_rules(root: CgroupRoot, rel: str, rules: Sequence[DeviceRule]) -> None:
    """Attach the device program allowing ``rules`` to cgroup ``rel``. The kernel keeps it
    attached (and alive) until the cgroup is removed; no fd of ours stays open."""
    code = devices.program_bytes(tuple(rules))
    fd = writer.open_dir(root, rel)
    try:
        bpf.attach_device_filter(fd, code)
    finally:
        os.close(fd)


def ensure_shims_cgroup(root: CgroupRoot) -> None:
    writer.create(root, SHIMS, [])


def move_to(root: CgroupRoot, rel: str, pid: int) -> bool:
    return writer.move_pid(root, rel, pid)


def procs(root: CgroupRoot, name: str, pod: str | None = None) -> tuple[int, ...]:
    try:
        return tuple(reader.read_procs(root, workload_rel(name, pod)))
    except CgroupGone:
        return ()


def populated(root: CgroupRoot, name: str, pod: str | None = None) -> bool:
    """Whether a process is left in the workload cgroup or below it (cgroup.events)."""
    try:
        raw = reader.read_file(root, workload_rel(name, pod), "cgroup.events")
    except (CgroupGone, FileNotFoundError):  # no cgroup, or a directory that is none
        return False
    return bool(parse_cgroup_events(raw).populated)


def oom_kills(root: CgroupRoot, name: str, pod: str | None = None) -> int:
    """memory.events oom_kill of the workload cgroup (0 when it is gone or unreadable)."""
    try:
        raw = reader.read_file(root, workload_rel(name, pod), "memory.events")
    except (CgroupError, OSError):  # gone, or no memory controller (hybrid host)
        return 0
    return parse_memory_events(raw).oom_kill or 0


def kill_workload_cgroup(root: CgroupRoot, name: str, pod: str | None = None) -> None:
    with contextlib.suppress(CgroupGone):
        writer.kill(root, workload_rel(name, pod))


def remove_workload_cgroup(root: CgroupRoot, name: str, pod: str | None = None) -> None:
    """Kill what is left and remove the cgroup; a cgroup already gone is fine."""
    kill_workload_cgroup(root, name, pod)
    with contextlib.suppress(CgroupGone):
        writer.remove(root, workload_rel(name, pod))
