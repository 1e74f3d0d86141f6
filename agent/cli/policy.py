"""`pystats policy check|plan|explain`: validate a policy, show what it would do, say why.

Exit codes: 0 fine, 1 the policy has errors (each printed as FILE:LINE:COL: message), 2 the
environment cannot answer (no cgroup2 mount, unreadable root), 125 a usage error (as every
pystats command's). No traceback on any input.
Imports happen inside the handlers so that `pystats policy check` starts fast.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

AUTO = "auto"
POLICIES_SUBTREE = "pystats/policies"  # the agent's default root (rootsetup) + its policies/


def register(sub: Any) -> None:
    p = sub.add_parser(
        "policy",
        help="check, plan or explain a placement policy (YAML)",
        description="Placement policies: YAML rules that put processes into cgroup subtrees.",
    )
    psub = p.add_subparsers(dest="policy_command", metavar="ACTION", required=True)

    c = psub.add_parser("check", help="validate policy files; list every error as FILE:LINE:COL")
    c.add_argument("files", nargs="+", metavar="FILE")
    c.set_defaults(func=_check)

    pl = psub.add_parser("plan", help="print what the policy would create, move and set (dry run)")
    pl.add_argument("file", metavar="FILE")
    pl.add_argument(
        "--root",
        default=AUTO,
        help="the policy engine's cgroup root (default: the running agent's, asked on --socket;"
        f" without one, the configuration's root, else <cgroup2 mount>/{POLICIES_SUBTREE})",
    )
    _add_socket(pl)
    pl.set_defaults(func=_plan)

    e = psub.add_parser("explain", help="say which rule places a process, and why (or why none)")
    e.add_argument("pid", metavar="PID", type=int)
    e.add_argument("--policy", metavar="FILE", help="policy file (default: the agent config's)")
    e.add_argument("--root", default=AUTO, help="the policy engine's cgroup root (as for plan)")
    _add_socket(e)
    e.set_defaults(func=_explain)


def _add_socket(p: argparse.ArgumentParser) -> None:
    from agent.api.socketpath import SOCKET_HELP, default_socket

    p.add_argument("--socket", default=default_socket(), help=SOCKET_HELP)


def _check(args: argparse.Namespace) -> int:
    from policies.validate import check_file

    status = 0
    for path in args.files:
        policy, errors = check_file(path)
        if policy is None:
            status = 1
            for err in errors:
                print(err)
            print(f"{path}: {len(errors)} error{'s' if len(errors) != 1 else ''}", file=sys.stderr)
        else:
            groups = policy.all_groups()
            rules = sum(len(g.match) for g in groups)
            from agent.cli.common import plural

            counts = f"{plural(len(groups), 'group')}, {plural(rules, 'match rule')}"
            print(f"{path}: ok ({counts})")
    return status


def _load(path: str) -> Any:
    from policies.validate import check_file

    policy, errors = check_file(path)
    if policy is None:
        for err in errors:
            print(err)
        return None
    return policy


def _root(arg: str, socket_path: str) -> str | None:
    if arg != AUTO:
        return os.path.abspath(arg)
    from agent.api.agent_client import agent_facts

    facts = agent_facts(socket_path)
    if facts is not None:
        return facts.policies_root
    from agent.config import ConfigError, load_config

    try:
        configured = load_config(None).root
    except ConfigError:
        configured = AUTO
    if configured and configured != AUTO:
        from agent.rootsetup import POLICIES

        return os.path.join(os.path.realpath(configured), POLICIES)
    from cgroupfs.mount import detect

    mount = detect()
    if mount.path is None:
        print("pystats policy: no cgroup2 filesystem is mounted; pass --root", file=sys.stderr)
        return None
    return os.path.join(mount.path, POLICIES_SUBTREE)


def _state(root_path: str) -> Any:
    """(CgroupRoot, Current, processes) for ``root_path``; None after printing why."""
    from cgroupfs.errors import CgroupError
    from cgroupfs.paths import CgroupRoot
    from policies.apply import read_current
    from policies.plan import Current
    from policies.procs import hierarchy_path, snapshot

    root_cgroup = hierarchy_path(root_path)
    if root_cgroup is None:
        parent = os.path.dirname(root_path)
        base = hierarchy_path(parent) if os.path.isdir(parent) else None
        if base is None:
            print(f"pystats policy: {root_path} is not on a cgroup2 filesystem", file=sys.stderr)
            return None
        root_cgroup = base.rstrip("/") + "/" + os.path.basename(root_path)
    try:
        root = CgroupRoot(root_path)
        current = (
            read_current(root, root_cgroup)
            if os.path.isdir(root_path)
            # Not made yet: it gets the controllers its parent has (rootsetup enables them).
            else Current(root_cgroup, _parent_controllers(root_path))
        )
    except (CgroupError, OSError) as e:
        print(f"pystats policy: cannot read {root_path}: {e}", file=sys.stderr)
        return None
    return root, current, snapshot()


def _parent_controllers(root_path: str) -> frozenset[str]:
    from cgroupfs import reader
    from cgroupfs.errors import CgroupError
    from cgroupfs.parsers import parse_controllers
    from cgroupfs.paths import CgroupRoot

    parent = os.path.dirname(root_path)
    while parent != "/" and not os.path.isdir(parent):
        parent = os.path.dirname(parent)
    try:
        return parse_controllers(reader.read_file(CgroupRoot(parent), "", "cgroup.controllers"))
    except (CgroupError, OSError, ValueError):
        return frozenset()


def _plan(args: argparse.Namespace) -> int:
    from policies.plan import plan

    policy = _load(args.file)
    if policy is None:
        return 1
    root_path = _root(args.root, args.socket)
    state = _root_state(root_path)
    if state is None:
        return 2
    root, current, procs = state
    if not os.path.isdir(root.path):
        print(f"(root {root.path} does not exist yet: it would be created)")
    actions = plan(policy, procs, current, self_pids={os.getpid()})
    try:
        for a in actions:
            print(a)
    except BrokenPipeError:  # `| head`
        return 0
    if not actions:
        print("nothing to do: the tree already matches the policy")
        return 0
    print(f"{len(actions)} action{'s' if len(actions) != 1 else ''} (nothing was changed)")
    return 0


def _root_state(root_path: str | None) -> Any:
    return None if root_path is None else _state(root_path)


def _explain(args: argparse.Namespace) -> int:
    from agent.cli.common import usage_error
    from policies.explain import explain

    if args.pid <= 0:
        return usage_error(args, f"{args.pid} is not a process ID")
    path = args.policy
    if path is None:
        from agent.config import ConfigError, load_config

        try:
            path = load_config(None).policy
        except ConfigError as e:
            print("\n".join(e.errors), file=sys.stderr)
            return 2
        if path is None:
            return usage_error(args, "no policy configured; pass --policy FILE")
    policy = _load(path)
    if policy is None:
        return 1
    state = _root_state(_root(args.root, args.socket))
    if state is None:
        return 2
    _root_obj, current, procs = state
    if not any(p.pid == args.pid for p in procs):
        print(f"pystats policy explain: process {args.pid} does not exist", file=sys.stderr)
        return 1
    for line in explain(policy, args.pid, procs, current, self_pids={os.getpid()}):
        print(line)
    return 0
