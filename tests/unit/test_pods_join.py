"""workloads.pods: the join of a --pod or --net container:NAME spec, records and pod state."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from agent.api.lifecycle_routes import _prune
from cgroupfs.paths import CgroupRoot
from workloads.lifecycle.manager import (
    Conflict,
    NotFound,
    Workload,
    WorkloadError,
    WorkloadManager,
)
from workloads.lifecycle.restart import parse_restart
from workloads.network.service import NetworkService
from workloads.pods import manager as pods_manager
from workloads.pods import nsfiles
from workloads.pods.manager import PodManager, pod_state
from workloads.pods.record import PodRecord
from workloads.runtime.spec import Limits, WorkloadSpec
from workloads.supervisor import state
from workloads.supervisor.record import RunStatus, State


class FakeWorkloads:
    """The part of WorkloadManager a PodManager uses to join: inspect, listing, states."""

    def __init__(self, tmp: Path, workloads: dict[str, dict[str, Any]]) -> None:
        self.state_dir = str(tmp / "st")
        self.root = CgroupRoot(str(tmp))
        self.join_hook: Any = None
        self.net = NetworkService(self.state_dir)
        self._w = workloads

    def inspect(self, name: str) -> dict[str, Any]:
        if name not in self._w:
            raise NotFound(f"no such workload: {name!r}")
        return {"name": name, "pod": None, "network": None, "state": "running", **self._w[name]}

    def listing(self, all_: bool = False) -> list[dict[str, Any]]:
        return [self.inspect(n) for n in sorted(self._w)]

    def states(self) -> dict[str, str]:
        return {n: self.inspect(n)["state"] for n in self._w}


def _pods(tmp: Path, workloads: dict[str, dict[str, Any]] | None = None) -> PodManager:
    fake = FakeWorkloads(tmp, workloads or {})
    pods = PodManager(fake)  # type: ignore[arg-type]
    assert fake.join_hook == pods.join  # registered as the workload manager's hook
    return pods


def _record(pods: PodManager, rec: PodRecord) -> None:
    os.makedirs(pods._pdir(rec.name))
    state.write_json_atomic(os.path.join(pods._pdir(rec.name), "pod.json"), rec.to_json())


def _record_over(pods: PodManager, rec: PodRecord) -> None:
    state.write_json_atomic(os.path.join(pods._pdir(rec.name), "pod.json"), rec.to_json())


def _spec(**kw: Any) -> WorkloadSpec:
    return WorkloadSpec(**{"name": "web", "argv": ["httpd"], **kw})


def test_record_round_trip() -> None:
    rec = PodRecord("p", "box", 12.5, Limits(memory_bytes=64 << 20, cpus=0.5, pids=10))
    assert PodRecord.from_json(rec.to_json()) == rec
    assert rec.kinds == ("net", "ipc", "uts")
    cni = PodRecord("p", "box", 1.0, network="bridge", ports=("8080:80",))
    assert PodRecord.from_json(cni.to_json()) == cni
    assert cni.kinds == ("ipc", "uts")  # its netns is the network service's
    assert rec.infra == "p-infra"
    assert PodRecord.from_json({"name": "q", "hostname": "q", "created_at": 1}).limits == Limits()


def test_pod_state_words() -> None:
    assert pod_state(None, []) == "created"
    assert pod_state("running", ["running", "running"]) == "running"
    assert pod_state("running", ["exited"]) == "degraded"
    assert pod_state("exited", ["exited"]) == "exited"


def test_member_joins_the_pods_namespaces_and_hostname(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pods = _pods(tmp_path)
    _record(pods, PodRecord("p", "shared", 1.0))
    monkeypatch.setattr(nsfiles, "present", lambda d, kinds=(): True)
    out = pods.join(_spec(pod="p"))
    ns = os.path.join(pods.dir, "p", "ns")
    assert (out.netns, out.ipcns, out.utsns) == (f"{ns}/net", f"{ns}/ipc", f"{ns}/uts")
    assert out.hostname == "shared" and out.net == "container:p-infra"
    infra = pods.join(_spec(name="p-infra", pod="p"))
    assert infra.net == "none" and infra.netns == f"{ns}/net"  # the infra: no container:itself


def test_pod_on_a_network_joins_the_infras_attached_netns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pods = _pods(tmp_path, {"m": {"net": "container:p-infra", "pod": "p"}})
    _record(pods, PodRecord("p", "shared", 1.0, network="bridge", ports=("8080:80",)))
    monkeypatch.setattr(nsfiles, "present", lambda d, kinds: kinds == ("ipc", "uts"))
    attached = pods.wm.net.netns_path("p-infra")
    infra = pods.join(_spec(name="p-infra", pod="p"))
    assert (infra.net, infra.netns) == ("bridge", None)  # the network service sets it
    assert infra.ipcns is not None and infra.ipcns.endswith("/p/ns/ipc")
    member = pods.join(_spec(pod="p"))
    assert (member.net, member.netns) == ("container:p-infra", attached)
    assert pods.join(_spec(net="container:m")).netns == attached


def test_member_refusals(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pods = _pods(tmp_path)
    with pytest.raises(NotFound, match="no such pod: 'p'"):
        pods.join(_spec(pod="p"))
    _record(pods, PodRecord("p", "shared", 1.0))
    with pytest.raises(Conflict, match="lost its namespaces"):  # no bind mounts in tmp_path
        pods.join(_spec(pod="p"))
    monkeypatch.setattr(nsfiles, "present", lambda d, kinds=(): True)
    with pytest.raises(WorkloadError, match="--userns: not available in a pod"):
        pods.join(_spec(pod="p", userns=True))
    with pytest.raises(WorkloadError, match="share its hostname 'shared'"):
        pods.join(_spec(pod="p", hostname="other"))
    with pytest.raises(WorkloadError, match="share the pod's network"):
        pods.join(_spec(pod="p", net="host"))
    assert pods.join(_spec(pod="p", hostname="shared")).hostname == "shared"


def test_net_container_joins_the_targets_netns(tmp_path: Path) -> None:
    ws: dict[str, dict[str, Any]] = {
        "member": {"net": "container:p-infra", "pod": "p"},
        "cni": {"net": "bridge", "network": {"netns": "/run/x/netns/cni"}},
        "chained": {"net": "container:cni"},
        "alone": {"net": "none"},
        "hosty": {"net": "host"},
        "down": {"net": "bridge", "network": {"netns": None}, "state": "exited"},
    }
    pods = _pods(tmp_path, ws)
    _record(pods, PodRecord("p", "p", 1.0))
    join = pods.join
    assert join(_spec(net="container:member")).netns == os.path.join(pods.dir, "p", "ns", "net")
    assert join(_spec(net="container:cni")).netns == "/run/x/netns/cni"
    assert join(_spec(net="container:chained")).netns == "/run/x/netns/cni"
    assert join(_spec(net="none")).netns is None  # nothing to join: unchanged
    cases: list[tuple[str, type[Exception], str]] = [
        ("alone", WorkloadError, "kept by no file"),
        ("hosty", WorkloadError, "use --net host"),
        ("down", Conflict, "down is not running"),
        ("nope", NotFound, "no such workload"),
        ("web", WorkloadError, "cannot join itself"),
    ]
    for target, exc, msg in cases:
        with pytest.raises(exc, match=msg):
            join(_spec(net=f"container:{target}"))


def test_infra_argv_prefers_catatonit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "access", lambda p, m: p == "/usr/bin/catatonit")
    assert pods_manager.infra_argv() == ["/usr/bin/catatonit", "-P"]
    monkeypatch.setattr(os, "access", lambda p, m: False)
    assert pods_manager.infra_argv()[0] == "/usr/bin/tini"


async def test_workload_manager_without_pods_refuses_a_pod_spec(tmp_path: Path) -> None:
    (tmp_path / "cg").mkdir()
    m = WorkloadManager(
        CgroupRoot(str(tmp_path / "cg")), str(tmp_path / "st"), use_fork_server=False
    )
    with pytest.raises(WorkloadError, match="pods and --net container:NAME are not available"):
        await m.create(_spec(pod="p"))
    assert m.labels_for_cgroup("pods/p/web") is None  # unknown workload


def test_the_infra_goes_only_with_its_pod(tmp_path: Path) -> None:
    ws: dict[str, dict[str, Any]] = {"p-infra": {"pod": "p"}, "web": {"pod": "p"}}
    pods = _pods(tmp_path, ws)
    assert pods.wm.pod_guard == pods.guard  # registered as the workload manager's guard
    _record(pods, PodRecord("p", "p", 1.0))
    infra = _spec(name="p-infra", pod="p")
    with pytest.raises(Conflict, match=r"'p-infra' is the infra of pod 'p'.*pystats pod rm p"):
        pods.guard(infra, "rm")
    pods.guard(infra, "stop")  # no network: the namespaces are the pod's files, kept
    _record_over(pods, PodRecord("p", "p", 1.0, network="bridge"))
    for op in ("stop", "kill"):
        with pytest.raises(Conflict, match=r"network of pod 'p'.*\(web\): pystats pod stop p"):
            pods.guard(infra, op)
    pods.guard(_spec(pod="p"), "rm")  # a member: free
    with pods._as_pod("p-infra"):  # the pod manager's own stop and rm
        pods.guard(infra, "rm")
    ws["web"]["state"] = "exited"
    pods.guard(infra, "stop")  # nothing stranded
    with pytest.raises(Conflict):
        pods.guard(infra, "rm")
    os.unlink(os.path.join(pods._pdir("p"), "pod.json"))
    pods.guard(infra, "rm")  # its pod is gone: an orphan may go


async def test_rm_of_the_infra_refused_prune_skips_it_pod_rm_removes_it(tmp_path: Path) -> None:
    (tmp_path / "cg").mkdir()
    m = WorkloadManager(
        CgroupRoot(str(tmp_path / "cg")), str(tmp_path / "st"), use_fork_server=False
    )
    pods = PodManager(m)
    _record(pods, PodRecord("p", "p", 1.0))
    done = RunStatus(run=1, state=State.EXITED, exit_code=0)
    for spec in (_spec(name="p-infra", pod="p"), _spec(name="old")):
        wdir = tmp_path / "st" / "workloads" / spec.name
        wdir.mkdir(parents=True)
        m._workloads[spec.name] = Workload(spec, str(wdir), 1.0, parse_restart("no"), done)
    with pytest.raises(Conflict, match="pystats pod rm p"):
        await m.rm("p-infra", force=True)
    assert m.inspect("p-infra")["state"] == "exited"  # untouched
    assert await _prune(m, None) == {"removed": ["old"]}  # type: ignore[arg-type]
    await pods.rm("p")
    assert m.states() == {} and pods.names() == []
