#!/usr/bin/env python3
"""Start latency of a workload on the bridge with one published port vs --net none, and the
network's share of it (netns + loopback + the CNI ADD of bridge, firewall, portmap).

Start latency: the API's create call (it returns once the shim recorded the run as started) on
a dev-server agent, interleaved none / bridge -p, host-root workloads running `sleep`. The CNI
share is measured in the same boot with the agent's own NetworkService (prepare, attach: netns
+ loopback + the chain; then release) on a separate state dir.

Run in the test VM (network namespaces only there):
    python -c 'import sys; sys.path.insert(0, "scripts"); import vmrun; \
        sys.exit(vmrun.boot(".venv/bin/python benchmarks/network_bench.py --n 15", "/tmp/nb"))'
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from typing import Any

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from agent.api.network_client import NetworkClient  # noqa: E402
from tests.vm.wlagent import running_agent  # noqa: E402
from workloads.network import cni, netns  # noqa: E402
from workloads.network.record import NetRequest  # noqa: E402
from workloads.network.service import NetworkService  # noqa: E402
from workloads.runtime.spec import WorkloadSpec  # noqa: E402


def _ms(xs: list[float]) -> str:
    xs = sorted(xs)
    p90 = xs[min(len(xs) - 1, int(len(xs) * 0.9))]
    return f"p50 {statistics.median(xs) * 1e3:7.1f} ms  p90 {p90 * 1e3:7.1f} ms  (n={len(xs)})"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=15)
    args = ap.parse_args()
    none_s: list[float] = []
    bridge_s: list[float] = []
    with running_agent("pystats-netbench-") as a:
        c = a.client
        # One warm-up of each: the bridge, iptables chains and modules appear on the first.
        kinds: list[dict[str, Any]] = [{"net": "none"}, {"net": "bridge", "ports": ["18999:80"]}]
        for i, body in enumerate(kinds * (args.n + 1)):
            name = f"nb{i}"
            t0 = time.monotonic()
            c.create({"name": name, "argv": ["sleep", "30"], **body})
            dt = time.monotonic() - t0
            if i >= 2:
                (none_s if body["net"] == "none" else bridge_s).append(dt)
            c.rm(name, force=True)
        for n in [n["name"] for n in NetworkClient(a.sock).networks()]:
            NetworkClient(a.sock).rm_network(n)
    add_s: list[float] = []
    rel_s: list[float] = []
    # Where an attach's time goes: each plugin run and the netns creation, timed by wrapping.
    parts: dict[str, list[float]] = {}
    real_exec, real_create = cni.exec_plugin, netns.create

    def timed_exec(command: str, inv: cni.Invocation, config: dict[str, object]) -> Any:
        t0 = time.monotonic()
        try:
            return real_exec(command, inv, config)
        finally:
            parts.setdefault(f"{command} {config.get('type')}", []).append(time.monotonic() - t0)

    def timed_create(path: str) -> None:
        t0 = time.monotonic()
        real_create(path)
        parts.setdefault("netns create", []).append(time.monotonic() - t0)

    cni.exec_plugin = timed_exec
    netns.create = timed_create
    state = tempfile.mkdtemp(prefix="pystats-netbench-svc-")
    svc = NetworkService(state, default_subnet="10.98.0.0/16")
    try:
        for i in range(args.n + 1):
            spec = svc.prepare(
                WorkloadSpec(name=f"s{i}", argv=["true"], net="bridge"),
                NetRequest(ports=("18998:80",)),
            )
            t0 = time.monotonic()
            svc.attach(spec)
            t1 = time.monotonic()
            svc.release(spec.name)
            t2 = time.monotonic()
            if i:
                add_s.append(t1 - t0)
                rel_s.append(t2 - t1)
        svc.remove("bridge")
    finally:
        shutil.rmtree(state, ignore_errors=True)
    print(f"start, --net none            {_ms(none_s)}")
    print(f"start, --net bridge -p 1 port {_ms(bridge_s)}")
    print(f"attach (netns+lo+CNI ADD)    {_ms(add_s)}")
    print(f"release (CNI DEL+netns)      {_ms(rel_s)}")
    for key, xs in sorted(parts.items()):
        print(f"  {key:<26} {_ms(xs[1:])}")
    extra = statistics.median(bridge_s) - statistics.median(none_s)
    share = statistics.median(add_s) / statistics.median(bridge_s) * 100
    print(f"bridge - none at p50: {extra * 1e3:.1f} ms; attach is {share:.0f} % of a bridge start")
    return 0


if __name__ == "__main__":
    sys.exit(main())
