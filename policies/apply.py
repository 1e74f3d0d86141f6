"""Apply a plan: the only module of policies/ with side effects, all through cgroupfs.

Idempotent (the plan only lists what differs, and re-creating or re-moving is harmless) and
race-safe: a process that exited, or whose PID was reused (its start time changed), is skipped
and counted, never an error. A limit whose controller the cgroup does not have (a hybrid host's
v2 tree has none) is skipped with the reason logged once per cgroup. Any other failure is logged
with cgroupfs' message and hint, counted, and the remaining actions still run.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from cgroupfs import reader, writer
from cgroupfs.errors import CgroupError, CgroupGone
from cgroupfs.parsers import parse_controllers
from cgroupfs.paths import CgroupRoot
from policies import procs
from policies.plan import Action, CreateGroup, Current, GroupState, MovePid, RemoveGroup, SetLimit
from policies.schema import LIMIT_CONTROLLERS

log = logging.getLogger(__name__)


@dataclass
class ApplyResult:
    counts: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    moved: list[MovePid] = field(default_factory=list)  # the moves that happened


def _controllers(root: CgroupRoot, rel: str) -> frozenset[str]:
    try:
        return parse_controllers(reader.read_file(root, rel, "cgroup.controllers"), "")
    except (CgroupError, OSError):
        return frozenset()


def read_current(root: CgroupRoot, root_cgroup: str) -> Current:
    """The tree beneath ``root`` as plan() needs it: each cgroup's controllers and limit values."""
    groups: dict[str, GroupState] = {}
    for rel, _inode in reader.walk(root):
        if rel == "":
            continue
        values: dict[str, str] = {}
        try:
            for file in LIMIT_CONTROLLERS:
                try:
                    values[file] = reader.read_file(root, rel, file).decode().strip()
                except FileNotFoundError:
                    continue
        except CgroupGone:
            continue
        except (CgroupError, OSError, UnicodeDecodeError):
            pass
        groups[rel] = GroupState(_controllers(root, rel), values)
    return Current(root_cgroup, _controllers(root, ""), groups)


def apply(
    root: CgroupRoot,
    actions: Iterable[Action],
    *,
    start_time: Callable[[int], int | None] = procs.start_time,
) -> ApplyResult:
    """Carry out ``actions`` in order; never raises for a cgroup or process problem."""
    res = ApplyResult()
    have: dict[str, frozenset[str]] = {}
    warned: set[tuple[str, str]] = set()
    for a in actions:
        try:
            if isinstance(a, CreateGroup):
                created = writer.create(root, a.rel, a.controllers)
                res.counts["groups_created"] += len(created)
                have.pop(a.rel, None)
            elif isinstance(a, SetLimit):
                if a.rel not in have:
                    have[a.rel] = _controllers(root, a.rel)
                ctrl = LIMIT_CONTROLLERS[a.file]
                if ctrl not in have[a.rel]:
                    res.counts["limits_skipped"] += 1
                    if (a.rel, ctrl) not in warned:
                        warned.add((a.rel, ctrl))
                        log.warning(
                            "%s: controller %s not available in this cgroup (a hybrid host, or "
                            "not enabled above it): %s limits skipped",
                            a.rel,
                            ctrl,
                            ctrl,
                        )
                    continue
                writer.write(root, a.rel, a.file, a.value)
                res.counts["limits_set"] += 1
            elif isinstance(a, MovePid):
                if a.start and start_time(a.pid) != a.start:
                    res.counts["pids_gone"] += 1
                    continue
                if writer.move_pid(root, a.rel, a.pid):
                    res.counts["moves"] += 1
                    res.moved.append(a)
                    log.info("%s", a)
                else:
                    res.counts["pids_gone"] += 1
            elif isinstance(a, RemoveGroup):
                writer.remove(root, a.rel, timeout_s=1.0)
                res.counts["groups_removed"] += 1
                log.info("removed cgroup %s (no longer in the policy)", a.rel)
        except CgroupGone as e:
            if isinstance(a, MovePid):
                res.counts["pids_gone"] += 1
            else:
                res.counts["errors"] += 1
                res.errors.append(f"{a}: {e}")
                log.warning("%s: %s", a, e)
        except (CgroupError, OSError, ValueError) as e:
            res.counts["errors"] += 1
            res.errors.append(f"{a}: {e}")
            log.warning("%s: %s", a, e)
    return res
