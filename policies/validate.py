"""Positioned YAML -> typed Policy, collecting every error (never only the first).

Each error is a ``ValidationError`` printed as ``FILE:LINE:COL: message``. Unit decisions:
- memory sizes use cgroupfs.units.parse_bytes ("512M", "512MiB", "1.5G", "max"), rounded down to
  the page size as the kernel does, so a plan compares equal with what the kernel reads back;
- CPU amounts use parse_cpus: cores ("1.5", 1.5), millicores ("500m"), or a percentage of ONE
  core ("50%" = 0.5 cores, the scale of docker stats' CPU %); cpu.max also takes the kernel's
  own "QUOTA PERIOD" (or "QUOTA/PERIOD") in microseconds;
- a percentage for memory is refused: a percent of what (the host? the parent?) is ambiguous.
"""

from __future__ import annotations

import difflib
import fnmatch
import math
import os
import re
from collections.abc import Callable

from cgroupfs.errors import UnsafePath
from cgroupfs.paths import validate_name
from cgroupfs.units import (
    MAX_PERIOD_USEC,
    MIN_PERIOD_USEC,
    MIN_QUOTA_USEC,
    cpu_max_value,
    parse_bytes,
    parse_cpus,
)
from policies.schema import (
    DEFAULT_GROUP,
    IMPLICIT_LEAF,
    LIMIT_CONTROLLERS,
    Group,
    Limits,
    MatchRule,
    Policy,
)
from policies.yamlpos import (
    ValidationError,
    YMap,
    YNode,
    YScalar,
    YSeq,
    kind,
    load_file,
    load_with_positions,
)

TOP_KEYS = ("version", "exclude", "groups")
GROUP_KEYS = ("name", "limits", "match", "exclude", "sticky", "children")
RULE_KEYS = ("comm", "exe", "cmdline", "user", "uid", "group", "gid", "parent", "cgroup")
COMM_MAX = 15  # the kernel truncates comm to 15 bytes (TASK_COMM_LEN - 1)
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
DEFAULT_PERIOD_USEC = 100_000
_GLOB_CHARS = frozenset("*?[")
_QUOTA_PERIOD = re.compile(r"^\s*(max|\d+)\s*[ /]\s*(\d+)\s*$")


class PolicyInvalid(Exception):
    """A policy with errors; ``errors`` lists every one."""

    def __init__(self, errors: list[ValidationError]) -> None:
        super().__init__("\n".join(map(str, errors)))
        self.errors = errors


class _Checker:
    def __init__(self, filename: str) -> None:
        self.file = filename
        self.errors: list[ValidationError] = []

    def err(self, node: YNode | YScalar, message: str) -> None:
        self.errors.append(ValidationError(self.file, node.line, node.col, message))

    def check_keys(self, m: YMap, allowed: tuple[str, ...], where: str) -> None:
        for key in m.key_nodes():
            if key.text in allowed:
                continue
            close = difflib.get_close_matches(key.text, allowed, n=1, cutoff=0.6)
            hint = f": did you mean {close[0]!r}?" if close else f" (allowed: {', '.join(allowed)})"
            self.err(key, f"unknown key {key.text!r} in {where}{hint}")

    # -- top level -----------------------------------------------------------------------

    def policy(self, root: YNode | None) -> Policy | None:
        if root is None:
            self.errors.append(
                ValidationError(self.file, 1, 1, "empty policy: expected a mapping with 'groups:'")
            )
            return None
        if not isinstance(root, YMap):
            self.err(root, f"a policy is a mapping with 'groups:', not {kind(root)}")
            return None
        self.check_keys(root, TOP_KEYS, "the policy")
        version = root.get("version")
        if version is not None and not (
            isinstance(version, YScalar) and version.value == 1 and version.text == "1"
        ):
            self.err(version, "version must be 1 (the only policy format so far)")
        exclude = self.rules(root.get("exclude"), "exclude")
        groups_node = root.get("groups")
        if groups_node is None:
            self.err(root, "missing 'groups:' (a list of groups)")
            groups: tuple[Group, ...] = ()
        else:
            groups = self.groups(groups_node, "")
        return Policy(groups=groups, exclude=exclude, source=self.file)

    # -- groups --------------------------------------------------------------------------

    def groups(self, node: YNode, parent_path: str) -> tuple[Group, ...]:
        if isinstance(node, YScalar) and node.value is None:
            return ()
        if not isinstance(node, YSeq):
            self.err(node, f"groups must be a list of groups (- name: ...), not {kind(node)}")
            return ()
        out: list[Group] = []
        seen: dict[str, YNode] = {}
        for item in node.items:
            g = self.group(item, parent_path)
            if g is None:
                continue
            if g.name in seen:
                first = seen[g.name]
                self.err(
                    item,
                    f"duplicate group name {g.name!r} (first at line {first.line}): sibling "
                    "groups would share one cgroup",
                )
                continue
            seen[g.name] = item
            out.append(g)
        return tuple(out)

    def group(self, node: YNode, parent_path: str) -> Group | None:
        if not isinstance(node, YMap):
            self.err(node, f"a group is a mapping with 'name:', not {kind(node)}")
            return None
        self.check_keys(node, GROUP_KEYS, "a group")
        name_node = node.get("name")
        name = self.name(name_node, node)
        path = f"{parent_path}/{name}" if parent_path else (name or "")
        limits = self.limits(node.get("limits"))
        match = self.rules(node.get("match"), "match")
        exclude = self.rules(node.get("exclude"), "exclude")
        sticky = False
        sticky_node = node.get("sticky")
        if sticky_node is not None:
            if isinstance(sticky_node, YScalar) and isinstance(sticky_node.value, bool):
                sticky = sticky_node.value
            else:
                self.err(sticky_node, f"sticky must be true or false, not {kind(sticky_node)}")
        children_node = node.get("children")
        children = self.groups(children_node, path) if children_node is not None else ()
        self.memory_min_sum(node, limits, children)
        if name is None:
            return None
        return Group(
            name=name,
            path=path,
            limits=limits,
            match=match,
            exclude=exclude,
            sticky=sticky,
            children=children,
            line=node.line,
        )

    def name(self, node: YNode | None, group: YMap) -> str | None:
        if node is None:
            self.err(group, "a group needs a 'name:'")
            return None
        if not isinstance(node, YScalar) or not isinstance(node.value, str | int):
            self.err(node, f"a group name must be a word, not {kind(node)}")
            return None
        name = node.text
        try:
            validate_name(name)
        except UnsafePath as e:
            self.err(node, f"bad group name: {e}")
            return None
        if name == IMPLICIT_LEAF:
            self.err(node, f"the group name {IMPLICIT_LEAF!r} is reserved for implicit leaves")
            return None
        return name

    def memory_min_sum(self, node: YMap, limits: Limits, children: tuple[Group, ...]) -> None:
        own = limits.as_dict().get("memory.min")
        if own is None or own == "max" or not children:
            return
        total = sum(
            int(c.limits.as_dict().get("memory.min", "0"))
            for c in children
            if c.limits.as_dict().get("memory.min", "0") != "max"
        )
        if any(c.limits.as_dict().get("memory.min") == "max" for c in children) or total > int(own):
            where = node.get("limits")
            pos = where.get("memory.min") if isinstance(where, YMap) else None
            shown = "max" if total == 0 else f"{total} bytes"
            self.err(
                pos or node,
                f"children's memory.min add up to {shown}, more than this group's memory.min "
                f"of {own} bytes: the kernel would not protect them all",
            )

    # -- limits --------------------------------------------------------------------------

    def limits(self, node: YNode | None) -> Limits:
        if node is None or (isinstance(node, YScalar) and node.value is None):
            return Limits()
        if not isinstance(node, YMap):
            self.err(
                node, f"limits must be a mapping such as {{memory.max: 512M}}, not {kind(node)}"
            )
            return Limits()
        self.check_keys(node, tuple(LIMIT_CONTROLLERS), "limits")
        values: list[tuple[str, str]] = []
        for key, val in node.items:
            parse = _LIMIT_PARSERS.get(key.text)
            if parse is None:
                continue
            if not isinstance(val, YScalar) or val.value is None:
                self.err(val, f"{key.text} must be a single value, not {kind(val)}")
                continue
            try:
                values.append((key.text, parse(val)))
            except ValueError as e:
                self.err(val, f"{key.text}: {e}")
        high = dict(values)
        self.order_check(node, high)
        return Limits(tuple(sorted(values)))

    def order_check(self, node: YMap, v: dict[str, str]) -> None:
        def num(key: str) -> float | None:
            s = v.get(key)
            if s is None:
                return None
            return math.inf if s == "max" else int(s)

        lo, hi, mx = num("memory.low"), num("memory.high"), num("memory.max")
        mn = num("memory.min")
        for small, big, a, b in (
            (mn, lo, "memory.min", "memory.low"),
            (lo, hi, "memory.low", "memory.high"),
            (hi, mx, "memory.high", "memory.max"),
            (mn, mx, "memory.min", "memory.max"),
        ):
            if small is not None and big is not None and small > big:
                pos = node.get(a)
                self.err(pos or node, f"{a} is more than {b}: protection above the limit")

    # -- rules ---------------------------------------------------------------------------

    def rules(self, node: YNode | None, where: str) -> tuple[MatchRule, ...]:
        if node is None or (isinstance(node, YScalar) and node.value is None):
            return ()
        if isinstance(node, YMap):  # one rule written without the list dash
            node = YSeq((node,), node.line, node.col)
        if not isinstance(node, YSeq):
            self.err(node, f"{where} must be a list of rules (- comm: make), not {kind(node)}")
            return ()
        out = []
        for item in node.items:
            r = self.rule(item, where)
            if r is not None:
                out.append(r)
        return tuple(out)

    def rule(self, node: YNode, where: str) -> MatchRule | None:
        if not isinstance(node, YMap):
            self.err(node, f"a {where} rule is a mapping such as {{comm: make}}, not {kind(node)}")
            return None
        self.check_keys(node, RULE_KEYS, f"a {where} rule")
        if not any(k.text in RULE_KEYS for k in node.key_nodes()):
            self.err(node, f"empty {where} rule: give at least one of {', '.join(RULE_KEYS)}")
            return None
        fields: dict[str, object] = {"line": node.line}
        ok = True
        for key, val in node.items:
            if key.text not in RULE_KEYS:
                continue
            scalars = self.scalars(val, key.text)
            if scalars is None:
                ok = False
                continue
            try:
                fields[key.text] = self.rule_values(key.text, scalars)
            except _Bad as e:
                self.err(e.node, e.message)
                ok = False
        if not ok:
            return None
        return MatchRule(**fields)  # type: ignore[arg-type]

    def scalars(self, node: YNode, key: str) -> list[YScalar] | None:
        items = node.items if isinstance(node, YSeq) else (node,)
        out = []
        for it in items:
            if not isinstance(it, YScalar) or it.value is None:
                self.err(it, f"{key} takes a value or a list of values, not {kind(it)}")
                return None
            out.append(it)
        if not out:
            self.err(node, f"{key}: empty list matches nothing")
            return None
        return out

    def rule_values(self, key: str, scalars: list[YScalar]) -> tuple[object, ...]:
        if key in ("uid", "gid"):
            ids = []
            for s in scalars:
                if isinstance(s.value, bool) or not isinstance(s.value, int) or s.value < 0:
                    raise _Bad(s, f"{key} must be a number (0 or more), not {s.text!r}")
                ids.append(s.value)
            return tuple(ids)
        if key == "cmdline":
            pats = []
            for s in scalars:
                try:
                    pats.append(re.compile(s.text))
                except (re.error, OverflowError, RecursionError) as e:
                    raise _Bad(s, f"invalid regular expression {s.text!r}: {e}") from None
            return tuple(pats)
        texts = [s.text for s in scalars]
        for s, t in zip(scalars, texts, strict=True):
            if t == "" or "\0" in t:
                raise _Bad(s, f"{key}: empty value matches nothing")
            if key == "comm" and len(t.encode()) > COMM_MAX and not _GLOB_CHARS & set(t):
                raise _Bad(
                    s,
                    f"comm {t!r} is longer than {COMM_MAX} characters and can never match (the "
                    "kernel truncates comm): use exe or cmdline, or a glob",
                )
            if key in ("comm", "exe", "parent", "cgroup"):
                try:
                    re.compile(fnmatch.translate(t))
                except re.error as e:
                    raise _Bad(s, f"invalid glob {t!r}: {e}") from None
        return tuple(texts)


class _Bad(Exception):
    def __init__(self, node: YScalar, message: str) -> None:
        self.node = node
        self.message = message


# -- limit value parsers: YAML scalar -> the string the kernel file takes ----------------------


def _no_percent(s: YScalar, what: str) -> None:
    if isinstance(s.value, str) and s.text.strip().endswith("%"):
        raise ValueError(
            f"{s.text!r}: a percentage is ambiguous for {what} (of the host? of the parent?); "
            'write a size such as "512M"'
        )


def _bytes(s: YScalar) -> str:
    _no_percent(s, "memory")
    value = (
        s.value if isinstance(s.value, int | float) and not isinstance(s.value, bool) else s.text
    )
    n = parse_bytes(value)  # type: ignore[arg-type]
    if isinstance(n, float) and math.isinf(n):
        return "max"
    return str(int(n) // PAGE_SIZE * PAGE_SIZE)


def _weight(s: YScalar) -> str:
    v = s.value
    if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 10000:
        raise ValueError(f"{s.text!r} must be a whole number from 1 to 10000 (default 100)")
    return str(v)


def _io_weight(s: YScalar) -> str:
    return f"default {_weight(s)}"


def _pids(s: YScalar) -> str:
    if isinstance(s.value, str) and s.text.strip().lower() == "max":
        return "max"
    v = s.value
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise ValueError(f"{s.text!r} must be a whole number of tasks (0 or more) or max")
    return str(v)


def _cpu_max(s: YScalar) -> str:
    m = _QUOTA_PERIOD.match(s.text) if isinstance(s.value, str) else None
    if m is not None:
        quota, period = m.group(1), int(m.group(2))
        if not MIN_PERIOD_USEC <= period <= MAX_PERIOD_USEC:
            raise ValueError(
                f"period {period} must be {MIN_PERIOD_USEC} to {MAX_PERIOD_USEC} microseconds"
            )
        if quota != "max" and int(quota) < MIN_QUOTA_USEC:
            raise ValueError(f"quota {quota} is below the kernel's minimum of {MIN_QUOTA_USEC} us")
        return f"{quota} {period}"
    value = (
        s.value if isinstance(s.value, int | float) and not isinstance(s.value, bool) else s.text
    )
    cores = parse_cpus(value)
    return cpu_max_value(None if math.isinf(cores) else cores, DEFAULT_PERIOD_USEC)


_LIMIT_PARSERS: dict[str, Callable[[YScalar], str]] = {
    "cpu.weight": _weight,
    "cpu.max": _cpu_max,
    "memory.min": _bytes,
    "memory.low": _bytes,
    "memory.high": _bytes,
    "memory.max": _bytes,
    "memory.swap.max": _bytes,
    "pids.max": _pids,
    "io.weight": _io_weight,
}


# -- entry points ------------------------------------------------------------------------------


def check_text(data: bytes | str, filename: str) -> tuple[Policy | None, list[ValidationError]]:
    """(policy, []) or (None, every error). Never raises for any input."""
    try:
        tree = load_with_positions(data, filename)
    except ValidationError as e:
        return None, [e]
    return _check_tree(tree, filename)


def check_file(path: str) -> tuple[Policy | None, list[ValidationError]]:
    try:
        tree = load_file(path)
    except ValidationError as e:
        return None, [e]
    return _check_tree(tree, path)


def _check_tree(tree: YNode | None, filename: str) -> tuple[Policy | None, list[ValidationError]]:
    c = _Checker(filename)
    try:
        policy = c.policy(tree)
    except RecursionError:
        return None, [ValidationError(filename, 1, 1, "policy nested too deeply")]
    if c.errors:
        c.errors.sort(key=lambda e: (e.line, e.col))
        return None, c.errors
    return policy, []


def load_policy(path: str) -> Policy:
    """The policy in ``path``; PolicyInvalid listing every error otherwise."""
    policy, errors = check_file(path)
    if policy is None:
        raise PolicyInvalid(errors)
    return policy


__all__ = ["DEFAULT_GROUP", "PolicyInvalid", "check_file", "check_text", "load_policy"]
