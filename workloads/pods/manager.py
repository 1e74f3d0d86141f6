"""The pod manager: a pod's record, cgroup, namespace files and infra workload, and the join of
a --pod or --net container:NAME workload (the workload manager's join_hook).

    <state>/pods/<name>/pod.json         the pod (PodRecord)
    <state>/pods/<name>/ns/{net,ipc,uts} its namespaces, bind-mounted nsfs files (nsfiles)
    <cgroup root>/pods/<name>/           its limits; its workloads' cgroups below it

The infra is a workload like the others (named <pod>-infra, a pause process: catatonit -P, or
tini over sleep), joining the pod's namespaces as they do. Members are not listed in the pod's
record: a workload's spec names its pod, so the list can never disagree with the workloads.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import shutil
import time
from collections.abc import Iterator
from typing import Any

from cgroupfs.errors import CgroupError
from workloads.lifecycle.manager import Conflict, NotFound, WorkloadError, WorkloadManager
from workloads.network.record import NetRequest
from workloads.pods import nsfiles, usage
from workloads.pods.record import INFRA_SUFFIX, PodRecord
from workloads.runtime import cgroups
from workloads.runtime.errors import SpecError
from workloads.runtime.spec import Limits, WorkloadSpec, validate_name
from workloads.supervisor import state

RECORD = "pod.json"
LIVE = ("running", "restarting", "paused")
CONTAINER = "container:"


def infra_argv() -> list[str]:
    """podman's pause process, catatonit -P, when installed; else tini reaping a sleep."""
    if os.access("/usr/bin/catatonit", os.X_OK):
        return ["/usr/bin/catatonit", "-P"]
    return ["/usr/bin/tini", "-s", "--", "sleep", "infinity"]


def pod_state(infra_state: str | None, member_states: list[str]) -> str:
    """podman's words: running (all up), degraded (some), exited (none), created (no infra)."""
    if infra_state is None:
        return "created"
    states = [infra_state, *member_states]
    up = sum(s in LIVE for s in states)
    if up == len(states):
        return "running"
    return "degraded" if up else "exited"


class PodManager:
    def __init__(self, workloads: WorkloadManager) -> None:
        self.wm = workloads
        self.dir = os.path.join(workloads.state_dir, "pods")
        self._lock = asyncio.Lock()
        self._own: set[str] = set()  # infras this manager is stopping or removing itself
        workloads.join_hook = self.join
        workloads.pod_guard = self.guard

    # ---- records ----------------------------------------------------------------------------

    def _pdir(self, name: str) -> str:
        return os.path.join(self.dir, name)

    def ns_dir(self, name: str) -> str:
        return os.path.join(self._pdir(name), "ns")

    def load(self, name: str) -> PodRecord:
        path = os.path.join(self._pdir(name), RECORD)
        try:
            validate_name(name)
            return PodRecord.from_json(state.read_json(path))
        except (FileNotFoundError, SpecError):
            raise NotFound(f"no such pod: {name!r}") from None
        except (state.CorruptRecord, KeyError, TypeError, ValueError) as e:
            raise WorkloadError(f"pod {name!r}: unreadable record {path}: {e}") from None

    def names(self) -> list[str]:
        with contextlib.suppress(FileNotFoundError):
            return sorted(
                n for n in os.listdir(self.dir) if os.path.exists(os.path.join(self.dir, n, RECORD))
            )
        return []

    def members(self, name: str) -> list[dict[str, Any]]:
        """The pod's workloads (its infra first) as the workload manager inspects them."""
        infra = name + INFRA_SUFFIX
        out = [d for d in self.wm.listing(all_=True) if d.get("pod") == name]
        return sorted(out, key=lambda d: (d["name"] != infra, d["name"]))

    # ---- the join (WorkloadManager.join_hook) -----------------------------------------------

    def join(self, spec: WorkloadSpec) -> WorkloadSpec:
        """A --pod workload joins the pod's namespaces and hostname; --net container:NAME
        joins NAME's network namespace. Raises WorkloadError with a one-line reason."""
        if spec.pod is None:
            if spec.net.startswith(CONTAINER):
                target = spec.net.removeprefix(CONTAINER)
                return dataclasses.replace(spec, netns=self._netns_of(target, spec.name))
            return spec
        rec = self.load(spec.pod)
        if spec.userns:
            raise WorkloadError(
                "--userns: not available in a pod yet (its workloads join the pod's namespaces,"
                " which belong to the host's user namespace)"
            )
        if spec.net not in ("none", CONTAINER + rec.infra):
            raise WorkloadError("--net: a pod's workloads share the pod's network (drop --net)")
        if spec.hostname not in (None, rec.hostname):
            raise WorkloadError(
                f"--hostname: a pod's workloads share its hostname {rec.hostname!r}"
                " (pystats pod create --hostname)"
            )
        ns_dir = self.ns_dir(rec.name)
        if not nsfiles.present(ns_dir, rec.kinds):
            raise Conflict(
                f"pod {rec.name!r} has lost its namespaces (a reboot?): pystats pod rm it and"
                " create it again"
            )
        files = nsfiles.paths(ns_dir, rec.kinds)
        infra = spec.name == rec.infra
        return dataclasses.replace(
            spec,
            # On a CNI network the infra is attached (its netns set by the network service)
            # and the others join that netns; else all join the pod's own.
            net=(rec.network or "none") if infra else CONTAINER + rec.infra,
            netns=None if infra and rec.network else self.pod_netns(rec),
            ipcns=files["ipc"],
            utsns=files["uts"],
            hostname=rec.hostname,
        )

    def pod_netns(self, rec: PodRecord) -> str:
        """The file of the pod's network namespace (the network service's on a network)."""
        if rec.network is not None:
            return self.wm.net.netns_path(rec.infra)
        return nsfiles.paths(self.ns_dir(rec.name))["net"]

    def _netns_of(self, target: str, joiner: str, depth: int = 0) -> str:
        """The file of ``target``'s network namespace: its pod's, or its CNI network's."""
        what = f"--net container:{target}"
        if target == joiner:
            raise WorkloadError(f"{what}: a workload cannot join itself")
        try:
            info = self.wm.inspect(target)
        except NotFound:
            raise NotFound(f"{what}: no such workload") from None
        if info.get("pod"):
            return self.pod_netns(self.load(str(info["pod"])))
        net = str(info["net"])
        if net.startswith(CONTAINER) and depth < 8:
            return self._netns_of(net.removeprefix(CONTAINER), joiner, depth + 1)
        if net == "host":
            raise WorkloadError(f"{what}: {target} uses the host's network (use --net host)")
        if info["state"] != "running":
            raise Conflict(f"{what}: {target} is not running")
        netns = (info.get("network") or {}).get("netns")
        if not netns:
            raise WorkloadError(
                f"{what}: {target}'s network namespace is kept by no file (--net none): run"
                f" {target} on a network (--net bridge) or in a pod"
            )
        return str(netns)

    # ---- the infra's guard (WorkloadManager.pod_guard) ---------------------------------------

    def guard(self, spec: WorkloadSpec, op: str) -> None:
        """A pod's infra is removed only with the pod (podman refuses alike). On a network it
        is also stopped only once no other workload of the pod runs: its stop releases the
        netns's interface (CNI DEL) under them. A pod without a network keeps its namespaces
        as files: its infra may stop and start again under running workloads."""
        pod = spec.pod
        if pod is None or spec.name != pod + INFRA_SUFFIX or spec.name in self._own:
            return
        try:
            rec = self.load(pod)
        except NotFound:
            return  # its pod's record is gone: an orphan, free to go
        if op == "rm":
            raise Conflict(
                f"{spec.name!r} is the infra of pod {pod!r}: it goes with the pod"
                f" (pystats pod rm {pod}; -f stops its workloads)"
            )
        if rec.network is None:
            return
        running = [
            str(m["name"])
            for m in self.members(pod)
            if m["name"] != spec.name and m["state"] in LIVE
        ]
        if running:
            raise Conflict(
                f"{spec.name!r} holds the network of pod {pod!r}, whose workloads still run"
                f" ({', '.join(running)}): pystats pod stop {pod}"
            )

    @contextlib.contextmanager
    def _as_pod(self, infra: str) -> Iterator[None]:
        self._own.add(infra)
        try:
            yield
        finally:
            self._own.discard(infra)

    # ---- requests ---------------------------------------------------------------------------

    async def create(
        self,
        name: str,
        hostname: str | None,
        limits: Limits,
        network: str | None = None,
        ports: tuple[str, ...] = (),
    ) -> dict[str, Any]:
        """Record, cgroup with the pod's limits, namespace files, infra: all or nothing.
        ``ports`` (-p) are published from the infra's network (``network``, default bridge)."""
        try:
            validate_name(name)
            validate_name(name + INFRA_SUFFIX)
            if hostname is not None:
                validate_name(hostname)
        except SpecError as e:
            raise WorkloadError(str(e).replace("workload name", "pod name")) from None
        network = network or ("bridge" if ports else None)
        rec = PodRecord(name, hostname or name, time.time(), limits, network, ports)
        async with self._lock:
            pdir = self._pdir(name)
            if rec.infra in self.wm.states():
                raise Conflict(f"a workload named {rec.infra!r} already exists")
            try:
                os.makedirs(pdir, mode=0o700)
            except FileExistsError:
                raise Conflict(f"a pod named {name!r} already exists") from None
            try:
                state.write_json_atomic(os.path.join(pdir, RECORD), rec.to_json())
                try:
                    cgroups.create_pod_cgroup(self.wm.root, name, limits)
                except (CgroupError, OSError) as e:
                    raise WorkloadError(f"cannot create the pod's cgroup: {e}") from None
                try:
                    await asyncio.to_thread(
                        nsfiles.create, self.ns_dir(name), rec.hostname, rec.kinds
                    )
                except OSError as e:
                    raise WorkloadError(f"cannot create the pod's namespaces: {e}") from None
                infra = WorkloadSpec(
                    name=rec.infra,
                    argv=infra_argv(),
                    pod=name,
                    restart="unless-stopped",
                    labels={"pystats.pod": name, "pystats.pod.infra": "true"},
                )
                await self.wm.create(infra, None, NetRequest(ports=ports) if ports else None)
            except BaseException:
                await asyncio.to_thread(self._teardown, name)
                raise
        return self.inspect(name)

    def _teardown(self, name: str) -> None:
        nsfiles.remove(self.ns_dir(name))
        with contextlib.suppress(CgroupError, OSError):
            cgroups.remove_pod_cgroup(self.wm.root, name)
        shutil.rmtree(self._pdir(name), ignore_errors=True)

    def inspect(self, name: str) -> dict[str, Any]:
        rec = self.load(name)
        members = self.members(name)
        infra = next((m for m in members if m["name"] == rec.infra), None)
        rel = cgroups.pod_rel(name)
        return {
            "name": name,
            "state": pod_state(
                None if infra is None else infra["state"],
                [m["state"] for m in members if m is not infra],
            ),
            "hostname": rec.hostname,
            "created_at": rec.created_at,
            "infra": rec.infra,
            "limits": dataclasses.asdict(rec.limits),
            "cgroup": rel,
            "cgroup_path": self.wm.root.resolve(rel),
            "namespaces": {
                **nsfiles.paths(self.ns_dir(name), rec.kinds),
                "net": self.pod_netns(rec),
            },
            "network": None if infra is None else infra["network"],  # address, ports (CNI)
            "members": [{"name": m["name"], "state": m["state"]} for m in members],
        }

    def listing(self) -> list[dict[str, Any]]:
        out = []
        for name in self.names():
            with contextlib.suppress(WorkloadError):
                out.append(self.inspect(name))
        return out

    async def stats(self, name: str) -> dict[str, Any]:
        """The pod cgroup's usage and each workload's below it (CPU % over a short sample)."""
        self.load(name)
        members = self.members(name)
        rels = [cgroups.pod_rel(name)] + [str(m["cgroup"]) for m in members]
        rows = await asyncio.to_thread(usage.sample, self.wm.root, rels)
        names = [name] + [str(m["name"]) for m in members]
        return {
            "pod": {"name": name, **rows[0].to_json()},
            "workloads": [
                {"name": n, **r.to_json()} for n, r in zip(names[1:], rows[1:], strict=True)
            ],
        }

    async def stop(self, name: str, grace_s: float | None = None) -> dict[str, Any]:
        """Its workloads first (together), then the infra, as podman stops a pod."""
        rec = self.load(name)
        others = [m["name"] for m in self.members(name) if m["name"] != rec.infra]
        await asyncio.gather(*(self.wm.stop(n, grace_s) for n in others))
        if rec.infra in self.wm.states():
            with self._as_pod(rec.infra):
                await self.wm.stop(rec.infra, grace_s)
        return self.inspect(name)

    async def start(self, name: str) -> dict[str, Any]:
        """The infra, then its workloads (a stopped pod runs again)."""
        rec = self.load(name)
        if not nsfiles.present(self.ns_dir(name), rec.kinds):
            await asyncio.to_thread(nsfiles.create, self.ns_dir(name), rec.hostname, rec.kinds)
        for m in self.members(name):
            await self.wm.start_workload(str(m["name"]))
        return self.inspect(name)

    async def rm(self, name: str, force: bool = False) -> None:
        """Refused while a workload of the pod runs, unless ``force``: then each is killed.
        Leaves no workload, cgroup, namespace file or record of the pod."""
        rec = self.load(name)
        members = self.members(name)
        running = [m["name"] for m in members if m["state"] in LIVE and m["name"] != rec.infra]
        if running and not force:
            raise Conflict(
                f"pod {name!r} has running workloads ({', '.join(running)}):"
                " pystats pod stop it first, or pod rm -f"
            )
        async with self._lock:
            for m in members:
                with contextlib.suppress(NotFound), self._as_pod(rec.infra):
                    await self.wm.rm(str(m["name"]), force=True)
            await asyncio.to_thread(self._teardown, name)
