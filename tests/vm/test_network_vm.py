"""CNI networking end to end in the VM: published ports, names on a user network, a bandwidth
limit, nothing left behind, bad input refused, an agent SIGKILL survived.

Workloads run on the host's read-only tree (busybox httpd, wget; glibc's resolver reads the
/etc/hosts pystats binds in). Everything here is in the VM: the bridges, addresses and rules are
the ones these tests made, and the networks are removed at the end.
"""

from __future__ import annotations

import contextlib
import http.server
import os
import re
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator

import pytest

from agent.api.client import ApiError
from agent.api.network_client import NetworkClient
from tests.vm.wlagent import Agent, running_agent

pytestmark = pytest.mark.vm
BB = "/bin/busybox"
# Each cycle is ~20 plugin and iptables execs, ~15 s under TCG: 5 fit the CI budget.
CYCLES = 5


@pytest.fixture(scope="module")
def agent() -> Iterator[Agent]:
    with running_agent("pystats-net-") as a:
        try:
            yield a
        finally:
            nets = NetworkClient(a.sock)
            for w in a.client.listing(all_=True):
                with contextlib.suppress(ApiError):
                    a.client.rm(w["name"], force=True)
            for n in nets.networks():
                with contextlib.suppress(ApiError):
                    nets.rm_network(n["name"])


def _nets(a: Agent) -> NetworkClient:
    return NetworkClient(a.sock)


def _get(url: str, timeout: float = 20.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                body: bytes = r.read()
                return body.decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _httpd(a: Agent, name: str, net: str, ports: list[str] | None = None) -> dict[str, object]:
    """busybox httpd serving the workload's own /etc (so /hostname shows its hostname file)."""
    body: dict[str, object] = {
        "name": name,
        "net": net,
        "argv": [BB, "httpd", "-f", "-p", "80", "-h", "/etc"],
    }
    if ports:
        body["ports"] = ports
    return a.client.create(body)


def _veths() -> list[str]:
    out = subprocess.run(["ip", "-o", "link", "show", "type", "veth"], capture_output=True)
    return [line.split(":")[1].strip() for line in out.stdout.decode().splitlines()]


def _rules() -> list[str]:
    out = subprocess.run(["iptables-save"], capture_output=True, text=True)
    return [r for r in out.stdout.splitlines() if r.startswith("-A")]


def test_published_port_from_loopback_and_bridge_then_agent_sigkill(agent: Agent) -> None:
    info = _httpd(agent, "web", "bridge", ["8080:80"])
    net = info["network"]
    assert isinstance(net, dict) and net["network"] == "bridge"
    assert str(net["ip_address"]).startswith("10.99.")
    gw = str(net["gateway"])
    assert _get("http://127.0.0.1:8080/hostname") == "web\n"
    assert _get(f"http://{gw}:8080/hostname") == "web\n"
    assert _get(f"http://{str(net['ip_address']).split('/')[0]}:80/hostname") == "web\n"
    port = _nets(agent).port("web")
    assert port["ports"][0]["host_port"] == 8080 and port["ports"][0]["container_port"] == 80
    # The agent dies; the workload and its network do not, and a new agent keeps them.
    agent.sigkill()
    assert _get("http://127.0.0.1:8080/hostname") == "web\n"
    agent.start()
    assert agent.client.inspect("web")["state"] == "running"
    assert _get("http://127.0.0.1:8080/hostname") == "web\n"
    # The /etc files pystats wrote, bound in.
    assert "nameserver" in _get("http://127.0.0.1:8080/resolv.conf")
    assert "\tweb" in _get("http://127.0.0.1:8080/hosts")


def test_two_workloads_on_a_user_network_reach_each_other_by_name(agent: Agent) -> None:
    nets = _nets(agent)
    created = nets.create_network("tnet")
    assert created["subnet"].startswith("10.100.")
    _httpd(agent, "alpha", "tnet")
    agent.client.create(
        {
            "name": "beta",
            "net": "tnet",
            "argv": ["sh", "-c", f"getent hosts alpha; {BB} wget -q -O - http://alpha/hostname"],
        }
    )
    out = agent.output("beta")
    assert "alpha\n" in out.splitlines()[-1] + "\n", out
    ip_alpha = agent.client.inspect("alpha")["network"]["ip_address"].split("/")[0]
    assert out.startswith(ip_alpha), out
    assert agent.client.inspect("beta")["exit_code"] == 0
    # alpha's /etc/hosts was rewritten in place once beta arrived (and after it left).
    hosts = _get(f"http://{ip_alpha}/hosts")
    assert "alpha" in hosts
    inspect = nets.inspect_network("tnet")
    assert set(inspect["workloads"]) >= {"alpha"}
    with pytest.raises(ApiError, match="in use"):
        nets.rm_network("tnet")
    agent.client.rm("beta")
    agent.client.rm("alpha", force=True)
    nets.rm_network("tnet")
    assert "tnet" not in [n["name"] for n in nets.networks()]


class _Blob(http.server.BaseHTTPRequestHandler):
    size = 375_000  # 3 s at 1 mbit

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(self.size))
        self.end_headers()
        self.wfile.write(b"x" * self.size)

    def log_message(self, *args: object) -> None:
        pass


def test_network_rate_1mbit_within_20_percent(agent: Agent) -> None:
    # Any bridge workload makes the bridge; the server listens on its gateway address.
    info = agent.client.create({"name": "gw", "net": "bridge", "argv": ["sleep", "60"]})
    gw = str(info["network"]["gateway"])
    srv = http.server.ThreadingHTTPServer((gw, 0), _Blob)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        url = f"http://{gw}:{srv.server_address[1]}/"
        agent.client.create(
            {
                "name": "slow",
                "net": "bridge",
                "network_rate": "1mbit",
                "argv": [BB, "time", BB, "wget", "-q", "-O", "/dev/null", url],
            }
        )
        out = agent.output("slow")
    finally:
        srv.shutdown()
        srv.server_close()
    m = re.search(r"real\s+(\d+)m\s*([\d.]+)s", out)
    assert m, out
    seconds = int(m.group(1)) * 60 + float(m.group(2))
    expected = _Blob.size * 8 / 1_000_000
    print(f"--network-rate 1mbit: {_Blob.size} bytes in {seconds:.2f} s (expected {expected} s)")
    assert expected * 0.8 <= seconds <= expected * 1.2, f"{seconds:.2f} s, expected {expected} s"
    agent.client.rm("slow")
    agent.client.rm("gw", force=True)


def test_run_rm_cycles_leave_nothing_behind(agent: Agent) -> None:
    agent.client.create({"name": "warm", "net": "bridge", "ports": ["18081:80"], "argv": ["true"]})
    agent.wait_state("warm", {"exited"})
    agent.client.rm("warm")
    veths, rules = _veths(), _rules()
    ipam = os.path.join(agent.state, "network", "ipam", "pystats-bridge")
    ips_before = set(os.listdir(ipam))
    took = []
    for i in range(CYCLES):
        t0 = time.monotonic()
        agent.client.create(
            {"name": f"cyc{i}", "net": "bridge", "ports": ["18081:80"], "argv": ["true"]}
        )
        agent.wait_state(f"cyc{i}", {"exited"})
        agent.client.rm(f"cyc{i}")
        took.append(round(time.monotonic() - t0, 1))
    print(f"run/rm cycles took {took} s")
    assert _veths() == veths
    assert sorted(_rules()) == sorted(rules)
    assert set(os.listdir(ipam)) == ips_before
    # Only the still-running web's namespace is left.
    assert set(os.listdir(os.path.join(agent.state, "network", "netns"))) <= {"web"}


def test_bad_input_is_refused_with_nothing_half_created(agent: Agent) -> None:
    before = {w["name"] for w in agent.client.listing(all_=True)}
    r = agent.cli("run", "--name", "bad1", "--net", "bridge", "-p", "99999:80", "--", "true")
    assert r.returncode != 0 and "99999" in r.stderr and "Traceback" not in r.stderr, r.stderr
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(ApiError, match="already in use"):
            agent.client.create(
                {"name": "bad2", "net": "bridge", "ports": [f"{port}:80"], "argv": ["true"]}
            )
    with pytest.raises(ApiError, match=r"already published|already in use"):  # web has 8080
        agent.client.create({"name": "bad3", "net": "bridge", "ports": ["8080:80"], "argv": ["x"]})
    with pytest.raises(ApiError, match="no such network"):
        agent.client.create({"name": "bad4", "net": "nosuch", "argv": ["true"]})
    with pytest.raises(ApiError, match="overlaps"):
        _nets(agent).create_network("clash", "10.99.1.0/24")
    with pytest.raises(ApiError, match="need a network"):
        agent.client.create({"name": "bad5", "ports": ["8082:80"], "argv": ["true"]})
    assert {w["name"] for w in agent.client.listing(all_=True)} == before
    attach = os.listdir(os.path.join(agent.state, "network", "attach"))
    assert not [a for a in attach if a.startswith("bad")]
    assert "clash" not in [n["name"] for n in _nets(agent).networks()]
