"""Which group a process belongs to, by the policy's rules. Pure: a Proc in, an answer out.

Order (the one documented in policies/README.md):
1. kernel threads, zombies, the agent's own PIDs and processes in protected cgroups (the agent's
   workloads): never placed;
2. a top-level ``exclude`` rule matches: never placed;
3. groups are tried children first, then the group itself, siblings in file order; a group
   matches when one of its ``match`` rules does and none of its ``exclude`` rules does.
   The first group that matches wins.
Within a rule every field given must match (AND); a field with a list matches any item (OR).
Following the parent and ``sticky`` are decided by the planner, which sees the whole table.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass

from policies.procs import CMDLINE, EXE, IDS, Proc
from policies.schema import Group, MatchRule, Policy

_Glob = Callable[[str], re.Match[str] | None]


def _globs(patterns: tuple[str, ...]) -> tuple[_Glob, ...]:
    return tuple(re.compile(fnmatch.translate(p)).match for p in patterns)


class CompiledRule:
    """A MatchRule with its globs compiled once."""

    __slots__ = (
        "cgroup",
        "cmdline",
        "comm",
        "described",
        "exe",
        "gid",
        "group",
        "parent",
        "rule",
        "uid",
        "user",
    )

    def __init__(self, rule: MatchRule) -> None:
        self.rule = rule
        self.described = rule.describe()  # once: decide() quotes it for every placement
        self.comm = _globs(rule.comm)
        self.exe = _globs(rule.exe)
        self.parent = _globs(rule.parent)
        self.cgroup = _globs(rule.cgroup)
        self.cmdline = rule.cmdline
        self.user = frozenset(rule.user)
        self.uid = frozenset(rule.uid)
        self.group = frozenset(rule.group)
        self.gid = frozenset(rule.gid)

    def check(self, p: Proc, parent: Proc | None) -> list[tuple[str, bool]]:
        """(field, matched) for each field the rule gives, in a fixed order."""
        out: list[tuple[str, bool]] = []
        if self.comm:
            out.append(("comm", any(g(p.comm) for g in self.comm)))
        if self.exe:
            out.append(("exe", any(g(p.exe) for g in self.exe)))
        if self.cmdline:
            line = " ".join(p.cmdline)
            out.append(("cmdline", any(r.search(line) for r in self.cmdline)))
        if self.user:
            out.append(("user", p.user in self.user or str(p.uid) in self.user))
        if self.uid:
            out.append(("uid", p.uid in self.uid))
        if self.group:
            out.append(("group", p.group in self.group or str(p.gid) in self.group))
        if self.gid:
            out.append(("gid", p.gid in self.gid))
        if self.parent:
            pc = parent.comm if parent is not None else None
            out.append(("parent", pc is not None and any(g(pc) for g in self.parent)))
        if self.cgroup:
            out.append(("cgroup", any(g(p.cgroup) for g in self.cgroup)))
        return out

    def matches(self, p: Proc, parent: Proc | None) -> bool:
        # Cheap fields first, stop at the first miss.
        if self.comm and not any(g(p.comm) for g in self.comm):
            return False
        if self.uid and p.uid not in self.uid:
            return False
        if self.gid and p.gid not in self.gid:
            return False
        if self.user and p.user not in self.user and str(p.uid) not in self.user:
            return False
        if self.group and p.group not in self.group and str(p.gid) not in self.group:
            return False
        if self.exe and not any(g(p.exe) for g in self.exe):
            return False
        if self.parent and (parent is None or not any(g(parent.comm) for g in self.parent)):
            return False
        if self.cgroup and not any(g(p.cgroup) for g in self.cgroup):
            return False
        if self.cmdline:
            line = " ".join(p.cmdline)
            if not any(r.search(line) for r in self.cmdline):
                return False
        return True


@dataclass(frozen=True, slots=True)
class Decision:
    """Where the rules put a process: ``group`` None means no rule places it."""

    group: Group | None
    reason: str
    rule: MatchRule | None = None


class Matcher:
    """The policy's rules, compiled, in match order."""

    def __init__(
        self,
        policy: Policy,
        self_pids: Collection[int] = (),
        protected: Collection[str] = (),
    ) -> None:
        self.policy = policy
        self.self_pids = frozenset(self_pids)
        # cgroup paths (as /proc/PID/cgroup shows them) whose processes are never moved, e.g.
        # the agent's own workloads/ subtree: a policy rule must not pull a workload out of it
        self.protected = tuple(p.rstrip("/") for p in protected if p.strip("/"))
        self.exclude = tuple(CompiledRule(r) for r in policy.exclude)
        rules = [*policy.exclude, *(r for g in policy.all_groups() for r in (*g.match, *g.exclude))]
        needs = set()
        if any(r.uid or r.gid or r.user or r.group for r in rules):
            needs.add(IDS)
        if any(r.cmdline for r in rules):
            needs.add(CMDLINE)
        if any(r.exe for r in rules):
            needs.add(EXE)
        # the /proc fields the rules look at: the event path and reconciles read only these
        self.needs = frozenset(needs)
        self.uses_parent = any(r.parent for r in rules)
        self.order: tuple[tuple[Group, tuple[CompiledRule, ...], tuple[CompiledRule, ...]], ...]
        self.order = tuple(
            (g, tuple(CompiledRule(r) for r in g.match), tuple(CompiledRule(r) for r in g.exclude))
            for g in policy.match_order()
            if g.match
        )

    def never(self, p: Proc, parent: Proc | None) -> str | None:
        """Why ``p`` must never be moved, or None."""
        if p.kthread:
            return "kernel thread: never moved"
        if p.zombie:
            return "zombie: has exited, cannot be moved"
        if p.pid in self.self_pids:
            return "the agent itself: never moved"
        for prefix in self.protected:
            if p.cgroup == prefix or p.cgroup.startswith(prefix + "/"):
                return f"in protected cgroup {prefix} (e.g. the agent's workloads): never moved"
        for r in self.exclude:
            if r.matches(p, parent):
                return f"excluded by the exclude rule at line {r.rule.line} ({r.described})"
        return None

    def decide(self, p: Proc, parent: Proc | None) -> Decision:
        why = self.never(p, parent)
        if why is not None:
            return Decision(None, why)
        for g, rules, excludes in self.order:
            for r in rules:
                if r.matches(p, parent):
                    for x in excludes:
                        if x.matches(p, parent):
                            break
                    else:
                        return Decision(
                            g,
                            f"group {g.path}: rule at line {r.rule.line} ({r.described})",
                            r.rule,
                        )
                    break
        return Decision(None, "no rule matches")
