"""Freezing a workload's cgroup (pystats pause/unpause) through cgroupfs."""

from __future__ import annotations

from cgroupfs import writer
from cgroupfs.errors import CgroupError
from cgroupfs.paths import CgroupRoot
from workloads.runtime.cgroups import workload_rel

FREEZE_TIMEOUT_S = 5.0  # until cgroup.events says frozen; longer is reported, not waited on


class FreezeError(Exception):
    pass


def set_frozen(root: CgroupRoot, name: str, frozen: bool, pod: str | None = None) -> None:
    """Freeze (or thaw) the workload's cgroup and its descendants; FreezeError says why not."""
    try:
        rel = workload_rel(name, pod)
        writer.freeze(root, rel, frozen, timeout_s=FREEZE_TIMEOUT_S if frozen else 0)
    except CgroupError as e:
        raise FreezeError(f"cannot {'freeze' if frozen else 'thaw'} {name!r}: {e}") from None
