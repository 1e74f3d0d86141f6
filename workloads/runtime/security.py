"""A workload's security profile: capabilities, no_new_privs, seccomp (docker's defaults).

``SecurityOpts`` is the user's choice, stored in the spec. ``prepare`` turns it into a ``Plan``
(the capability mask and the seccomp program, compiled once and cached) while this process still
sees the host's files; ``apply_security`` applies the plan in the workload's init as the last
step before execve. The shim prepares before it forks, so the init inherits the plan in memory.

The defaults and the ways out:
- capabilities: docker's 14 in all five sets; ``cap_add``/``cap_drop`` (docker's rules, ALL
  accepted); ``privileged`` keeps every capability this process has, and turns seccomp off
  unless a profile FILE is named (the other parts read ``privileged`` too: no masked paths,
  every device), the documented root-equivalent exception;
- no_new_privs: set; ``no_new_privileges=False`` lifts it;
- seccomp: containers-common's profile (crun's and podman's default), its capability-conditioned
  rules following the workload's set; ``"unconfined"`` or an absolute path to a profile.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Any, Final

from workloads.runtime import caps, seccomp_profile
from workloads.runtime.errors import SpecError

DEFAULT: Final = "default"
UNCONFINED: Final = "unconfined"
CACHE_DIR: Final = "seccomp-cache"
_FIELDS: Final = frozenset({"cap_add", "cap_drop", "privileged", "no_new_privileges", "seccomp"})


@dataclass(frozen=True)
class SecurityOpts:
    cap_add: tuple[str, ...] = ()  # canonical: CAP_X or ALL
    cap_drop: tuple[str, ...] = ()
    privileged: bool = False
    no_new_privileges: bool = True
    seccomp: str = DEFAULT  # DEFAULT | UNCONFINED | an absolute path to a profile

    def to_json(self) -> dict[str, Any]:
        return {
            "cap_add": list(self.cap_add),
            "cap_drop": list(self.cap_drop),
            "privileged": self.privileged,
            "no_new_privileges": self.no_new_privileges,
            "seccomp": self.seccomp,
        }

    @classmethod
    def from_json(cls, d: object) -> SecurityOpts:
        """From a record or a request body; None (an older record) is the default profile."""
        if d is None:
            return cls()
        if not isinstance(d, dict):
            raise SpecError("security must be an object")
        unknown = set(d) - _FIELDS
        if unknown:
            raise SpecError(f"unknown security field(s): {', '.join(sorted(unknown))}")
        flags = {}
        for key, default in (("privileged", False), ("no_new_privileges", True)):
            v = d.get(key, default)
            if not isinstance(v, bool):
                raise SpecError(f"security.{key} must be true or false")
            flags[key] = v
        return cls(
            cap_add=_cap_list(d.get("cap_add"), "--cap-add"),
            cap_drop=_cap_list(d.get("cap_drop"), "--cap-drop"),
            privileged=flags["privileged"],
            no_new_privileges=flags["no_new_privileges"],
            seccomp=_seccomp_choice(d.get("seccomp", DEFAULT)),
        )

    def profile_path(self) -> str | None:
        """The seccomp profile to load, None for none."""
        if self.seccomp == UNCONFINED or (self.privileged and self.seccomp == DEFAULT):
            return None
        return seccomp_profile.DEFAULT_PROFILE if self.seccomp == DEFAULT else self.seccomp


def _cap_list(v: object, flag: str) -> tuple[str, ...]:
    if v is None:
        return ()
    if not isinstance(v, list | tuple) or not all(isinstance(s, str) for s in v):
        raise SpecError(f"{flag} must be a list of capability names")
    out = []
    for s in v:
        try:
            name = caps.canonical(s)
        except ValueError as e:
            raise SpecError(f"invalid {flag}: {e}") from None
        if name not in out:
            out.append(name)
    return tuple(out)


def _seccomp_choice(v: object) -> str:
    if not isinstance(v, str) or not v:
        raise SpecError("security.seccomp must be 'default', 'unconfined' or a profile path")
    if v in (DEFAULT, UNCONFINED):
        return v
    if not v.startswith("/"):
        raise SpecError(f"--security-opt seccomp={v}: the profile path must be absolute")
    return v


def parse_security_opts(items: list[str]) -> dict[str, Any]:
    """``--security-opt`` values (docker's spelling) as the fields of ``security``."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep and ":" in item:  # docker's older seccomp:unconfined
            key, sep, value = item.partition(":")
        key = key.strip()
        if key == "no-new-privileges":
            v = value.strip().lower() if sep else "true"
            if v not in ("true", "false"):
                raise SpecError(f"invalid --security-opt {item!r}: expected true or false")
            out["no_new_privileges"] = v == "true"
        elif key == "seccomp" and value:
            out["seccomp"] = value if value in (UNCONFINED, DEFAULT) else os.path.abspath(value)
        else:
            raise SpecError(
                f"invalid --security-opt {item!r}: supported are no-new-privileges[=true|false]"
                " and seccomp=unconfined|FILE"
            )
    return out


def check(opts: SecurityOpts) -> None:
    """The checks the agent makes at create: a named profile must be a readable, valid one."""
    path = opts.profile_path()
    if path is not None and opts.seccomp != DEFAULT:
        try:
            seccomp_profile.read(path)
        except seccomp_profile.ProfileError as e:
            raise SpecError(f"--security-opt: {e}") from None


@dataclass(frozen=True)
class Plan:
    """What the init applies: caps (one mask for all five sets), no_new_privs, the program."""

    caps: int
    no_new_privs: bool
    bpf: bytes | None


_prepared: dict[tuple[SecurityOpts, int], Plan] = {}


def prepare(opts: SecurityOpts, cache_dir: str | None = None) -> Plan:
    """The plan for ``opts`` in this process (memoized: the shim prepares, its children reuse
    it). Raises ProfileError for a profile that cannot be read or compiled."""
    bounding = caps.bounding_mask()
    key = (opts, bounding)
    plan = _prepared.get(key)
    if plan is None:
        plan = _prepared[key] = _plan(opts, bounding, cache_dir)
    return plan


def _plan(opts: SecurityOpts, bounding: int, cache_dir: str | None) -> Plan:
    mask = caps.resolve(opts.cap_add, opts.cap_drop, opts.privileged, bounding)
    path = opts.profile_path()
    bpf = None
    if path is not None:
        bpf = seccomp_profile.cached_bpf(path, frozenset(caps.names_of(mask)), mask, cache_dir)
    return Plan(mask, opts.no_new_privileges, bpf)


def cache_dir(state_dir: str) -> str:
    return os.path.join(state_dir, CACHE_DIR)


def _default_plan(state_dir: str) -> Plan:
    """The plan of a workload with no security options, its program in the state dir's cache."""
    return _plan(SecurityOpts(), caps.bounding_mask(), cache_dir(state_dir))


def warm(state_dir: str) -> None:
    """Read the default profile's program into this process (the fork server, between spawns),
    so that the shims it forks inherit it; a failure is the shim's to report."""
    with contextlib.suppress(Exception):
        _default_plan(state_dir)


def startup_check(state_dir: str) -> None:
    """At the agent's start: the default profile must be there (a workload is never silently
    unconfined), and is compiled for the default set now, so launches only read the cache."""
    try:
        _default_plan(state_dir)
    except seccomp_profile.ProfileError as e:
        raise ProfileMissing(
            f"{e}; workloads would run without their default seccomp profile (install Debian's "
            f"golang-github-containers-common for {seccomp_profile.DEFAULT_PROFILE})"
        ) from None


class ProfileMissing(OSError):
    """The default seccomp profile is missing or unusable: the agent refuses to start."""


_PR_SET_NO_NEW_PRIVS: Final = 38


def apply_security(plan: Plan) -> None:
    """In the workload's init, right before execve. Without no_new_privs, installing a filter
    needs CAP_SYS_ADMIN, so it goes first, while the init still holds it; with no_new_privs it
    goes last, after the caps are dropped, so nothing of ours but execve runs filtered."""
    if plan.bpf is not None and not plan.no_new_privs:
        seccomp_profile.load(plan.bpf)
    caps.apply(plan.caps)
    if plan.no_new_privs:
        caps.prctl(_PR_SET_NO_NEW_PRIVS, 1, "prctl(PR_SET_NO_NEW_PRIVS)")
        if plan.bpf is not None:
            seccomp_profile.load(plan.bpf)
