"""The policy engine as the daemon runs it: rooted at <agent root>/policies."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

from agent.config import AgentConfig
from agent.rootsetup import AGENT_LEAF, AgentLayout
from cgroupfs.paths import CgroupRoot
from policies.engine import PolicyEngine
from workloads.runtime.cgroups import SHIMS, WORKLOADS


class HostedEngine(PolicyEngine):
    """Adds what the exporter needs: placement action counts by outcome."""

    def action_counts(self) -> Mapping[tuple[str, str], int]:
        s = self.stats
        return {
            ("all", "moved"): int(s.moves + s.event_moves),
            ("all", "gone"): int(s.pids_gone),
            ("all", "failed"): int(s.errors),
            ("all", "group_created"): int(s.groups_created),
            ("all", "group_removed"): int(s.groups_removed),
            ("all", "limit_set"): int(s.limits_set),
        }


def protected_cgroups(layout: AgentLayout) -> tuple[str, ...]:
    """The agent's own cgroups as /proc/PID/cgroup names them: a policy never moves their
    processes (a workload moved out of its cgroup would escape its limits)."""
    assert layout.mount.path is not None
    rel = os.path.relpath(layout.root.path, os.path.realpath(layout.mount.path))
    base = "/" if rel == "." else "/" + rel
    return tuple(os.path.join(base, leaf) for leaf in (WORKLOADS, SHIMS, AGENT_LEAF))


def make_engine(
    cfg: AgentConfig,
    layout: AgentLayout,
    on_placed: Callable[[int, str, str, str], None] | None = None,
) -> HostedEngine:
    assert cfg.policy is not None
    return HostedEngine(
        CgroupRoot(layout.policies),
        cfg.policy,
        reconcile_s=cfg.reconcile_interval_s,
        self_pids=(os.getpid(),),
        protected=protected_cgroups(layout),
        on_placed=on_placed,
    )
