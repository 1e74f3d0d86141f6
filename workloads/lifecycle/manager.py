"""The workload manager: lifecycle, records, restart policies, re-adoption.

State directory layout (one folder per workload):

    <state>/workloads/<name>/config.json    spec, cgroup root, log settings  (manager, atomic)
    <state>/workloads/<name>/manager.json   restarts, stopped-by-user flag   (manager, atomic)
    <state>/workloads/<name>/status.json    the current run: pid, exit, OOM  (shim, atomic)
    <state>/workloads/<name>/stdio.log*     the workload's output, rotated   (shim)
    <state>/corrupt/                        records that could not be read, set aside

The manager never waits on a workload process: the shim does, and records the exit. The manager
watches status.json (one stat per running workload per tick), so an exit is seen the same way
whether it happened while the agent was up or down. Both records are typed
(workloads.supervisor.record: ShimConfig, RunStatus).

When the manager itself must end a run (its shim died without recording one), it first takes the
workload's cgroup down (cgroup.kill, then waits until it is empty): a run is never marked exited,
or restarted, while processes of it are left.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cgroupfs.errors import CgroupError
from cgroupfs.paths import CgroupRoot
from workloads.images import run as image_run
from workloads.images.errors import ImageError, ImageNotFound
from workloads.images.service import ImageService
from workloads.lifecycle import freezer, idalloc
from workloads.lifecycle import update as limits_update
from workloads.lifecycle.exitinfo import describe_exit
from workloads.lifecycle.mgrrecord import MANAGER, ManagerRecord
from workloads.lifecycle.restart import (
    STABLE_RUN_S,
    RestartPolicy,
    backoff_delay,
    parse_restart,
    should_restart,
)
from workloads.network.errors import NetworkError
from workloads.network.record import NetRequest
from workloads.network.service import NetworkService
from workloads.runtime import cgroups, devices, security, userns
from workloads.runtime.runopts import DEFAULT_STOP_TIMEOUT_S
from workloads.runtime.spec import SpecError, WorkloadSpec, check_spec, validate_name
from workloads.supervisor import procs, state
from workloads.supervisor.forkserver import ForkServerClient
from workloads.supervisor.logread import LogFile, log_sources
from workloads.supervisor.logs import log_path
from workloads.supervisor.record import CONFIG, STATUS, RunStatus, ShimConfig, State

log = logging.getLogger(__name__)

MiB = 1024 * 1024
TICK_S = 0.1
START_TIMEOUT_S = 60.0  # generous: under the test VM's emulation a fork+exec can take seconds
INIT_READY_TIMEOUT_S = 2.0  # tini is ready in microseconds on a host, ms under emulation
TAKE_DOWN_TIMEOUT_S = 10.0  # cgroup.kill to an empty cgroup, before a restart into it
RM_WAIT_S = 10.0  # a --rm workload's removal after its exit, before wait answers anyway
NO_RECORD = RunStatus(run=0, state=State.CREATED)
# A removed workload's cgroup keeps its name as a metric label this long: the collector and
# Prometheus (5 min staleness) still hold its last samples.
LABEL_AFTER_RM_S = 300.0


class WorkloadError(Exception):
    """A request that cannot be done; ``status`` is the HTTP status the API answers with."""

    status = 400


class NotFound(WorkloadError):
    status = 404


class Conflict(WorkloadError):
    status = 409


@dataclass
class Workload:
    spec: WorkloadSpec
    wdir: str
    created_at: float
    policy: RestartPolicy
    status: RunStatus = NO_RECORD
    status_key: tuple[int, int, int] = (0, 0, 0)  # (inode, mtime, size) of status.json
    restarts: int = 0
    failures_in_row: int = 0
    stopped_by_user: bool = False
    restart_at: float | None = None  # monotonic time of a pending restart
    handled_run: int = 0  # last run whose exit the restart policy has seen
    launch_pid: int | None = None  # the shim just launched, before it wrote a record
    taking_down: bool = False  # its shim died: killing what is left before the run ends
    watch_error: str | None = None  # the last failure of the watcher on it (logged once)
    paused: bool = False  # its cgroup is frozen (pystats pause); kept in manager.json

    @property
    def state(self) -> State:
        if self.restart_at is not None:
            return State.RESTARTING
        if self.paused and self.status.state is State.RUNNING:
            return State.PAUSED
        return self.status.state


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts % 1 * 1e6):06d}Z"


class WorkloadManager:
    def __init__(
        self,
        root: CgroupRoot,
        state_dir: str,
        *,
        log_max_bytes: int = 10 * MiB,
        log_keep: int = 3,
        use_fork_server: bool = True,
    ) -> None:
        self.root = root
        self.state_dir = os.path.abspath(state_dir)
        self.wl_dir = os.path.join(self.state_dir, "workloads")
        self.corrupt_dir = os.path.join(self.state_dir, "corrupt")
        self.log_max_bytes = log_max_bytes
        self.log_keep = log_keep
        self.problems: list[str] = []  # corrupt records found at start, for the operator
        self._workloads: dict[str, Workload] = {}
        self._removed: dict[str, float] = {}  # name -> monotonic time of its rm (labels)
        self._exited_info: dict[str, dict[str, Any]] = {}  # --rm'd workloads' last record
        self._forks = ForkServerClient() if use_fork_server else None
        self._ids = idalloc.IdAllocator(self.state_dir)  # --userns=auto ranges
        self.images = ImageService(os.path.join(self.state_dir, "images"), self.image_users)
        self.net = NetworkService(self.state_dir)  # CNI networks (workloads.network)
        self._closing = asyncio.Event()
        self._changed = asyncio.Condition()
        # Set by workloads.pods (a layer above): fills a --pod or --net container:NAME spec in
        # with the namespace files to join; may raise WorkloadError.
        self.join_hook: Callable[[WorkloadSpec], WorkloadSpec] | None = None
        # Set by workloads.pods too: called with a workload's spec and "stop", "kill" or "rm"
        # before it is done; raises Conflict for a pod's infra the pod still needs.
        self.pod_guard: Callable[[WorkloadSpec, str], None] | None = None

    # ---- daemon integration -------------------------------------------------------------

    async def start(self) -> None:
        """Prepare the state dir and cgroups; re-adopt workloads recorded by a previous agent."""
        os.makedirs(self.wl_dir, mode=0o700, exist_ok=True)
        # No silently unconfined workloads: the default seccomp profile must be there.
        await asyncio.to_thread(security.startup_check, self.state_dir)
        try:
            cgroups.ensure_shims_cgroup(self.root)
        except CgroupError as e:
            log.warning("cannot create the shims cgroup: %s", e)
        if self._forks is not None:
            await asyncio.to_thread(self._forks.start)
        for name in sorted(os.listdir(self.wl_dir)):
            wdir = os.path.join(self.wl_dir, name)
            if os.path.isdir(wdir):
                self._adopt(name, wdir)
        specs = [w.spec for w in self._workloads.values()]
        for note in self._ids.reconcile(idalloc.held_ranges(specs)):
            log.warning("--userns=auto: %s", note)
        running = {n for n, w in self._workloads.items() if w.status.state is State.RUNNING}
        for note in await asyncio.to_thread(self.net.reconcile, set(self._workloads), running):
            log.warning("network: %s", note)

    async def run(self) -> None:
        """Watch for exits and apply restart policies until close()."""
        while not self._closing.is_set():
            try:
                await self._tick()
            except Exception:
                log.exception("workload watcher tick failed")
            with contextlib.suppress(TimeoutError):  # asyncio.timeout, not wait_for: on 3.11
                async with asyncio.timeout(TICK_S):  # wait_for can swallow a cancellation
                    await self._closing.wait()

    async def close(self) -> None:
        """Stop watching. Workloads and their shims keep running (they outlive the agent)."""
        self._closing.set()
        if self._forks is not None:
            await asyncio.to_thread(self._forks.close)

    def states(self) -> dict[str, State]:
        return {name: w.state for name, w in self._workloads.items()}

    def image_users(self) -> dict[str, list[str]]:
        """Image id -> the workloads run from it (running or not: rmi and prune keep it)."""
        out: dict[str, list[str]] = {}
        for name, w in self._workloads.items():
            if w.spec.image is not None:
                out.setdefault(w.spec.image.id, []).append(name)
        return out

    def rootfs_usage(self) -> dict[str, int | None]:
        """Bytes each workload wrote to its image snapshot (None: no image, or --read-only)."""
        return {name: image_run.upper_size(w.spec) for name, w in self._workloads.items()}

    def workload_images(self) -> dict[str, str]:
        """Workload name -> the image it runs from, as run named it (the `image` label)."""
        return {n: w.spec.image.ref for n, w in self._workloads.items() if w.spec.image}

    def labels_for_cgroup(self, rel: str) -> str | None:
        parts = rel.strip("/").split("/")
        if len(parts) == 3 and parts[0] == cgroups.PODS:  # pods/<pod>/<workload>
            parts = parts[1:]
        elif len(parts) < 2 or parts[0] != cgroups.WORKLOADS:
            return None
        if parts[1] in self._workloads:
            return parts[1]
        gone = self._removed.get(parts[1])
        if gone is not None and time.monotonic() - gone < LABEL_AFTER_RM_S:
            return parts[1]
        return None

    # ---- re-adoption ----------------------------------------------------------------------

    def _set_aside(self, name: str, wdir: str, err: Exception) -> None:
        os.makedirs(self.corrupt_dir, mode=0o700, exist_ok=True)
        dest = os.path.join(self.corrupt_dir, f"{name}-{int(time.time())}-{uuid.uuid4().hex[:6]}")
        os.rename(wdir, dest)
        msg = f"workload {name!r}: {err}; set aside in {dest}"
        self.problems.append(msg)
        log.error("%s", msg)

    def _adopt(self, name: str, wdir: str) -> None:
        cfg_path = os.path.join(wdir, CONFIG)
        try:
            cfg = ShimConfig.from_json(state.read_json(cfg_path), cfg_path)
            spec, created_at = cfg.spec, cfg.created_at
            policy = parse_restart(spec.restart)
        except FileNotFoundError as e:
            self._set_aside(name, wdir, e)
            return
        except (state.CorruptRecord, KeyError, TypeError, ValueError) as e:
            self._set_aside(name, wdir, e)
            return
        w = Workload(spec=spec, wdir=wdir, created_at=created_at, policy=policy)
        try:
            mpath = os.path.join(wdir, MANAGER)
            mgr = ManagerRecord.from_json(state.read_json(mpath), mpath)
            w.restarts, w.stopped_by_user, w.paused = mgr.restarts, mgr.stopped_by_user, mgr.paused
        except FileNotFoundError:
            pass
        except (state.CorruptRecord, ValueError, TypeError) as e:
            self.problems.append(f"workload {name!r}: {e}; restart count reset")
        self._workloads[name] = w
        self._reload_status(w)
        st = w.status
        if (
            st.state is State.RUNNING
            and not procs.alive(st.shim_pid, st.shim_start)
            and not procs.alive(st.pid, st.pid_start)
            and not cgroups.populated(self.root, name, spec.pod)
        ):
            # The shim died without recording the exit (killed, or the machine rebooted) and
            # nothing is left of the run. (If something is, the watcher takes it down first.)
            w.status = st.but(
                state=State.EXITED, error="supervisor lost before the exit was recorded"
            )
            self._write_status(w)
        if w.status_key == (0, 0, 0):
            w.status = RunStatus(
                run=0, state=State.EXITED, error="never started: no status was recorded"
            )
        if w.policy.mode == "always" and w.stopped_by_user:
            # docker: `always` restarts a stopped workload when the agent starts again,
            # `unless-stopped` does not.
            w.stopped_by_user = False
        if w.status.state is State.EXITED:
            # An exit that happened while the agent was down: restart policy decides now.
            w.handled_run = 0
        else:
            w.handled_run = w.status.run

    def _reload_status(self, w: Workload) -> bool:
        path = os.path.join(w.wdir, STATUS)
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return False
        # Each atomic write is a new inode, so this changes even within one mtime tick.
        key = (st.st_ino, st.st_mtime_ns, st.st_size)
        if key == w.status_key:
            return False
        try:
            w.status = RunStatus.from_json(state.read_json(path), path)
        except FileNotFoundError:
            return False
        except state.CorruptRecord as e:
            dest = state.set_aside(path)
            self.problems.append(f"workload {w.spec.name!r}: {e}; set aside in {dest}")
            log.error("%s", self.problems[-1])
            w.status = RunStatus(run=0, state=State.EXITED, error="status record was corrupt")
        w.status_key = key
        return True

    def _write_status(self, w: Workload) -> None:
        state.write_json_atomic(os.path.join(w.wdir, STATUS), w.status.to_json())

    def _taken_down(self, w: Workload) -> bool:
        """Kill what is left in the workload's cgroup; True once nothing is (checked each tick,
        so the watcher never blocks on one workload)."""
        if not cgroups.populated(self.root, w.spec.name, w.spec.pod):
            w.taking_down = False
            return True
        if not w.taking_down:
            log.warning("workload %s: its supervisor died; killing its cgroup", w.spec.name)
            w.taking_down = True
        cgroups.kill_workload_cgroup(self.root, w.spec.name, w.spec.pod)
        return False

    def _end_run(self, w: Workload, error: str) -> bool:
        """Record the end of a run whose shim is gone, once its cgroup is empty."""
        if not self._taken_down(w):
            return False
        w.status = w.status.but(state=State.EXITED, error=error, finished_at=time.time())
        self._write_status(w)
        return True

    def _write_manager(self, w: Workload) -> None:
        state.write_json_atomic(
            os.path.join(w.wdir, MANAGER),
            ManagerRecord(w.restarts, w.stopped_by_user, w.paused).to_json(),
        )

    # ---- watching -------------------------------------------------------------------------

    async def _tick(self) -> None:
        changed = False
        now = time.monotonic()
        for w in list(self._workloads.values()):
            # One workload's failure (an unreadable record, a cgroup error) must not stop the
            # watcher from seeing the others' exits.
            try:
                changed = await self._watch(w, now) or changed
            except Exception as e:
                reason = f"{type(e).__name__}: {e}"
                if reason != w.watch_error:
                    log.error(
                        "watching workload %s failed (tried again each tick): %s",
                        w.spec.name,
                        reason,
                    )
                w.watch_error = reason
            else:
                w.watch_error = None
        if changed:
            async with self._changed:
                self._changed.notify_all()

    async def _watch(self, w: Workload, now: float) -> bool:
        """One look at one workload; True if its state changed."""
        changed = self._reload_status(w)
        st = w.status
        if (
            st.state is State.RUNNING
            and w.restart_at is None
            and not procs.alive(st.shim_pid, st.shim_start)
            # The shim may have just written its last record: look once more, then decide.
            and not self._reload_status(w)
            and w.status.state is State.RUNNING
        ):
            changed = self._end_run(w, "supervisor died") or changed
        if (
            w.status.state is State.CREATED
            and w.launch_pid is not None
            and not procs.alive(w.launch_pid, None)
            and not self._reload_status(w)
        ):
            # The shim exited without any record (killed before it could write one).
            changed = self._end_run(w, "the supervisor exited before starting it") or changed
        if w.status.state is State.EXITED and w.handled_run != w.status.run:
            self._on_exit(w)
            await asyncio.to_thread(self.net.detach, w.spec.name)  # a restart attaches afresh
            changed = True
            if w.restart_at is None and w.spec.run.auto_remove:  # --rm
                self._exited_info[w.spec.name] = self.inspect(w.spec.name)
                await self.rm(w.spec.name)
                return True
        if w.restart_at is not None and now >= w.restart_at:
            w.restart_at = None
            try:
                await self._launch(w, wait=False)
            except Exception as e:
                log.error("restarting %s failed: %s", w.spec.name, e)
            changed = True
        return changed

    def _on_exit(self, w: Workload) -> None:
        st = w.status
        w.paused = False  # a frozen run can still be killed; the next one starts thawed
        w.handled_run = st.run
        code = 255 if st.exit_code is None else st.exit_code
        ran = (st.finished_at or 0) - (st.started_at or 0)
        log.info("workload %s %s after %.1f s", w.spec.name, describe_exit(st), ran)
        w.failures_in_row = 0 if ran >= STABLE_RUN_S else w.failures_in_row + 1
        if should_restart(w.policy, code, w.restarts, w.stopped_by_user):
            w.restarts += 1
            self._write_manager(w)
            w.restart_at = time.monotonic() + backoff_delay(w.failures_in_row)

    async def wait_changed(self, timeout: float) -> None:
        """Wake when any workload's state changed (or after ``timeout``)."""
        async with self._changed:
            with contextlib.suppress(TimeoutError):  # asyncio.timeout, not wait_for: on 3.11
                async with asyncio.timeout(timeout):  # wait_for can swallow a cancellation
                    await self._changed.wait()

    # ---- requests -------------------------------------------------------------------------

    def _get(self, name: str) -> Workload:
        w = self._workloads.get(name)
        if w is None:
            raise NotFound(f"no such workload: {name!r}")
        return w

    async def create(
        self,
        spec: WorkloadSpec,
        image: image_run.ImageRequest | None = None,
        net: NetRequest | None = None,
    ) -> dict[str, Any]:
        """Validate, record, create the cgroup with its limits, launch. All or nothing."""
        if not spec.name:
            spec = WorkloadSpec(**{**spec.__dict__, "name": f"w-{uuid.uuid4().hex[:8]}"})
        if image is not None and spec.name not in self._workloads:
            try:
                spec = await asyncio.to_thread(
                    image_run.prepare, self.images, spec, image, self.state_dir
                )
            except ImageNotFound as e:
                raise NotFound(f"{e} (pystats pull it first)") from None
            except ImageError as e:
                raise WorkloadError(str(e)) from None
            if net is not None and net.publish_all:  # -P: the image's ExposedPorts too
                net = net.with_image_ports(await asyncio.to_thread(self._exposed, image.ref))
        if self.join_hook is not None:  # --pod, --net container:NAME
            spec = self.join_hook(spec)
        elif spec.pod is not None or spec.net.startswith("container:"):
            raise WorkloadError("pods and --net container:NAME are not available in this agent")
        try:
            check_spec(spec)
            validate_name(spec.name)
            policy = parse_restart(spec.restart)
            limits_update.check_run_limits(spec.limits.memory_bytes, spec.limits.cpus)
        except SpecError as e:
            raise WorkloadError(str(e)) from None
        if spec.userns and (why := userns.unavailable()):
            raise WorkloadError(f"--userns: {why}")
        if spec.name in self._workloads:
            raise Conflict(f"a workload named {spec.name!r} already exists (pystats rm it first)")
        if cgroups.populated(self.root, spec.name, spec.pod):
            # Left by a workload whose record was lost or set aside: never share its cgroup.
            path = self.root.resolve(cgroups.workload_rel(spec.name, spec.pod))
            raise Conflict(
                f"the cgroup {path} still holds processes of an earlier workload named"
                f" {spec.name!r} (its record was lost): kill them (echo 1 > {path}/cgroup.kill)"
                " or choose another name"
            )
        try:
            others = [o.spec for o in self._workloads.values()]
            spec = idalloc.assign(self._ids, spec, others)  # --userns=auto: its own range
        except SpecError as e:
            raise WorkloadError(str(e)) from None
        wdir = os.path.join(self.wl_dir, spec.name)
        try:
            os.mkdir(wdir, 0o700)
        except FileExistsError:
            raise Conflict(f"a workload named {spec.name!r} already exists") from None
        w = Workload(spec=spec, wdir=wdir, created_at=time.time(), policy=policy)
        try:
            try:  # checks the network and ports; records the attachment; binds /etc files
                spec = w.spec = await asyncio.to_thread(self.net.prepare, spec, net)
            except NetworkError as e:
                raise WorkloadError(str(e)) from None
            cfg = ShimConfig(
                spec=spec,
                root=self.root.path,
                created_at=w.created_at,
                log_max_bytes=self.log_max_bytes,
                log_keep=self.log_keep,
            )
            try:
                state.write_json_atomic(os.path.join(wdir, CONFIG), cfg.to_json())
            except OSError as e:
                raise WorkloadError(f"cannot record the workload in {wdir}: {e.strerror}") from None
            try:
                cgroups.create_workload_cgroup(
                    self.root, spec.name, spec.limits, devices.rules_for_spec(spec), spec.pod
                )
            except (CgroupError, OSError) as e:
                raise WorkloadError(f"cannot create the workload's cgroup: {e}") from None
            self._workloads[spec.name] = w
            await self._launch(w, wait=True)
        except BaseException:
            self._workloads.pop(spec.name, None)
            with contextlib.suppress(CgroupError, OSError):
                cgroups.remove_workload_cgroup(self.root, spec.name, spec.pod)
            with contextlib.suppress(ImageError):
                image_run.remove(spec)
            await asyncio.to_thread(self.net.release, spec.name)
            shutil.rmtree(wdir, ignore_errors=True)
            if spec.userns_auto:
                self._ids.release(spec.name)
            raise
        return self.inspect(spec.name)

    def _exposed(self, ref: str) -> tuple[str, ...]:
        return self.images.config(self.images.get(ref)).exposed_ports

    async def _make_room(self, w: Workload) -> None:
        """Before a run: whatever an earlier run left in the cgroup is killed, never joined."""
        if not cgroups.populated(self.root, w.spec.name, w.spec.pod):
            return
        log.warning("workload %s: killing what an earlier run left in its cgroup", w.spec.name)
        cgroups.kill_workload_cgroup(self.root, w.spec.name, w.spec.pod)
        deadline = time.monotonic() + TAKE_DOWN_TIMEOUT_S
        while cgroups.populated(self.root, w.spec.name, w.spec.pod):
            if time.monotonic() > deadline:
                raise WorkloadError(
                    f"workload {w.spec.name!r}: its cgroup still holds processes"
                    f" {TAKE_DOWN_TIMEOUT_S:.0f} s after cgroup.kill"
                )
            await asyncio.sleep(0.02)

    async def _launch(self, w: Workload, *, wait: bool) -> None:
        await self._make_room(w)
        run = w.status.run + 1
        w.handled_run = run - 1
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(w.wdir, STATUS))
        w.status = RunStatus(run=run, state=State.CREATED)
        w.status_key = (0, 0, 0)
        w.launch_pid = None
        if w.spec.image is not None:
            try:
                await asyncio.to_thread(image_run.mount, w.spec)
            except ImageError as e:
                raise WorkloadError(str(e)) from None
        try:  # a CNI network: its netns made and configured before the runtime joins it
            await asyncio.to_thread(self.net.attach, w.spec)
        except NetworkError as e:
            raise WorkloadError(str(e)) from None
        if self._forks is not None:
            w.launch_pid = await asyncio.to_thread(self._forks.spawn, w.wdir, run)
        else:
            w.launch_pid = await asyncio.to_thread(_spawn_process, w.wdir, run)
        if not wait:
            return
        deadline = time.monotonic() + START_TIMEOUT_S
        # Look at the state, not at "changed": the watcher may have loaded the record first.
        while True:
            self._reload_status(w)
            if w.status.state is not State.CREATED:
                break
            if time.monotonic() > deadline:
                raise WorkloadError(
                    f"workload {w.spec.name!r} did not start in {START_TIMEOUT_S:.0f} s"
                    f"{_shim_log_tail(w.wdir)}"
                )
            await asyncio.sleep(0.002)
        # Then its exec: a command that is not there ends the run as 127 (as docker's create
        # fails), which the answer must say. Past the deadline it is answered as running.
        while (
            w.status.state is State.RUNNING
            and w.status.exec_at is None
            and time.monotonic() < deadline
            and procs.alive(w.status.shim_pid, w.status.shim_start)
        ):
            await asyncio.sleep(0.002)
            self._reload_status(w)
        # This loop, not the watcher, saw the change: wake whoever waits on one (the event log).
        await self._notify()

    def inspect(self, name: str) -> dict[str, Any]:
        w = self._get(name)
        st = w.status
        running = w.state is State.RUNNING
        return {
            "name": name,
            "state": w.state.value,
            "pid": st.pid if running else None,
            "shim_pid": st.shim_pid if running else None,
            "exit_code": st.exit_code,
            "signal": st.signal,
            "oom_killed": st.oom_killed,
            "error": st.error,
            "log_bytes_dropped": st.log_bytes_dropped,
            "run": st.run,
            "restart_policy": w.spec.restart,
            "restart_count": w.restarts,
            "argv": w.spec.argv,
            "env": w.spec.env,
            "workdir": w.spec.workdir,
            "hostname": w.spec.hostname or name,
            "net": w.spec.net,
            "network": self.net.describe(name),
            "rootfs": w.spec.rootfs,
            "userns": _userns_info(w.spec),
            "image": image_run.describe(w.spec),
            "security": w.spec.security.to_json(),
            "limits": {
                "memory_bytes": w.spec.limits.memory_bytes,
                "cpus": w.spec.limits.cpus,
                "pids": w.spec.limits.pids,
            },
            "updated_limits": limits_update.read_updated(w.wdir),  # by pystats update
            "labels": w.spec.labels,
            "restart_in_s": (  # the backoff left before a pending restart
                None
                if w.restart_at is None
                else round(max(0.0, w.restart_at - time.monotonic()), 1)
            ),
            "pod": w.spec.pod,
            "cgroup": cgroups.workload_rel(name, w.spec.pod),
            "cgroup_path": self.root.resolve(cgroups.workload_rel(name, w.spec.pod)),
            "created_at": _iso(w.created_at),
            "started_at": _iso(st.started_at),
            "finished_at": _iso(st.finished_at),
            "log_path": log_path(w.wdir),
        }

    def listing(self, all_: bool = False) -> list[dict[str, Any]]:
        out = [self.inspect(n) for n in sorted(self._workloads)]
        live = (State.RUNNING.value, State.RESTARTING.value, State.PAUSED.value)
        return out if all_ else [d for d in out if d["state"] in live]

    def log_files(self, name: str) -> list[LogFile]:
        return log_sources(self._get(name).wdir, self.log_keep)

    def is_done(self, name: str) -> bool:
        """True when the workload has exited and will not be restarted (or was removed)."""
        w = self._workloads.get(name)
        busy = (State.RUNNING, State.RESTARTING, State.CREATED, State.PAUSED)
        return w is None or w.state not in busy

    async def _wait_exited(self, w: Workload, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._reload_status(w)
            if w.status.state is not State.RUNNING:
                return True
            await asyncio.sleep(0.02)
        return False

    def _signal(self, w: Workload, sig: int) -> bool:
        st = w.status
        if st.state is not State.RUNNING or st.pid is None or not procs.alive(st.pid, st.pid_start):
            return False
        try:
            os.kill(st.pid, sig)
        except ProcessLookupError:
            return False
        return True

    async def _init_ready(self, w: Workload, sig: int) -> None:
        """With --init, wait (briefly) until tini takes the stop signal: between the runtime's
        unblocking and tini's own sigprocmask the workload is a namespace's init with neither a
        handler nor a mask, and the kernel would drop it (then the grace period runs out)."""
        pid = w.status.pid
        deadline = time.monotonic() + INIT_READY_TIMEOUT_S
        while pid is not None and time.monotonic() < deadline:
            if procs.takes_signal(pid, sig) is not False:
                return
            await asyncio.sleep(0.005)

    async def stop(self, name: str, grace_s: float | None = None) -> dict[str, Any]:
        """The stop signal (SIGTERM unless --stop-signal), then after ``grace_s`` (default: its
        --stop-timeout, else 10 s) cgroup.kill; no restart afterwards."""
        w = self._get(name)
        self._guard(w, "stop")
        if grace_s is None:
            grace_s = w.spec.run.stop_timeout
        if grace_s is None:
            grace_s = DEFAULT_STOP_TIMEOUT_S
        w.stopped_by_user = True
        w.restart_at = None
        self._thaw(w)  # a frozen workload cannot act on its stop signal
        self._write_manager(w)
        sig = w.spec.run.stop_signal or _stop_signal(w.spec)
        if w.spec.run.init:
            await self._init_ready(w, sig)
        if self._signal(w, sig) and not await self._wait_exited(w, grace_s):
            cgroups.kill_workload_cgroup(self.root, name, w.spec.pod)
            await self._wait_exited(w, START_TIMEOUT_S)
        return self.inspect(name)

    async def kill(self, name: str, sig: int = signal.SIGKILL) -> dict[str, Any]:
        w = self._get(name)
        if w.state not in (State.RUNNING, State.PAUSED):
            raise Conflict(f"workload {name!r} is not running")
        if sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT):
            self._guard(w, "kill")
        if sig == signal.SIGKILL:
            w.stopped_by_user = True
            w.restart_at = None
            self._write_manager(w)
            cgroups.kill_workload_cgroup(self.root, name, w.spec.pod)
            await self._wait_exited(w, START_TIMEOUT_S)
        else:
            self._signal(w, sig)
        return self.inspect(name)

    def _guard(self, w: Workload, op: str) -> None:
        if self.pod_guard is not None and w.spec.pod is not None:
            self.pod_guard(w.spec, op)

    async def rm(self, name: str, force: bool = False) -> None:
        w = self._get(name)
        self._guard(w, "rm")
        if w.state in (State.RUNNING, State.RESTARTING, State.PAUSED):
            if not force:
                raise Conflict(f"workload {name!r} is {w.state}: stop it first or use --force")
            w.stopped_by_user = True
            w.restart_at = None
            cgroups.kill_workload_cgroup(self.root, name, w.spec.pod)
            await self._wait_exited(w, START_TIMEOUT_S)
        del self._workloads[name]
        now = time.monotonic()
        self._removed = {n: t for n, t in self._removed.items() if now - t < LABEL_AFTER_RM_S}
        self._removed[name] = now
        try:
            cgroups.remove_workload_cgroup(self.root, name, w.spec.pod)
        except CgroupError as e:
            log.warning("removing the cgroup of %s: %s", name, e)
        try:
            await asyncio.to_thread(image_run.remove, w.spec)
        except ImageError as e:
            log.warning("removing the snapshot of %s: %s", name, e)
        await asyncio.to_thread(self.net.release, name)
        shutil.rmtree(w.wdir, ignore_errors=True)
        if w.spec.userns_auto:
            self._ids.release(name)
        async with self._changed:
            self._changed.notify_all()

    # ---- pause, start, wait (pystats pause/unpause/start/restart/wait) ----------------------

    def _thaw(self, w: Workload) -> None:
        if w.paused:
            try:
                freezer.set_frozen(self.root, w.spec.name, False, w.spec.pod)
            except freezer.FreezeError as e:
                log.warning("%s", e)  # cgroup.kill still ends it
            w.paused = False

    async def _set_frozen(self, w: Workload, frozen: bool) -> None:
        try:
            await asyncio.to_thread(freezer.set_frozen, self.root, w.spec.name, frozen, w.spec.pod)
        except freezer.FreezeError as e:
            raise WorkloadError(str(e)) from None
        w.paused = frozen
        self._write_manager(w)
        await self._notify()

    async def pause(self, name: str) -> dict[str, Any]:
        """Freeze the workload's cgroup (cgroup.freeze): every process stops where it is."""
        w = self._get(name)
        if w.state is State.PAUSED:
            raise Conflict(f"workload {name!r} is already paused")
        if w.state is not State.RUNNING:
            raise Conflict(f"workload {name!r} is not running")
        await self._set_frozen(w, True)
        return self.inspect(name)

    async def unpause(self, name: str) -> dict[str, Any]:
        w = self._get(name)
        if w.state is not State.PAUSED:
            raise Conflict(f"workload {name!r} is not paused")
        await self._set_frozen(w, False)
        return self.inspect(name)

    async def start_workload(self, name: str) -> dict[str, Any]:
        """Run an exited workload again (a new run, the same record); its restart policy
        applies again."""
        w = self._get(name)
        if w.state in (State.RUNNING, State.PAUSED, State.CREATED):
            return self.inspect(name)  # docker: starting a running container is a no-op
        w.restart_at = None
        w.stopped_by_user = False
        w.failures_in_row = 0
        self._write_manager(w)
        await self._launch(w, wait=True)
        await self._notify()
        return self.inspect(name)

    async def update(self, name: str, values: dict[str, object]) -> dict[str, Any]:
        """Change a workload's limits live (workloads.lifecycle.update); checked before any
        write, kept in limits.json."""
        w = self._get(name)
        if w.state not in (State.RUNNING, State.PAUSED, State.EXITED, State.RESTARTING):
            raise Conflict(f"workload {name!r} is {w.state}")
        try:
            cpus, mems = limits_update.parent_cpuset(self.root, name, w.spec.pod)
            upd = limits_update.parse_update(values, cpus, mems)
            pid = w.status.pid if w.state in (State.RUNNING, State.PAUSED) else None
            written = await asyncio.to_thread(
                limits_update.apply, self.root, name, upd, pid, w.spec.pod
            )
        except SpecError as e:
            raise WorkloadError(str(e)) from None
        merged = {**limits_update.read_updated(w.wdir), **written}
        state.write_json_atomic(os.path.join(w.wdir, limits_update.LIMITS_FILE), merged)
        return self.inspect(name)

    async def wait_exit(self, name: str) -> dict[str, Any]:
        """Block until the workload has exited for good (no restart pending). A --rm workload's
        last record is answered once after its removal (`pystats run --rm` reads its exit)."""
        if name not in self._workloads and name in self._exited_info:
            return self._exited_info.pop(name)
        w = self._get(name)
        while not self.is_done(name):
            await self.wait_changed(0.5)
        # --rm: answered once removed, as docker's CLI waits for "removed" (a listing right after
        # `run --rm` returns must not show it); bounded, should its removal fail.
        deadline = time.monotonic() + RM_WAIT_S
        while w.spec.run.auto_remove and name in self._workloads and time.monotonic() < deadline:
            await self.wait_changed(0.1)
        if name not in self._workloads and name in self._exited_info:
            return self._exited_info.pop(name)
        return self.inspect(name)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()


def _stop_signal(spec: WorkloadSpec) -> int:
    """SIGTERM, or the image's StopSignal (docker's rule)."""
    name = spec.image.stop_signal if spec.image is not None else None
    if not name:
        return signal.SIGTERM
    if name.isdigit():
        return int(name)
    try:
        return int(signal.Signals[name if name.startswith("SIG") else "SIG" + name])
    except KeyError:
        return signal.SIGTERM


def _userns_info(spec: WorkloadSpec) -> dict[str, str] | None:
    """The id maps as /proc/PID/uid_map shows them: "ID-inside ID-on-host COUNT"."""
    line = spec.id_map()
    return None if line is None else {"uid_map": line, "gid_map": line}


def _shim_log_tail(wdir: str) -> str:
    try:
        with open(os.path.join(wdir, "shim.log"), "rb") as f:
            tail = f.read()[-400:].decode(errors="replace").strip()
    except OSError:
        return ""
    return f" (supervisor log: {tail})" if tail else ""


def _spawn_process(wdir: str, run: int) -> int:
    """Without a fork server: a fresh interpreter runs the shim (no preexec_fn, new session)."""
    import subprocess
    import sys

    pkg_parent = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (pkg_parent, env.get("PYTHONPATH")) if p)
    proc = subprocess.Popen(
        [sys.executable, "-m", "workloads.supervisor.shim", wdir, str(run)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        close_fds=True,
        env=env,
    )
    return proc.pid
