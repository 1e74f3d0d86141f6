"""Why a process goes where it goes: the placement, and every rule tried on the way (pure)."""

from __future__ import annotations

from collections.abc import Collection, Iterable

from policies.match import CompiledRule, Matcher
from policies.plan import Current, Placer
from policies.procs import Proc
from policies.schema import MatchRule, Policy


def _fields(rule: MatchRule, p: Proc, parent: Proc | None) -> str:
    parts = []
    for name, ok in CompiledRule(rule).check(p, parent):
        parts.append(f"{name} {'yes' if ok else 'no'}")
    return ", ".join(parts)


def explain(
    policy: Policy,
    pid: int,
    processes: Iterable[Proc],
    current: Current,
    self_pids: Collection[int] = (),
) -> list[str]:
    """Lines of text saying what the policy does with ``pid`` and why."""
    procs = list(processes)
    by_pid = {p.pid: p for p in procs}
    p = by_pid.get(pid)
    if p is None:
        return [f"process {pid} does not exist (or exited)"]
    parent = by_pid.get(p.ppid)
    matcher = Matcher(policy, self_pids)
    placer = Placer(policy, procs, current, self_pids, matcher)
    pl = placer.place(pid)
    rel = current.rel_of(p.cgroup)
    out = [
        f"process {p.pid} comm={p.comm!r} exe={p.exe or '-'!s} user={p.user} ({p.uid}) "
        f"group={p.group} ({p.gid}) parent={p.ppid} ({parent.comm if parent else '?'})",
        f"  cmdline: {' '.join(p.cmdline) or '-'}",
        f"  now in: {p.cgroup or '?'}"
        + (f" (root-relative {rel or '.'})" if rel is not None else ""),
    ]
    if pl.target is None:
        out.append(f"  result: stays where it is: {pl.reason}")
    elif pl.target == rel:
        out.append(f"  result: already in {pl.target}: {pl.reason}")
    else:
        out.append(f"  result: would move to {pl.target}: {pl.reason}")
    out.append("  rules tried (children before parents, siblings in file order):")
    for r in policy.exclude:
        out.append(f"    exclude (line {r.line}): {_fields(r, p, parent)}")
    for g in policy.match_order():
        for r in g.match:
            out.append(f"    {g.path} match (line {r.line}): {_fields(r, p, parent)}")
        for r in g.exclude:
            out.append(f"    {g.path} exclude (line {r.line}): {_fields(r, p, parent)}")
    if not any(g.match for g in policy.all_groups()):
        out.append("    (the policy has no match rules)")
    return out
