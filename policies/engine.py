"""The policy engine: the last good policy, kept in force by events and periodic reconciles.

- New processes: the proc connector's exec/uid/gid events place one process at once, in a
  dedicated thread (connector.ConnectorThread: blocking recv, then a handful of small /proc
  reads, the match and one write, without passing through the asyncio loop), at nice
  ``event_nice`` when the daemon may raise its priority (root). A fork needs nothing: the child
  is already in its parent's cgroup, which is what "children follow their parent" asks.
- A full reconcile (snapshot /proc, read the tree, plan, apply) runs at start, after every
  successful reload, and every ``reconcile_s`` seconds as the safety net; where the connector is
  unavailable (no CAP_NET_ADMIN, no CONFIG_PROC_EVENTS) the log says so and reconciles are all
  there is. Reconciles run in a worker thread so events keep flowing meanwhile.
- Reload: the daemon calls ``reload()`` on SIGHUP, and ``run()`` polls the file's mtime. An
  invalid file is rejected with its errors and nothing else happens: the last good policy stays
  in force and nothing moves.
- The engine's root is dedicated to it (the daemon passes ``<agent root>/policies``): every
  cgroup beneath it belongs to the policy, and one that the policy no longer has is emptied
  into ``<root>/default`` and removed.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Literal, TypeAlias, get_args

from cgroupfs import writer
from cgroupfs.errors import CgroupError
from cgroupfs.paths import CgroupRoot
from policies import procs
from policies.apply import apply, read_current
from policies.connector import (
    PROC_EVENT_FORK,
    ConnectorThread,
    ConnectorUnavailable,
    ProcConnector,
)
from policies.match import Matcher
from policies.plan import Current, plan
from policies.schema import Policy
from policies.validate import check_file

log = logging.getLogger(__name__)

# The engine's counters, by name: a write with a misspelt name is a type error.
StatName: TypeAlias = Literal[
    "policy_loaded",
    "reloads",
    "reload_failures",
    "reconciles",
    "reconcile_errors",
    "reconcile_seconds_last",
    "connector_active",
    "events",
    "event_moves",
    "moves",
    "pids_gone",
    "groups_created",
    "groups_removed",
    "limits_set",
    "limits_skipped",
    "errors",
]


@dataclass(frozen=True, slots=True)
class EngineStats:
    """``PolicyEngine.stats``: the counters at one moment, for metrics and tests.

    All count since start, except ``policy_loaded`` and ``connector_active`` (0/1 now) and
    ``reconcile_seconds_last``. ``moves`` (reconciles) and ``event_moves`` (the event path) are
    disjoint: every move is ``moves + event_moves``.
    """

    policy_loaded: float = 0  # a policy is in force
    reloads: float = 0  # policy files accepted
    reload_failures: float = 0  # policy files rejected (the last good one stayed)
    reconciles: float = 0
    reconcile_errors: float = 0
    reconcile_seconds_last: float = 0
    connector_active: float = 0  # the proc connector's event thread runs
    events: float = 0  # proc-connector events seen
    event_moves: float = 0
    moves: float = 0
    pids_gone: float = 0  # exited or reused before the move
    groups_created: float = 0
    groups_removed: float = 0
    limits_set: float = 0
    limits_skipped: float = 0  # the controller is absent
    errors: float = 0


@dataclass(frozen=True, slots=True)
class _Rules:
    """What the event thread needs of the policy in force, swapped in one assignment."""

    policy: Policy
    matcher: Matcher
    sticky_leaves: frozenset[str]


class _ResolvedRoot(CgroupRoot):
    """The engine's root for the event path: remembers each cgroup path it resolved.

    CgroupRoot.resolve() runs os.path.realpath on every call (tens of µs of Python per move,
    milliseconds under emulation) to refuse a symlink out of the root. cgroup2 has no symlinks,
    so the answer for a path beneath the root cannot change while it exists; the memory is
    still dropped on every reconcile and reload.
    """

    __slots__ = ("_resolved",)

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self._resolved: dict[tuple[str, bool], str] = {}

    def resolve(self, rel: str, *, strict: bool = True) -> str:
        key = (rel, strict)
        path = self._resolved.get(key)
        if path is None:
            path = super().resolve(rel, strict=strict)
            self._resolved[key] = path
        return path

    def forget(self) -> None:
        self._resolved = {}


class PolicyEngine:
    """Keeps the policy in ``policy_path`` in force beneath ``root`` (a cgroup dedicated to it).

    ``self_pids``: PIDs never moved (the agent's own PID is always added). ``protected``: cgroup
    paths as /proc/PID/cgroup shows them (e.g. "/pystats/workloads") whose processes are never
    moved. ``reconcile_s``: the full-pass period; ``watch_s``: how often the file's mtime is
    checked; ``use_connector``: False to rely on reconciles only (tests, benchmarks);
    ``event_nice``: the nice value of the event thread, applied when permitted (None: leave it);
    ``on_placed(pid, comm, group, reason)``: told of every move, from the event thread or the
    reconcile's worker thread (so it must be thread-safe).
    """

    def __init__(
        self,
        root: CgroupRoot,
        policy_path: str,
        *,
        reconcile_s: float = 30.0,
        self_pids: Collection[int] = (),
        protected: Collection[str] = (),
        watch_s: float = 2.0,
        use_connector: bool = True,
        event_nice: int | None = -10,
        on_placed: Callable[[int, str, str, str], None] | None = None,
    ) -> None:
        self.root = root
        self.policy_path = policy_path
        self.reconcile_s = reconcile_s
        self.watch_s = watch_s
        self.use_connector = use_connector
        self.event_nice = event_nice
        self.on_placed = on_placed
        self.self_pids = frozenset(self_pids) | {os.getpid()}
        self.protected = tuple(protected)
        self.policy: Policy | None = None
        self.matcher: Matcher | None = None
        self._rules: _Rules | None = None  # policy + matcher for the event thread, one read
        self._event_root = _ResolvedRoot(root.path)
        # counters written by both the event thread and reconciles (pids_gone, errors)
        self._stats_lock = threading.Lock()
        self._counts: dict[StatName, float] = dict.fromkeys(get_args(StatName), 0)
        self._mtime: tuple[int, int, int] | None = None
        self._root_cgroup: str | None = None
        self._current: Current | None = None
        self._names = procs._Names()
        self._wake: asyncio.Event | None = None
        # exec (kernel timestamp, CLOCK_MONOTONIC) -> moved, for each event placement
        self.placement_latency_ns: collections.deque[int] = collections.deque(maxlen=10000)

    # -- policy ------------------------------------------------------------------------------

    def reload(self) -> list[str]:
        """Load the policy file again. Returns its errors (the new policy is then rejected and
        the last good one stays in force, nothing moves), or [] when it is now in force."""
        mtime = self._file_mtime()
        policy, errors = check_file(self.policy_path)
        self._mtime = mtime
        if policy is None:
            self._counts["reload_failures"] += 1
            kept = "the previous policy stays in force" if self.policy else "no policy in force"
            log.error("policy %s rejected (%s):", self.policy_path, kept)
            for e in errors:
                log.error("  %s", e)
            return [str(e) for e in errors]
        self.policy = policy
        self.matcher = Matcher(policy, self.self_pids, self.protected)
        sticky = frozenset(g.leaf for g in policy.all_groups() if g.sticky)
        self._rules = _Rules(policy, self.matcher, sticky)
        self._event_root.forget()
        self._counts["reloads"] += 1
        self._counts["policy_loaded"] = 1
        log.info("policy %s loaded: %d groups", self.policy_path, len(policy.all_groups()))
        if self._wake is not None:
            self._wake.set()  # reconcile now
        return []

    def _file_mtime(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.policy_path)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    # -- reconcile -----------------------------------------------------------------------------

    def root_cgroup(self) -> str | None:
        if self._root_cgroup is None:
            self._root_cgroup = procs.hierarchy_path(self.root.path)
        return self._root_cgroup

    def reconcile(self) -> list[str]:
        """One full pass (blocking): returns the errors of actions that failed."""
        policy, matcher, root_cg = self.policy, self.matcher, self.root_cgroup()
        if policy is None or matcher is None:
            return []
        if root_cg is None:
            self._counts["reconcile_errors"] += 1
            msg = f"{self.root.path} is not on a cgroup2 filesystem: nothing placed"
            log.error("%s", msg)
            return [msg]
        t0 = time.monotonic()
        try:
            if not os.path.isdir(self.root.path):
                raise CgroupError(f"the policy root {self.root.path} does not exist")
            current = read_current(self.root, root_cg)
            table = procs.snapshot(fields=matcher.needs)
            actions = plan(policy, table, current, self.self_pids, matcher)
            result = apply(self.root, actions)
            self._current = read_current(self.root, root_cg) if actions else current
            self._event_root.forget()
        except (CgroupError, OSError) as e:
            self._counts["reconcile_errors"] += 1
            log.error("reconcile failed: %s", e)
            return [str(e)]
        with self._stats_lock:
            for k, v in result.counts.items():
                if k in self._counts:  # apply's outcome names are a subset of StatName
                    self._counts[k] += v
        if self.on_placed is not None:
            for m in result.moved:
                self.on_placed(m.pid, m.comm, m.rel, m.reason)
        self._counts["reconciles"] += 1
        self._counts["reconcile_seconds_last"] = time.monotonic() - t0
        return result.errors

    # -- events --------------------------------------------------------------------------------

    def on_event(self, what: int, pid: int, timestamp_ns: int) -> None:
        """One proc-connector event (the event thread's callback; see connector.scan)."""
        self._counts["events"] += 1  # written by this thread only
        if what != PROC_EVENT_FORK and self.place_one(pid) and timestamp_ns:
            self.placement_latency_ns.append(time.monotonic_ns() - timestamp_ns)

    @property
    def stats(self) -> EngineStats:
        """The counters now, as a frozen snapshot."""
        return EngineStats(**self._counts)

    def _count(self, key: StatName) -> None:
        with self._stats_lock:
            self._counts[key] += 1

    def place_one(self, pid: int) -> bool:
        """Place one process by the rules now (event path). True if it was moved."""
        rules, current = self._rules, self._current
        if rules is None or current is None or pid in self.self_pids:
            return False
        matcher = rules.matcher
        p = procs.read_proc(pid, self._names, fields=matcher.needs)
        if p is None:
            return False
        parent = None
        if matcher.uses_parent:
            parent = procs.read_proc(p.ppid, self._names, fields=matcher.needs)
        rel = current.rel_of(p.cgroup)
        if rel is not None and rel in rules.sticky_leaves:
            return False
        d = matcher.decide(p, parent)
        if d.group is None or d.group.leaf == rel:
            return False
        try:
            moved = writer.move_pid(self._event_root, d.group.leaf, pid, retries=2)
        except CgroupError as e:
            self._count("errors")
            log.warning("moving %d (%s) to %s: %s", pid, p.comm, d.group.leaf, e)
            return False
        if moved:
            self._counts["event_moves"] += 1  # written by this thread only
            log.debug("placed %d (%s) in %s: %s", pid, p.comm, d.group.leaf, d.reason)
            if self.on_placed is not None:
                self.on_placed(pid, p.comm, d.group.leaf, d.reason)
        else:
            self._count("pids_gone")
        return moved

    # -- main loop -----------------------------------------------------------------------------

    async def run(self) -> None:
        self._wake = asyncio.Event()
        self.reload()
        events: ConnectorThread | None = None
        if self.use_connector:
            try:
                conn = ProcConnector.open()
                events = ConnectorThread(
                    conn, self.on_event, nice=self.event_nice, on_error=self._connector_failed
                )
                events.start()
                self._counts["connector_active"] = 1
                log.info(
                    "proc connector: new processes are placed on exec (event thread%s)",
                    f" at nice {self.event_nice}" if events.niced else "",
                )
            except ConnectorUnavailable as e:
                log.warning(
                    "%s; falling back to a full reconcile every %.0f s", e, self.reconcile_s
                )
        try:
            next_reconcile = 0.0
            while True:
                now = time.monotonic()
                if self._wake.is_set() or now >= next_reconcile:
                    self._wake.clear()
                    await asyncio.to_thread(self.reconcile)
                    next_reconcile = time.monotonic() + self.reconcile_s
                timeout = max(0.0, min(self.watch_s, next_reconcile - time.monotonic()))
                with contextlib.suppress(TimeoutError):  # asyncio.timeout, not wait_for: on 3.11
                    async with asyncio.timeout(timeout):  # wait_for can swallow a cancellation
                        await self._wake.wait()
                if self._file_mtime() != self._mtime:
                    self.reload()  # sets _wake on success; errors are logged
        finally:
            self._counts["connector_active"] = 0
            if events is not None:
                events.stop()

    def _connector_failed(self, _e: OSError) -> None:
        self._counts["connector_active"] = 0  # the thread logged it; reconciles go on
