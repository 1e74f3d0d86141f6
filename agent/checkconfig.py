"""`pystats-agent --check-config`: validate everything the agent would use, change nothing."""

from __future__ import annotations

import os
import sys

from agent.api.access import AccessError, resolve_access
from agent.config import AgentConfig
from agent.policycheck import policy_problems
from agent.rootsetup import RootError, choose_root
from cgroupfs.mount import detect


def tree_problems(cfg: AgentConfig, root: str | None) -> list[str]:
    """A ``collect_root`` that does not exist and that the agent will not create either (it
    creates its own root and the cgroups above it, nothing else): a typo there would have the
    agent watch nothing. ``root``: the resolved agent root, None if unusable."""
    want = cfg.collect_root
    if not want or want == "auto" or os.path.isdir(want):
        return []
    made = root is not None and (root + "/").startswith(os.path.realpath(want).rstrip("/") + "/")
    if made:
        return []
    return [f"collect_root {want!r} does not exist: nothing there to monitor"]


def _created(root: str) -> str | None:
    """The topmost missing cgroup of ``root`` (the agent creates it and everything below)."""
    top = None
    path = root
    while path != "/" and not os.path.isdir(path):
        top, path = path, os.path.dirname(path)
    return top


def check(cfg: AgentConfig) -> int:
    """Print the effective settings and what this host allows; 0 if usable, 2 if not."""
    ok = True
    print(f"configuration: {cfg.source}")
    mount = detect()
    print(f"cgroup mode: {mount.mode} ({mount.path or 'no cgroup2 mount'})")
    for c, why in sorted(mount.missing.items()):
        print(f"  controller {c} unavailable: {why}")
    root: str | None = None
    try:
        root, delegated = choose_root(mount, cfg.root)
        print(f"agent root: {root}{' (delegated by systemd)' if delegated else ''}")
    except RootError as e:
        print(f"error: {e}", file=sys.stderr)
        ok = False
    created = None if root is None else _created(root)
    if root is not None and created is not None:
        print(
            f"  will create {created}" + (f" and below, down to {root}" if created != root else "")
        )
    for problem in tree_problems(cfg, root):
        print(f"error: {cfg.source}: {problem}", file=sys.stderr)
        ok = False
    print(
        f"collect root: {cfg.collect_root}; interval {cfg.interval_s:g}s, slow files every "
        f"{cfg.slow_every} ticks, history {cfg.history_s:g}s"
    )
    print(f"API socket: {cfg.socket} (mode {cfg.socket_mode:04o}); metrics: {cfg.metrics_listen}")
    try:
        resolve_access(cfg)
        group = cfg.api_group or cfg.socket_group
        print(f"API users: root{f' and members of group {group}' if group else ''}")
    except AccessError as e:
        print(f"error: {e}", file=sys.stderr)
        ok = False
    if cfg.policy:
        problems = policy_problems(cfg.policy)
        if problems:
            ok = False
            for problem in problems:
                print(problem, file=sys.stderr)
        else:
            print(f"policy: {cfg.policy}: valid")
    return 0 if ok else 2
