"""The pure planner over random process tables, policies and trees (hypothesis), plus the
documented placement order on hand-made cases."""

from __future__ import annotations

import re
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from cgroupfs.paths import split_rel
from policies.match import Matcher
from policies.plan import (
    Action,
    CreateGroup,
    Current,
    GroupState,
    MovePid,
    RemoveGroup,
    SetLimit,
    plan,
)
from policies.procs import Proc
from policies.schema import Group, Limits, MatchRule, Policy

ROOT = "/pystats/policies"
COMMS = ["make", "cc1", "bash", "sshd", "pg", "py"]
NAMES = ["a", "b", "c", "default"]
LIMITS = [("memory.max", "1048576"), ("cpu.weight", "50"), ("pids.max", "10")]


def proc(pid: int, comm: str, cgroup: str = "/", ppid: int = 1, **kw: object) -> Proc:
    base = Proc(pid, ppid, comm, f"/usr/bin/{comm}", (comm,), 0, 0, "root", "root", cgroup)
    return replace(base, start=pid * 10, **kw)  # type: ignore[arg-type]


# -- strategies -------------------------------------------------------------------------------

_rule = st.builds(
    lambda comm, uid: MatchRule(comm=(comm,), uid=uid, line=1),
    st.sampled_from(COMMS),
    st.sampled_from([(), (0,), (1000,)]),
)


@st.composite
def _groups(draw: st.DrawFn, parent: str = "", depth: int = 0) -> tuple[Group, ...]:
    names = draw(
        st.lists(st.sampled_from(NAMES if depth == 0 else NAMES[:3]), unique=True, max_size=3)
    )
    out = []
    for n in names:
        path = f"{parent}/{n}" if parent else n
        children = draw(_groups(path, depth + 1)) if depth < 2 and draw(st.booleans()) else ()
        out.append(
            Group(
                name=n,
                path=path,
                limits=Limits(tuple(sorted(draw(st.sets(st.sampled_from(LIMITS), max_size=2))))),
                match=tuple(draw(st.lists(_rule, max_size=2))),
                exclude=tuple(draw(st.lists(_rule, max_size=1))),
                sticky=draw(st.booleans()),
                children=children,
            )
        )
    return tuple(out)


_policy = st.builds(
    lambda groups, exclude: Policy(groups=groups, exclude=exclude),
    _groups(),
    st.lists(
        st.builds(lambda c: MatchRule(comm=(c,), line=2), st.sampled_from(COMMS)), max_size=1
    ).map(tuple),
)

_rels = ["a", "b", "a/_", "a/b", "a/b/c", "old", "old/x", "default", "c", "b/_", "b/a"]
_cgroups = ["/", "/other", "/system.slice/x.service", ROOT] + [f"{ROOT}/{r}" for r in _rels]


@st.composite
def _procs(draw: st.DrawFn) -> list[Proc]:
    n = draw(st.integers(0, 25))
    out = []
    for pid in range(2, n + 2):
        out.append(
            proc(
                pid,
                draw(st.sampled_from(COMMS)),
                draw(st.sampled_from(_cgroups)),
                ppid=draw(st.integers(0, n + 1)),
                uid=draw(st.sampled_from([0, 1000])),
                kthread=draw(st.booleans()) and draw(st.booleans()),
                zombie=draw(st.booleans()) and draw(st.booleans()),
            )
        )
    return out


@st.composite
def _current(draw: st.DrawFn, procs: list[Proc]) -> Current:
    have = set(draw(st.sets(st.sampled_from(_rels))))
    for p in procs:  # a process's cgroup exists
        if p.cgroup.startswith(ROOT + "/"):
            have.add(p.cgroup[len(ROOT) + 1 :])
    for r in list(have):  # and its ancestors
        parts = r.split("/")
        have.update("/".join(parts[:i]) for i in range(1, len(parts)))
    ctrls = frozenset(draw(st.sets(st.sampled_from(["cpu", "memory", "pids"]))))
    groups = {
        r: GroupState(ctrls, dict(draw(st.sets(st.sampled_from(LIMITS), max_size=2)))) for r in have
    }
    return Current(ROOT, ctrls, groups)


# -- a pure model of apply, to check that a second plan has nothing left to do ------------------


def simulate(
    current: Current, procs: list[Proc], actions: list[Action]
) -> tuple[Current, list[Proc]]:
    groups = {r: GroupState(s.controllers, dict(s.limits)) for r, s in current.groups.items()}
    by_pid = {p.pid: p for p in procs}
    for a in actions:
        if isinstance(a, CreateGroup):
            parts = a.rel.split("/")
            for i in range(1, len(parts) + 1):
                r = "/".join(parts[:i])
                old = groups.get(r, GroupState())
                groups[r] = GroupState(old.controllers | set(a.controllers), old.limits)
        elif isinstance(a, SetLimit):
            dict.__setitem__(groups[a.rel].limits, a.file, a.value)  # type: ignore[index]
        elif isinstance(a, MovePid):
            by_pid[a.pid] = replace(by_pid[a.pid], cgroup=f"{ROOT}/{a.rel}")
        elif isinstance(a, RemoveGroup):
            for r in [r for r in groups if r == a.rel or r.startswith(a.rel + "/")]:
                del groups[r]
    return Current(ROOT, current.root_controllers, groups), sorted(
        by_pid.values(), key=lambda p: p.pid
    )


SELF = 3


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_plan_properties(data: st.DataObject) -> None:
    policy = data.draw(_policy)
    procs = data.draw(_procs())
    current = data.draw(_current(procs))
    actions = plan(policy, procs, current, self_pids={SELF})

    moves = [a for a in actions if isinstance(a, MovePid)]
    # each process is moved at most once, so it lands in at most one group
    assert len({m.pid for m in moves}) == len(moves)
    by_pid = {p.pid: p for p in procs}
    matcher = Matcher(policy, {SELF})
    for m in moves:
        p = by_pid[m.pid]
        assert not p.kthread and not p.zombie and p.pid != SELF
        assert matcher.never(p, by_pid.get(p.ppid)) is None  # excluded processes never move
        assert m.start == p.start
    # every cgroup named is a valid rel beneath the root; the root itself is never removed
    owned = policy.owned_paths()
    for a in actions:
        assert split_rel(a.rel) and not a.rel.startswith("/")
        if isinstance(a, CreateGroup | SetLimit):
            assert a.rel in owned or any(o.startswith(a.rel + "/") for o in owned)
        if isinstance(a, RemoveGroup):
            assert a.rel not in owned and a.rel in current.groups
    # removed cgroups hold nothing that stays
    removed = [a.rel for a in actions if isinstance(a, RemoveGroup)]
    new_current, new_procs = simulate(current, procs, actions)
    for p in new_procs:
        rel = new_current.rel_of(p.cgroup)
        if rel:
            assert not any(rel == r or rel.startswith(r + "/") for r in removed), (p, removed)
    # idempotent: planning again over the result has nothing left to do
    again = plan(policy, new_procs, new_current, self_pids={SELF})
    assert again == [], again


# -- documented behaviour on small cases --------------------------------------------------------

POLICY = Policy(
    groups=(
        Group(
            "build",
            "build",
            Limits((("memory.max", "4096"),)),
            match=(MatchRule(comm=("make",), line=5),),
            children=(
                Group(
                    "cc", "build/cc", match=(MatchRule(comm=("cc1", "make"), uid=(1000,), line=9),)
                ),
            ),
        ),
        Group("tests", "tests", match=(MatchRule(comm=("py",), line=12),), sticky=True),
    ),
    exclude=(MatchRule(comm=("sshd",), line=2),),
)


def targets(actions: list[Action]) -> dict[int, str]:
    return {a.pid: a.rel for a in actions if isinstance(a, MovePid)}


def test_children_first_then_parent_into_implicit_leaf() -> None:
    procs = [proc(10, "make", uid=1000), proc(11, "make", uid=0), proc(12, "cc1", uid=0)]
    acts = plan(POLICY, procs, Current(ROOT))
    assert targets(acts) == {10: "build/cc", 11: "build/_"}


def test_children_follow_their_parent_only_in_the_same_cgroup() -> None:
    procs = [
        proc(10, "make", "/user"),
        proc(11, "bash", "/user", ppid=10),
        proc(12, "bash", "/elsewhere", ppid=10),  # moved away by someone: left alone
        proc(13, "bash", "/user", ppid=11),  # grandchild follows too
    ]
    assert targets(plan(POLICY, procs, Current(ROOT))) == {
        10: "build/_",
        11: "build/_",
        13: "build/_",
    }


def test_never_moved() -> None:
    procs = [
        proc(10, "sshd"),
        proc(11, "make", kthread=True),
        proc(12, "make", zombie=True),
        proc(13, "make"),
        proc(14, "make", ppid=10),
    ]
    assert targets(plan(POLICY, procs, Current(ROOT), self_pids={13})) == {14: "build/_"}


def test_sticky_keeps_a_process_after_exec() -> None:
    procs = [proc(10, "make", f"{ROOT}/tests")]
    assert targets(plan(POLICY, procs, Current(ROOT, groups={"tests": GroupState()}))) == {}


def test_removed_group_goes_to_default_and_is_removed() -> None:
    current = Current(
        ROOT, groups={"old": GroupState(), "old/x": GroupState(), "build": GroupState()}
    )
    procs = [proc(10, "vim", f"{ROOT}/old/x"), proc(11, "sshd", "/")]
    acts = plan(POLICY, procs, current)
    assert targets(acts) == {10: "default"}
    assert [a for a in acts if isinstance(a, RemoveGroup)] == [RemoveGroup("old")]
    assert acts.index(next(a for a in acts if isinstance(a, MovePid))) < acts.index(
        RemoveGroup("old")
    )


def test_removed_group_with_an_excluded_process_stays() -> None:
    current = Current(ROOT, groups={"old": GroupState()})
    acts = plan(POLICY, [proc(10, "sshd", f"{ROOT}/old")], current)
    assert not any(isinstance(a, RemoveGroup) for a in acts)


def test_limits_changed_and_dropped() -> None:
    current = Current(
        ROOT,
        frozenset({"memory", "pids"}),
        {
            "build": GroupState(frozenset({"memory"}), {"memory.max": "max", "pids.max": "5"}),
            "build/_": GroupState(),
            "build/cc": GroupState(),
            "tests": GroupState(),
            "default": GroupState(),
        },
    )
    acts = plan(POLICY, [], current)
    assert acts == [
        SetLimit("build", "memory.max", "4096", "max"),
        SetLimit("build", "pids.max", "max", "5"),
    ]


def test_new_tree_created_parents_first_with_controllers() -> None:
    acts = plan(POLICY, [], Current(ROOT, frozenset({"memory", "cpu"})))
    creates = [a for a in acts if isinstance(a, CreateGroup)]
    assert creates[0] == CreateGroup("build", ("memory",))
    assert {c.rel for c in creates} == {"build", "build/_", "build/cc", "tests", "default"}


def test_leaf_becoming_parent_is_evacuated_before_controllers() -> None:
    build = POLICY.groups[0]
    cc = replace(build.children[0], limits=Limits((("memory.max", "8192"),)))
    policy = replace(POLICY, groups=(replace(build, children=(cc,)), POLICY.groups[1]))
    current = Current(ROOT, frozenset({"memory"}), {"build": GroupState(frozenset({"memory"}))})
    acts = plan(policy, [proc(10, "make", f"{ROOT}/build")], current)
    # build/cc is created bare, build's process moves to build/_, then memory is enabled for cc
    evacuate = next(i for i, a in enumerate(acts) if isinstance(a, MovePid))
    assert acts[evacuate].rel == "build/_"
    assert (
        acts.index(CreateGroup("build/cc"))
        < evacuate
        < acts.index(CreateGroup("build/cc", ("memory",)))
    )


def test_explain_names_the_rule_and_every_field() -> None:
    from policies.explain import explain

    procs = [proc(10, "make", "/user", uid=0), proc(11, "bash", "/user", ppid=10)]
    lines = explain(POLICY, 11, procs, Current(ROOT))
    assert lines[3:] == [
        "  result: would move to build/_: no rule matches; follows its parent (build)",
        "  rules tried (children before parents, siblings in file order):",
        "    exclude (line 2): comm no",
        "    build/cc match (line 9): comm no, uid no",
        "    build match (line 5): comm no",
        "    tests match (line 12): comm no",
    ]
    assert explain(POLICY, 99, procs, Current(ROOT)) == ["process 99 does not exist (or exited)"]
    kthread = explain(POLICY, 10, [proc(10, "make", kthread=True)], Current(ROOT))
    assert "  result: stays where it is: kernel thread: never moved" in kthread


def test_protected_cgroups_are_never_moved() -> None:
    procs = [proc(10, "make", "/pystats/workloads/w1"), proc(11, "make", "/pystats/workloadsX")]
    matcher = Matcher(POLICY, protected=["/pystats/workloads"])
    assert targets(plan(POLICY, procs, Current(ROOT), matcher=matcher)) == {11: "build/_"}


def test_matcher_needs_only_the_fields_its_rules_use() -> None:
    from policies.procs import CMDLINE, EXE, IDS

    assert Matcher(POLICY).needs == frozenset({IDS})  # build/cc has a uid rule
    only_comm = Policy(groups=(Group("a", "a", match=(MatchRule(comm=("x",)),)),))
    assert Matcher(only_comm).needs == frozenset()
    both = Policy(
        groups=(Group("a", "a", match=(MatchRule(exe=("/x",)),)),),
        exclude=(MatchRule(cmdline=(re.compile("y"),)),),
    )
    assert Matcher(both).needs == frozenset({CMDLINE, EXE})
