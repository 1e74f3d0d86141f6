"""The typed policy: a tree of named groups under the engine's cgroup root.

Built only by policies.validate from a checked YAML document, so every value here is valid:
limits are already the strings written to the kernel's files, regexes are compiled.

Placement semantics (documented in policies/README.md):
- Groups are tried children first, then the group itself; siblings in file order. The first
  group with a matching rule (and no matching ``exclude`` rule of that group) wins.
- A group with children never holds processes (cgroup v2: processes only in leaves); the
  processes its own rules match go to its implicit leaf ``<group>/_``.
- The top-level ``exclude`` rules name processes the policy never moves.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

IMPLICIT_LEAF = "_"  # where a group with children keeps the processes its own rules match
DEFAULT_GROUP = "default"  # <root>/default: processes of groups removed from the policy

# Limit keys are the kernel's file names; the controller is what enables them.
LIMIT_CONTROLLERS: dict[str, str] = {
    "cpu.weight": "cpu",
    "cpu.max": "cpu",
    "memory.min": "memory",
    "memory.low": "memory",
    "memory.high": "memory",
    "memory.max": "memory",
    "memory.swap.max": "memory",
    "pids.max": "pids",
    "io.weight": "io",
}


@dataclass(frozen=True, slots=True)
class Limits:
    """Kernel file -> value as written (``{"memory.max": "536870912", "cpu.max": "150000
    100000"}``), in a stable order."""

    values: tuple[tuple[str, str], ...] = ()

    def as_dict(self) -> dict[str, str]:
        return dict(self.values)

    def controllers(self) -> frozenset[str]:
        return frozenset(LIMIT_CONTROLLERS[k] for k, _v in self.values)


@dataclass(frozen=True, slots=True)
class MatchRule:
    """All given fields must match (AND); a field with several values matches any (OR).

    ``comm``, ``exe``, ``parent`` and ``cgroup`` are shell globs (fnmatch); ``cmdline`` regexes
    are searched in the command line joined by spaces. ``line`` is where the rule is written, for
    explain.
    """

    comm: tuple[str, ...] = ()
    exe: tuple[str, ...] = ()
    cmdline: tuple[re.Pattern[str], ...] = ()
    user: tuple[str, ...] = ()
    uid: tuple[int, ...] = ()
    group: tuple[str, ...] = ()
    gid: tuple[int, ...] = ()
    parent: tuple[str, ...] = ()
    cgroup: tuple[str, ...] = ()
    line: int = 0

    def describe(self) -> str:
        parts: list[str] = []
        for name in ("comm", "exe", "user", "uid", "group", "gid", "parent", "cgroup"):
            vals = getattr(self, name)
            if vals:
                parts.append(f"{name}={'|'.join(map(str, vals))}")
        if self.cmdline:
            parts.append("cmdline~" + "|".join(p.pattern for p in self.cmdline))
        return " ".join(parts) or "(empty rule)"


@dataclass(frozen=True, slots=True)
class Group:
    name: str
    path: str  # rel of the group beneath the root, e.g. "build/ci"
    limits: Limits = Limits()
    match: tuple[MatchRule, ...] = ()
    exclude: tuple[MatchRule, ...] = ()
    sticky: bool = False
    children: tuple[Group, ...] = ()
    line: int = 0

    @property
    def leaf(self) -> str:
        """Where this group's own processes live: itself, or ``<path>/_`` if it has children."""
        return f"{self.path}/{IMPLICIT_LEAF}" if self.children else self.path

    def walk(self) -> tuple[Group, ...]:
        """This group and every descendant, parents first."""
        out: list[Group] = [self]
        for c in self.children:
            out.extend(c.walk())
        return tuple(out)


@dataclass(frozen=True, slots=True)
class Policy:
    groups: tuple[Group, ...] = ()
    exclude: tuple[MatchRule, ...] = ()
    source: str = field(default="", compare=False)

    def all_groups(self) -> tuple[Group, ...]:
        """Every group, parents first, in file order."""
        out: list[Group] = []
        for g in self.groups:
            out.extend(g.walk())
        return tuple(out)

    def match_order(self) -> tuple[Group, ...]:
        """The order rules are tried in: children before their parent, siblings in file order."""
        out: list[Group] = []

        def post(g: Group) -> None:
            for c in g.children:
                post(c)
            out.append(g)

        for g in self.groups:
            post(g)
        return tuple(out)

    def group_at(self, path: str) -> Group | None:
        for g in self.all_groups():
            if g.path == path:
                return g
        return None

    def owned_paths(self) -> frozenset[str]:
        """Every cgroup the policy keeps: groups, their implicit leaves, and the default group."""
        paths = {DEFAULT_GROUP}
        for g in self.all_groups():
            paths.add(g.path)
            paths.add(g.leaf)
        return frozenset(paths)
