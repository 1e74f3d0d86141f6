"""The runtime's side of pods: spec fields, checks, namespace flags, cgroup paths, API/CLI."""

from __future__ import annotations

import pytest

from agent.api.pod_routes import pod_create_args
from agent.api.server import spec_from_body
from agent.cli import build_parser
from agent.cli.workloads import run_body
from workloads.runtime import cgroups, linux
from workloads.runtime.init import namespace_flags
from workloads.runtime.spec import Limits, SpecError, WorkloadSpec, check_spec


def _spec(**kw: object) -> WorkloadSpec:
    return WorkloadSpec(**{"name": "web", "argv": ["true"], **kw})  # type: ignore[arg-type]


def test_spec_round_trips_the_pod_fields() -> None:
    s = _spec(pod="p", netns="/s/net", ipcns="/s/ipc", utsns="/s/uts", net="container:p-infra")
    assert WorkloadSpec.from_json(s.to_json()) == s
    assert WorkloadSpec.from_json(_spec().to_json()).pod is None  # older records


def test_check_spec_accepts_container_and_refuses_relative_ns_files() -> None:
    check_spec(_spec(net="container:db"))
    with pytest.raises(SpecError, match="invalid --net"):
        check_spec(_spec(net="container:a/b"))
    with pytest.raises(SpecError, match="must be an absolute path"):
        check_spec(_spec(ipcns="rel/ipc"))
    with pytest.raises(SpecError, match="invalid --pod"):
        check_spec(_spec(pod="../x"))


def test_joined_namespaces_are_not_made_anew() -> None:
    own = namespace_flags(_spec())
    assert own & linux.CLONE_NEWUTS and own & linux.CLONE_NEWIPC and own & linux.CLONE_NEWNET
    joined = namespace_flags(_spec(netns="/n", ipcns="/i", utsns="/u", net="container:x"))
    assert joined == linux.CLONE_NEWNS


def test_cgroup_paths_of_a_pod() -> None:
    assert cgroups.workload_rel("web") == "workloads/web"
    assert cgroups.workload_rel("web", "p") == "pods/p/web"
    assert cgroups.pod_rel("p") == "pods/p"
    assert cgroups.limit_files(Limits(memory_bytes=1 << 20)) == {"memory.max": "1048576"}


def test_api_bodies() -> None:
    assert spec_from_body({"argv": ["true"], "pod": "p"}).pod == "p"
    with pytest.raises(SpecError, match="pod must be a string"):
        spec_from_body({"argv": ["true"], "pod": 3})
    c = pod_create_args({"name": "p", "memory": "64M", "pids": 20, "ports": ["8080:80"]})
    assert (c.name, c.hostname, c.limits) == ("p", None, Limits(memory_bytes=64 << 20, pids=20))
    assert (c.network, c.ports) == (None, ("8080:80",))
    for body, msg in [
        ({"name": "p", "colour": 1}, "unknown field"),
        ({"name": "p", "memory": True}, "memory must be"),
        ({"hostname": "x"}, "with a name"),
        ({"name": "p", "memory": "12Q"}, "invalid --memory"),
        ({"name": "p", "ports": "80"}, "ports must be a list"),
        ({"name": "p", "network": 1}, "network must be a string"),
    ]:
        with pytest.raises(SpecError, match=msg):
            pod_create_args(body)


def test_cli_run_pod_and_pod_commands() -> None:
    p = build_parser()
    args = p.parse_args(["run", "--pod", "p", "--", "true"])
    assert run_body(args)["pod"] == "p"
    assert "pod" not in run_body(p.parse_args(["run", "--", "true"]))
    args = p.parse_args(["pod", "create", "p", "--memory", "64M", "--hostname", "h"])
    assert (args.name, args.memory, args.hostname) == ("p", "64M", "h")
    args = p.parse_args(["pod", "create", "p", "-p", "8080:80", "--network", "n1"])
    assert (args.publish, args.network) == (["8080:80"], "n1")
    assert p.parse_args(["pod", "rm", "-f", "a", "b"]).names == ["a", "b"]


class FakePodClient:
    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    def pods(self) -> list[dict[str, object]]:
        limits = {"memory_bytes": 50331648, "cpus": None, "pids": None}
        members = [{"name": "p-infra", "state": "running"}, {"name": "web", "state": "running"}]
        return [
            {"name": "p", "state": "running", "hostname": "h", "limits": limits,
             "infra": "p-infra", "members": members}
        ]  # fmt: skip

    def pod_stats(self, name: str) -> dict[str, object]:
        row = {"memory_bytes": 3 << 20, "memory_max": None, "pids": 2, "cpu_percent": 1.5}
        return {"pod": {"name": name, **row, "memory_max": 48 << 20}, "workloads": [
            {"name": "web", **row, "cpu_percent": None}
        ]}  # fmt: skip

    def rm_pod(self, name: str, force: bool = False) -> dict[str, object]:
        self.calls.append(("rm", (name, force)))
        return {"removed": name}


def test_cli_pod_ls_stats_rm(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from agent.cli import pod as cli_pod

    fake = FakePodClient()
    monkeypatch.setattr(cli_pod, "_client", lambda args: fake)
    p = build_parser()
    for argv in (["pod", "ls"], ["pod", "stats", "p"], ["pod", "rm", "-f", "p"]):
        args = p.parse_args(argv)
        assert args.func(args) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1].split() == ["p", "running", "h", "50331648", "web"]  # the infra not listed
    assert out[3].split() == ["p", "1.5%", "3.0MiB", "/", "48.0MiB", "2"]
    assert out[4].split() == ["web", "-", "3.0MiB", "/", "max", "2"]
    assert out[5] == "p" and fake.calls == [("rm", ("p", True))]
