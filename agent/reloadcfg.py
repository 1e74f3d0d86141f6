"""What SIGHUP can change in a running agent, and what needs a restart.

Applied live: log level, policy file and reconcile period, memory budget. Everything else (root,
socket, listen address, collection tree and cadence) is reported as waiting for a restart rather
than half-applied: a socket or root that moves under running clients would lose them.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Protocol

from agent.config import AgentConfig

LIVE = frozenset({"log_level", "policy", "reconcile_interval_s", "memory_budget"})


class LivePolicy(Protocol):
    """What SIGHUP changes in the policy engine (policies.engine.PolicyEngine)."""

    policy_path: str
    reconcile_s: float


class LiveBudget(Protocol):
    """What SIGHUP changes in the self-monitor (agent.selfmon.SelfMonitor)."""

    budget: int


def apply(
    old: AgentConfig, new: AgentConfig, engine: LivePolicy | None, monitor: LiveBudget | None
) -> list[str]:
    """Apply ``new`` over ``old`` where it can be done live; one message per changed key."""
    notes: list[str] = []
    for f in dataclasses.fields(AgentConfig):
        if f.name == "source":
            continue
        before, after = getattr(old, f.name), getattr(new, f.name)
        if before == after:
            continue
        if f.name not in LIVE:
            notes.append(f"{f.name}: {before!r} -> {after!r} takes effect on restart")
            continue
        if f.name == "log_level":
            logging.getLogger().setLevel(str(after).upper())
        elif f.name == "memory_budget" and monitor is not None:
            monitor.budget = new.memory_budget
        elif f.name == "reconcile_interval_s" and engine is not None:
            engine.reconcile_s = new.reconcile_interval_s
        elif f.name == "policy":
            if after is None:
                notes.append(f"policy: {before!r} -> None takes effect on restart")
                continue
            if engine is None:  # the daemon starts an engine for it
                notes.append(f"policy: None -> {after!r} applied: the policy engine starts")
                continue
            engine.policy_path = after
        notes.append(f"{f.name}: {before!r} -> {after!r} applied")
    return notes
