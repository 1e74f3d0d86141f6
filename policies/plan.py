"""Plan: (policy, processes, current tree) -> the list of actions that makes the tree match.

Pure: no I/O, so it is exhaustively tested with hypothesis. Every action names a cgroup by its
rel beneath the engine's root (validated names only), so nothing outside the root can be named.

Where a process goes (``place``), in this order:
1. never moved: kernel threads, zombies, the agent's own PIDs, top-level ``exclude`` matches;
2. it sits in the leaf of a ``sticky`` group that is still in the policy: it stays;
3. the first group whose rules match (children before parents; see match.py): that group's leaf;
4. no rule matches, and it is in the same cgroup as its parent: it follows its parent's placement
   (a child someone moved elsewhere, e.g. by systemd-run or docker, is left alone);
5. it is under the root in a cgroup the policy no longer has (a removed group): the default
   group ``<root>/default`` (the policy may declare a group named ``default`` for its limits);
6. otherwise it stays where it is.

Action order: create missing groups (parents first, with the controllers their limits need),
evacuate processes from groups that just became parents (processes live only in leaves: a group
with children keeps its own processes in ``<group>/_``), enable controllers there, write
changed limits (and reset dropped ones to the kernel's default), move processes, then remove
cgroups the policy no longer has once nothing that must stay is left in them, deepest first.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field

from policies.match import Matcher
from policies.procs import Proc
from policies.schema import DEFAULT_GROUP, LIMIT_CONTROLLERS, Group, Policy

# What a limit file reads when nobody set it: dropping a limit from the policy writes this back.
LIMIT_DEFAULTS: dict[str, str] = {
    "cpu.weight": "100",
    "cpu.max": "max 100000",
    "memory.min": "0",
    "memory.low": "0",
    "memory.high": "max",
    "memory.max": "max",
    "memory.swap.max": "max",
    "pids.max": "max",
    "io.weight": "default 100",
}


@dataclass(frozen=True, slots=True)
class CreateGroup:
    rel: str
    controllers: tuple[str, ...] = ()

    def __str__(self) -> str:
        extra = f" with {' '.join(self.controllers)}" if self.controllers else ""
        return f"create {self.rel}{extra}"


@dataclass(frozen=True, slots=True)
class SetLimit:
    rel: str
    file: str
    value: str
    old: str | None = None

    def __str__(self) -> str:
        was = f" (was {self.old})" if self.old is not None else ""
        return f"set {self.rel}/{self.file} = {self.value}{was}"


@dataclass(frozen=True, slots=True)
class MovePid:
    pid: int
    rel: str
    start: int = 0  # the process's start time: apply refuses to move a reused PID
    comm: str = ""
    source: str = ""  # its cgroup in the hierarchy before the move
    reason: str = ""

    def __str__(self) -> str:
        return f"move {self.pid} ({self.comm}) {self.source or '?'} -> {self.rel}: {self.reason}"


@dataclass(frozen=True, slots=True)
class RemoveGroup:
    rel: str

    def __str__(self) -> str:
        return f"remove {self.rel}"


Action = CreateGroup | SetLimit | MovePid | RemoveGroup


@dataclass(frozen=True, slots=True)
class GroupState:
    """One existing cgroup under the root: the controllers it has and its limit files' values."""

    controllers: frozenset[str] = frozenset()
    limits: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Current:
    """The tree as it is: the root's path in the hierarchy (as /proc/PID/cgroup shows it), the
    controllers the root can hand down, and every cgroup beneath it by rel (root excluded)."""

    root_cgroup: str
    root_controllers: frozenset[str] = frozenset()
    groups: Mapping[str, GroupState] = field(default_factory=dict)

    def rel_of(self, cgroup: str) -> str | None:
        """The rel of a hierarchy path under the root ("" for the root), else None."""
        root = self.root_cgroup.rstrip("/")
        if cgroup == self.root_cgroup or cgroup == root:
            return ""
        if cgroup.startswith(root + "/"):
            return cgroup[len(root) + 1 :]
        return None

    def cgroup_of(self, rel: str) -> str:
        root = self.root_cgroup.rstrip("/")
        return f"{root}/{rel}" if rel else (self.root_cgroup or "/")


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a process goes (``target`` rel, None = stays put) and why."""

    target: str | None
    reason: str
    group: Group | None = None


def default_leaf(policy: Policy) -> str:
    g = policy.group_at(DEFAULT_GROUP)
    return g.leaf if g is not None else DEFAULT_GROUP


class Placer:
    """Decides every process's placement, memoised (children ask for their parent's)."""

    def __init__(
        self,
        policy: Policy,
        procs: Iterable[Proc],
        current: Current,
        self_pids: Collection[int] = (),
        matcher: Matcher | None = None,
    ) -> None:
        self.policy = policy
        self.current = current
        self.matcher = matcher or Matcher(policy, self_pids)
        self.procs = {p.pid: p for p in procs}
        self.owned = policy.owned_paths()
        self.default = default_leaf(policy)
        self.sticky_leaves = {g.leaf: g for g in policy.all_groups() if g.sticky}
        self.memo: dict[int, Placement] = {}

    def place(self, pid: int) -> Placement:
        done = self.memo.get(pid)
        if done is not None:
            return done
        chain: list[int] = []
        seen: set[int] = set()
        # Walk up through processes that would follow their parent, then resolve top down:
        # no recursion, so a deep or cyclic (PID reuse) parent chain cannot blow the stack.
        cur: int | None = pid
        result: Placement | None = None
        while cur is not None and cur not in seen:
            seen.add(cur)
            known = self.memo.get(cur)
            if known is not None:
                result = known
                break
            own = self._own(self.procs[cur])
            if own is not None:
                self.memo[cur] = own
                result = own
                break
            chain.append(cur)
            parent = self.procs.get(self.procs[cur].ppid)
            cur = (
                parent.pid
                if parent is not None and parent.cgroup == self.procs[cur].cgroup
                else None
            )
        for c in reversed(chain):
            result = self._follow(self.procs[c], result)
            self.memo[c] = result
        assert pid in self.memo
        return self.memo[pid]

    def _own(self, p: Proc) -> Placement | None:
        """A placement by p's own properties, or None when it depends on its parent."""
        parent = self.procs.get(p.ppid)
        why = self.matcher.never(p, parent)
        if why is not None:
            return Placement(None, why)
        rel = self.current.rel_of(p.cgroup)
        if rel is not None and rel in self.sticky_leaves:
            g = self.sticky_leaves[rel]
            return Placement(rel, f"in sticky group {g.path}: stays", g)
        d = self.matcher.decide(p, parent)
        if d.group is not None:
            return Placement(d.group.leaf, d.reason, d.group)
        return None

    def _follow(self, p: Proc, parent_placement: Placement | None) -> Placement:
        if (
            parent_placement is not None
            and parent_placement.target is not None
            and parent_placement.group is not None
        ):
            g = parent_placement.group
            return Placement(
                parent_placement.target, f"no rule matches; follows its parent ({g.path})", g
            )
        rel = self.current.rel_of(p.cgroup)
        if rel is not None and rel not in self.owned:
            return Placement(
                self.default,
                f"its cgroup {rel or '(the root)'} is not in the policy: back to {self.default}",
            )
        return Placement(None, "no rule matches: stays where it is")


def _controllers_below(g: Group) -> frozenset[str]:
    out: set[str] = set()
    for d in g.walk():
        out |= d.limits.controllers()
    return frozenset(out)


def _ancestors(rel: str) -> list[str]:
    parts = rel.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]


def plan(
    policy: Policy,
    processes: Iterable[Proc],
    current: Current,
    self_pids: Collection[int] = (),
    matcher: Matcher | None = None,
) -> list[Action]:
    """The actions that bring ``current`` in line with ``policy`` for ``processes``."""
    procs = sorted(processes, key=lambda p: p.pid)
    placer = Placer(policy, procs, current, self_pids, matcher)
    groups = policy.all_groups()
    existing = current.groups
    avail = current.root_controllers

    # Desired cgroups: every group, its implicit leaf, and the default group.
    wanted: dict[str, frozenset[str]] = {}
    for g in groups:
        wanted[g.path] = _controllers_below(g)
        if g.children:
            wanted[g.leaf] = frozenset()
    dleaf = placer.default
    for rel in [*_ancestors(dleaf), dleaf]:
        wanted.setdefault(rel, frozenset())

    placements = {p.pid: placer.place(p.pid) for p in procs}
    where = {p.pid: current.rel_of(p.cgroup) for p in procs}

    # Existing groups that become parents and still hold processes must be emptied first.
    internal = {g.path for g in groups if g.children} | {a for r in wanted for a in _ancestors(r)}
    busy = {r for r in where.values() if r is not None and r in internal and r in existing}

    creates: list[Action] = []
    enables: list[Action] = []
    for rel in sorted(wanted, key=lambda r: (r.count("/"), r)):
        need = tuple(sorted(wanted[rel] & avail))
        if rel not in existing:
            if any(a in busy for a in _ancestors(rel)):
                creates.append(CreateGroup(rel))
                if need:
                    enables.append(CreateGroup(rel, need))
            else:
                creates.append(CreateGroup(rel, need))
        elif not set(need) <= existing[rel].controllers:
            enables.append(CreateGroup(rel, need))

    limits: list[Action] = []
    for g in groups:
        want = g.limits.as_dict()
        have = existing[g.path].limits if g.path in existing else {}
        for file, value in sorted(want.items()):
            # A limit whose controller the root lacks (a hybrid host's v2 tree) is skipped by
            # apply: planning it would never reach "nothing to do".
            if have.get(file) != value and limit_controller(file) in avail:
                limits.append(SetLimit(g.path, file, value, have.get(file)))
        for file, value in sorted(have.items()):
            if file not in want and file in LIMIT_DEFAULTS and value != LIMIT_DEFAULTS[file]:
                limits.append(SetLimit(g.path, file, LIMIT_DEFAULTS[file], value))
    for rel in sorted(set(wanted) - {g.path for g in groups}):
        # implicit leaves and an undeclared default group carry no limits of their own
        for file, value in sorted((existing[rel].limits if rel in existing else {}).items()):
            if file in LIMIT_DEFAULTS and value != LIMIT_DEFAULTS[file]:
                limits.append(SetLimit(rel, file, LIMIT_DEFAULTS[file], value))

    evacuate: list[Action] = []
    moves: list[Action] = []
    for p in procs:
        pl = placements[p.pid]
        if pl.target is None or pl.target == where[p.pid]:
            continue
        m = MovePid(p.pid, pl.target, p.start, p.comm, p.cgroup, pl.reason)
        (evacuate if where[p.pid] in busy else moves).append(m)

    # Cgroups the policy does not have: removed once nothing that stays is left inside.
    stays: set[str] = set()
    for p in procs:
        r = where[p.pid]
        pl = placements[p.pid]
        final = pl.target if pl.target is not None else r
        if final is not None:
            stays.add(final)
            stays.update(_ancestors(final))
    removes: list[Action] = []
    removed: set[str] = set()
    for rel in sorted(existing, key=lambda r: (r.count("/"), r)):
        if rel in wanted or rel in stays or any(a in removed for a in _ancestors(rel)):
            continue
        if any(s == rel or s.startswith(rel + "/") for s in stays):
            continue
        removed.add(rel)
        removes.append(RemoveGroup(rel))
    removes.sort(key=lambda a: -a.rel.count("/") if isinstance(a, RemoveGroup) else 0)
    return creates + evacuate + enables + limits + moves + removes


def limit_controller(file: str) -> str:
    return LIMIT_CONTROLLERS[file]
