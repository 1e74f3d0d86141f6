"""Which cgroup the agent may write, and preparing it.

Under systemd with ``Delegate=yes`` and ``DelegateSubgroup=agent`` (systemd >= 254) the unit's
cgroup is the agent's: systemd starts it in the leaf ``agent/`` and it creates ``workloads/`` and
``policies/`` beside it with the controllers enabled, as systemd's delegation rules ask. Where
systemd starts it in the unit's cgroup itself (older systemd), using that cgroup would keep
systemd from ever starting the agent again while a workload runs, so it uses
``<cgroup2 mount>/pystats`` as it does outside systemd. A configured path overrides both.
Everything it writes afterwards goes through a ``CgroupRoot`` of that path, which refuses
anything outside it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass

from cgroupfs import writer
from cgroupfs.mount import CgroupMount
from cgroupfs.paths import CgroupRoot

log = logging.getLogger(__name__)

AGENT_LEAF = "agent"
WORKLOADS = "workloads"
POLICIES = "policies"
CONTROLLERS = ("cpu", "memory", "pids", "io")


class RootError(Exception):
    """The agent cannot use the cgroup root it was given; the message says why."""


@dataclass(frozen=True, slots=True)
class AgentLayout:
    mount: CgroupMount
    root: CgroupRoot  # the agent's writable subtree
    delegated: bool  # handed to us by systemd (Delegate=yes)

    @property
    def workloads(self) -> str:
        return os.path.join(self.root.path, WORKLOADS)

    @property
    def policies(self) -> str:
        return os.path.join(self.root.path, POLICIES)


def own_cgroup(proc_self_cgroup: str = "/proc/self/cgroup") -> str | None:
    """This process's cgroup v2 path ("/system.slice/x.service"), from the '0::' line."""
    try:
        with open(proc_self_cgroup) as f:
            for line in f:
                if line.startswith("0::"):
                    return line[3:].strip()
    except OSError:
        return None
    return None


def _is_delegated(path: str) -> bool:
    # systemd >= 251 marks delegated cgroups with this xattr; older ones leave no trace.
    for attr in ("trusted.delegate", "user.delegate"):
        try:
            if os.getxattr(path, attr) == b"1":
                return True
        except OSError:
            continue
    return False


def choose_root(
    mount: CgroupMount, configured: str | None, env: Mapping[str, str] | None = None
) -> tuple[str, bool]:
    """The absolute path of the agent's root and whether systemd delegated it."""
    if mount.path is None:
        raise RootError("no cgroup2 filesystem is mounted: pystats needs cgroup v2")
    base = os.path.realpath(mount.path)
    if configured and configured != "auto":
        path = os.path.realpath(configured)
        if path != base and not path.startswith(base + os.sep):
            raise RootError(f"root {configured!r} is not inside the cgroup2 mount {mount.path}")
        if path == base:
            raise RootError(
                f"root {configured!r} is the whole cgroup2 mount: give the agent a subtree of its "
                f"own (e.g. {base}/pystats) so it never writes cgroups it did not create"
            )
        return path, False
    e = env if env is not None else os.environ
    mine = own_cgroup()
    fallback = os.path.join(base, "pystats")
    if e.get("INVOCATION_ID") and mine and mine != "/":
        path = os.path.join(base, mine.lstrip("/"))
        in_leaf = path.endswith("/" + AGENT_LEAF)
        unit_cg = os.path.dirname(path) if in_leaf else path
        if not (_is_delegated(unit_cg) or e.get("PYSTATS_ASSUME_DELEGATED") == "1"):
            log.warning(
                "running under systemd in %s, which is not delegated (Delegate=yes is missing); "
                "using %s instead",
                mine,
                fallback,
            )
        elif in_leaf:
            return unit_cg, True  # systemd started us in <unit>/agent (DelegateSubgroup=agent)
        else:
            # systemd started us in the unit's cgroup itself (systemd < 254 has no
            # DelegateSubgroup=). Were we to enable controllers there for workloads/, systemd
            # could not start the agent again while a workload runs: it must put the new agent
            # into that cgroup, and the kernel refuses a process in a cgroup with controllers
            # enabled for its children (status=219/CGROUP). So the subtree lives elsewhere.
            log.info(
                "systemd started the agent in %s itself (no DelegateSubgroup=, systemd < 254): "
                "workloads and placed processes go to %s, so that a restart finds its cgroup "
                "free",
                mine,
                fallback,
            )
    return fallback, False


def prepare(mount: CgroupMount, configured: str | None) -> AgentLayout:
    """Create (or adopt) the agent's root and its workloads/ and policies/ children."""
    path, delegated = choose_root(mount, configured)
    usable = [c for c in CONTROLLERS if c in mount.controllers]
    if delegated:
        # choose_root() calls it delegated only when systemd started us in <unit>/agent
        # (DelegateSubgroup=agent): the unit's cgroup holds no process, so controllers can be
        # enabled for the children.
        root = CgroupRoot(path)
        for child in (WORKLOADS, POLICIES):
            writer.create(root, child, usable)
    else:
        # Controllers must be enabled from the mount down to reach our subtree.
        base = CgroupRoot(os.path.realpath(mount.path or "/"))
        rel = base.rel_of(path)
        for child in (WORKLOADS, POLICIES):
            writer.create(base, f"{rel}/{child}", usable)
        root = CgroupRoot(path)
    for c, why in sorted(mount.missing.items()):
        log.warning("controller %s unavailable: %s", c, why)
    return AgentLayout(mount=mount, root=root, delegated=delegated)
