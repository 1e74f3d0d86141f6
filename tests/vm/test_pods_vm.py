"""Pods in the VM (issue 16.5): workloads of a pod talk over 127.0.0.1 and share a hostname;
--net container:NAME joins a pod's network; the pod's memory.max caps the sum of its
workloads; pod rm leaves no workload, cgroup, mount or namespace file behind.

One dev-server agent for the whole module (a boot of TCG time is precious)."""

from __future__ import annotations

import contextlib
import os
import shutil
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from agent.api.client import ApiError
from agent.api.pod_client import PodClient
from tests.vm import wlagent

pytestmark = pytest.mark.vm
MiB = 1 << 20
POD_MEMORY = 48 * MiB


@pytest.fixture(scope="module")
def agent() -> Iterator[wlagent.Agent]:
    with wlagent.running_agent("pystats-pods-") as a:
        try:
            yield a
        finally:
            with contextlib.suppress(Exception):  # a failed test's pods: not left mounted
                for p in PodClient(a.sock).pods():
                    PodClient(a.sock).rm_pod(p["name"], force=True)


@pytest.fixture(scope="module")
def rootfs() -> Iterator[str]:
    r = wlagent.busybox_rootfs()
    for tool in ("httpd", "wget", "dd", "sleep"):
        os.symlink("busybox", os.path.join(r, "bin", tool))
    os.makedirs(os.path.join(r, "www"))
    with open(os.path.join(r, "www", "index.html"), "w") as f:
        f.write("hello from the pod\n")
    yield r
    shutil.rmtree(r, ignore_errors=True)


def _run(a: wlagent.Agent, name: str, rootfs: str, cmd: str, **kw: Any) -> dict[str, Any]:
    return a.client.create({"name": name, "argv": ["sh", "-c", cmd], "rootfs": rootfs, **kw})


def _finished(a: wlagent.Agent, name: str) -> tuple[dict[str, Any], str]:
    info = a.wait_state(name, {"exited"}, timeout=90)
    return info, a.output(name)


def _mounts() -> str:
    with open("/proc/self/mountinfo") as f:
        return f.read()


def _read(path: str) -> str:
    with open(path) as f:
        return f.read().strip()


def test_pod_members_share_localhost_and_hostname(agent: wlagent.Agent, rootfs: str) -> None:
    pods = PodClient(agent.sock)
    r = agent.cli("pod", "create", "web", "--hostname", "podhost")
    assert r.returncode == 0, r.stderr
    info = pods.inspect_pod("web")
    assert info["state"] == "running", info
    assert [m["name"] for m in info["members"]] == ["web-infra"]
    for path in info["namespaces"].values():  # bind-mounted nsfs files
        assert f" {path} " in _mounts(), path

    _run(agent, "srv", rootfs, "hostname; exec httpd -f -p 127.0.0.1:8080 -h /www", pod="web")
    assert agent.client.inspect("srv")["cgroup"] == "pods/web/srv"
    # the server may need a moment under TCG: the client retries
    fetch = (
        "for i in 1 2 3 4 5 6 7 8 9 10; do wget -q -O - http://127.0.0.1:8080/ && break;"
        " sleep 1; done; hostname"
    )
    _run(agent, "cli", rootfs, fetch, pod="web")
    res, out = _finished(agent, "cli")
    assert res["exit_code"] == 0, (res, out)
    assert "hello from the pod" in out and out.strip().endswith("podhost"), out
    srv_log = b"".join(agent.client.logs("srv")).decode()
    assert srv_log.splitlines()[0] == "podhost", srv_log

    # --net container:NAME (not in the pod) joins its network, keeps its own hostname
    _run(
        agent, "peer", rootfs, "wget -q -O - http://127.0.0.1:8080/; hostname", net="container:srv"
    )
    res, out = _finished(agent, "peer")
    assert res["exit_code"] == 0 and "hello from the pod" in out, (res, out)
    assert out.strip().endswith("peer"), out
    # outside the pod nothing listens on the host's 127.0.0.1:8080
    _run(agent, "outsider", rootfs, "wget -q -T 3 -O - http://127.0.0.1:8080/", net="host")
    res, _ = _finished(agent, "outsider")
    assert res["exit_code"] != 0

    with pytest.raises(ApiError, match="--userns: not available in a pod"):
        agent.client.create({"argv": ["true"], "rootfs": rootfs, "pod": "web", "userns": True})

    # The namespaces are the pod's files: they outlive its infra and the agent. The infra is
    # killed, the agent SIGKILLed and started again, the infra started: a new workload still
    # reaches srv (which kept running in the same namespaces) under the pod's hostname.
    assert agent.cli("kill", "web-infra").returncode == 0
    agent.sigkill()
    agent.start()
    info = pods.inspect_pod("web")
    members = {m["name"]: m["state"] for m in info["members"]}
    assert members == {"web-infra": "exited", "srv": "running", "cli": "exited"}, members
    assert info["state"] == "degraded"  # podman's word for a pod partly up
    assert agent.cli("start", "web-infra").returncode == 0
    assert pods.inspect_pod("web")["members"][0] == {"name": "web-infra", "state": "running"}
    _run(agent, "cli2", rootfs, fetch, pod="web")
    res, out = _finished(agent, "cli2")
    assert res["exit_code"] == 0 and "hello from the pod" in out, (res, out)
    assert out.strip().endswith("podhost"), out

    # its infra goes only with the pod
    r = agent.cli("rm", "-f", "web-infra")
    assert r.returncode != 0 and "pystats pod rm web" in r.stderr, r.stderr
    # rm is refused while a workload of the pod runs, then -f takes all down
    r = agent.cli("pod", "rm", "web")
    assert r.returncode != 0 and "running workloads (srv)" in r.stderr, r.stderr
    pod_cg = info["cgroup_path"]
    ns_dir = os.path.dirname(info["namespaces"]["net"])
    r = agent.cli("pod", "rm", "-f", "web")
    assert r.returncode == 0, r.stderr
    names = {w["name"] for w in agent.client.listing(all_=True)}
    assert not names & {"web-infra", "srv", "cli", "cli2"}, names
    assert not os.path.exists(pod_cg)
    assert not os.path.exists(ns_dir)
    assert "/pods/web/" not in _mounts()
    for n in ("peer", "outsider"):
        agent.client.rm(n)


def test_pod_memory_limit_caps_the_sum(agent: wlagent.Agent, rootfs: str) -> None:
    pods = PodClient(agent.sock)
    pods.create_pod({"name": "mem", "memory": str(POD_MEMORY)})
    info = pods.inspect_pod("mem")
    cg = info["cgroup_path"]
    assert _read(os.path.join(cg, "memory.max")) == str(POD_MEMORY)
    # dd's 30 MiB buffer, filled from /dev/zero, stays resident while it blocks on the pipe:
    # one fits in the pod's 48 MiB, two do not.
    hog = "dd if=/dev/zero bs=30M count=1 2>/dev/null | sleep 600"
    _run(agent, "hog1", rootfs, hog, pod="mem")
    deadline = time.monotonic() + 60
    while int(_read(os.path.join(cg, "memory.current"))) < 25 * MiB:
        assert time.monotonic() < deadline, _read(os.path.join(cg, "memory.current"))
        time.sleep(0.2)
    assert os.path.isdir(os.path.join(cg, "hog1"))  # the workload's cgroup is below the pod's
    assert _read(os.path.join(cg, "hog1", "memory.max")) == "max"  # no limit of its own
    _run(agent, "hog2", rootfs, hog, pod="mem")
    deadline = time.monotonic() + 60
    events = ""
    while time.monotonic() < deadline:
        events = _read(os.path.join(cg, "memory.events"))
        if "oom_kill 0" not in events:
            break
        time.sleep(0.2)
    assert "oom_kill 0" not in events, events
    if os.path.exists(os.path.join(cg, "memory.peak")):  # Linux 5.19
        assert int(_read(os.path.join(cg, "memory.peak"))) <= POD_MEMORY
    stats = pods.pod_stats("mem")
    assert stats["pod"]["memory_max"] == POD_MEMORY
    assert {w["name"] for w in stats["workloads"]} == {"mem-infra", "hog1", "hog2"}
    pods.stop_pod("mem", grace=1)
    assert pods.inspect_pod("mem")["state"] == "exited"
    pods.rm_pod("mem")
    assert not os.path.exists(cg)
    assert pods.pods() == []


def _get(url: str) -> str:
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                return str(r.read().decode())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def test_pod_publishes_a_port_from_its_network(agent: wlagent.Agent, rootfs: str) -> None:
    pods = PodClient(agent.sock)
    r = agent.cli("pod", "create", "pub", "-p", "18080:80", "--hostname", "pubhost")
    assert r.returncode == 0, r.stderr
    info = pods.inspect_pod("pub")
    assert info["network"]["network"] == "bridge" and info["network"]["ip_address"], info
    _run(agent, "site", rootfs, "exec httpd -f -p 80 -h /www", pod="pub")
    assert _get("http://127.0.0.1:18080/") == "hello from the pod\n"
    # stopping its infra would DEL the network under site: refused, pod stop named
    r = agent.cli("stop", "pub-infra")
    assert r.returncode != 0 and "pystats pod stop pub" in r.stderr, r.stderr
    netns = info["namespaces"]["net"]
    assert f" {netns} " in _mounts()
    r = agent.cli("pod", "rm", "-f", "pub")
    assert r.returncode == 0, r.stderr
    assert f" {netns} " not in _mounts() and not os.path.exists(netns)
    with pytest.raises(OSError), urllib.request.urlopen("http://127.0.0.1:18080/", timeout=3):
        pass
