#!/usr/bin/env python3
"""Start latency of a workload on the bridge with one published port vs --net none and vs podman
(`podman run -d -p`, its CNI backend), and the network's share of pystats's start (netns +
loopback + the CNI ADD of bridge, firewall, portmap).

Start latency, interleaved round by round, same boot, every workload `/bin/sleep 30` in the same
busybox rootfs (pystats `--rootfs`, podman `--rootfs`: no image layers on either side):
  - pystats API: the create call on a dev-server agent (it returns once the shim recorded the
    run as started);
  - pystats CLI: the wall time of `pystats run -d ...` (the console script, interpreter start
    included; `pystats ps`, timed alike, is the CLI's fixed cost);
  - podman: the wall time of `podman run -d ...` (returns once crun started the container).
The CNI share is measured in the same boot with the agent's own NetworkService (prepare,
attach: netns + loopback + the chain; then release) on a separate state dir.

podman in the test VM (the guest's root is the host's, read-only): the whole bench re-executes
itself in a private mount namespace (unshare -m --propagation private) with tmpfs over
/var/lib (for /var/lib/cni), /etc/cni/net.d and /run/netns; podman gets containers.conf through
CONTAINERS_CONF (network_backend cni, cni_plugin_dirs /usr/lib/cni), --root/--runroot/--tmpdir
under a scratch dir, --cgroup-manager cgroupfs, --runtime crun. Its containers, the cni-podman0
bridge and cgroups are removed at the end (podman rm -f, system reset); the mounts go with the
namespace.

Run in the test VM (network namespaces only there):
    python -c 'import sys; sys.path.insert(0, "scripts"); import vmrun; \
        sys.exit(vmrun.boot(".venv/bin/python benchmarks/network_bench.py --n 6", "/tmp/nb"))'
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The CLI as users run it: the console script next to this interpreter.
PYSTATS = [os.path.join(os.path.dirname(sys.executable), "pystats")]
sys.path.insert(0, REPO)

from agent.api.network_client import NetworkClient  # noqa: E402
from tests.vm.wlagent import Agent, busybox_rootfs, running_agent  # noqa: E402
from workloads.network import cni, netns  # noqa: E402
from workloads.network.record import NetRequest  # noqa: E402
from workloads.network.service import NetworkService  # noqa: E402
from workloads.runtime.spec import WorkloadSpec  # noqa: E402

MNTNS_ENV = "PYSTATS_NETBENCH_MNTNS"
PODMAN_CGROUP = "/pystats-netbench-podman"
CONTAINERS_CONF = """[network]
network_backend = "cni"
cni_plugin_dirs = ["/usr/lib/cni"]
network_config_dir = "{cni}"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "none"
runtime = "crun"
"""


def _ms(xs: list[float]) -> str:
    if not xs:
        return "no data"
    xs = sorted(xs)
    p90 = xs[min(len(xs) - 1, int(len(xs) * 0.9))]
    return f"p50 {statistics.median(xs) * 1e3:7.1f} ms  p90 {p90 * 1e3:7.1f} ms  (n={len(xs)})"


def _private_mounts() -> None:
    """tmpfs where podman's CNI backend writes on a read-only root (this namespace only)."""
    for path in ("/var/lib", "/etc/cni/net.d"):
        if os.path.isdir(path):
            subprocess.run(["mount", "-t", "tmpfs", "tmpfs", path], check=True)
    os.makedirs("/var/lib/cni", exist_ok=True)
    try:
        os.makedirs("/run/netns", exist_ok=True)
    except OSError:  # /run not writable either: a tmpfs over it (this namespace only)
        subprocess.run(["mount", "-t", "tmpfs", "tmpfs", "/run"], check=True)
        os.makedirs("/run/netns")
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", "/run/netns"], check=True)


class Podman:
    def __init__(self, work: str) -> None:
        self.work = work
        for d in ("cni", "tmp"):
            os.makedirs(os.path.join(work, d))
        conf = os.path.join(work, "containers.conf")
        with open(conf, "w") as f:
            f.write(CONTAINERS_CONF.format(cni=os.path.join(work, "cni")))
        self.env = dict(os.environ, CONTAINERS_CONF=conf, TMPDIR=os.path.join(work, "tmp"))
        self.base = ["podman", "--root", f"{work}/root", "--runroot", f"{work}/run",
                     "--tmpdir", f"{work}/libpod", "--network-config-dir", f"{work}/cni",
                     "--storage-driver", "vfs", "--cgroup-manager", "cgroupfs",
                     "--runtime", "crun", "--events-backend", "none"]  # fmt: skip
        self.failed = ""

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self.base, *args], env=self.env, capture_output=True, text=True)

    def start(self, name: str, rootfs: str, net: list[str]) -> float | None:
        t0 = time.monotonic()
        # Not captured through pipes: the detached conmon could hold them open.
        with open(os.path.join(self.work, "out.log"), "w+") as out:
            r = subprocess.run([*self.base, "run", "-d", "--name", name, "--cgroup-parent",
                                PODMAN_CGROUP, *net, "--rootfs", rootfs, "/bin/sleep", "30"],
                               env=self.env, stdout=out, stderr=out)  # fmt: skip
            dt = time.monotonic() - t0
            if r.returncode:
                out.seek(0)
                self.failed = self.failed or f"podman run {' '.join(net)}: {out.read()[-800:]}"
                return None
        return dt

    def clean(self) -> None:
        self.run("rm", "-a", "-f", "-t", "0")
        self.run("system", "reset", "-f")
        subprocess.run(["ip", "link", "del", "cni-podman0"], capture_output=True)
        for top in (PODMAN_CGROUP, "/libpod_parent"):  # cgroupfs leaves the parents
            for d, _, _ in sorted(os.walk("/sys/fs/cgroup" + top), reverse=True):
                with contextlib.suppress(OSError):
                    os.rmdir(d)


@contextlib.contextmanager
def podman_env() -> Iterator[Podman | None]:
    if shutil.which("podman") is None:
        yield None
        return
    work = tempfile.mkdtemp(prefix="pystats-netbench-podman-")
    p = Podman(work)
    try:
        yield p
    finally:
        p.clean()
        shutil.rmtree(work, ignore_errors=True)


def cli_start(a: Agent, name: str, rootfs: str, net: list[str]) -> float:
    t0 = time.monotonic()
    r = subprocess.run([*PYSTATS, "run", "-d", "--name", name,
                        "--rootfs", rootfs, *net, "--", "/bin/sleep", "30"], cwd=REPO,
                       env=dict(os.environ, PYSTATS_SOCKET=a.sock), stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True)  # fmt: skip
    dt = time.monotonic() - t0
    if r.returncode:
        raise RuntimeError(f"pystats run -d {' '.join(net)}: {r.stderr.strip()}")
    return dt


def starts(n: int) -> dict[str, list[float]]:
    """Interleaved rounds of every kind; round 0 is a warm-up (bridges, chains, modules)."""
    out: dict[str, list[float]] = {}
    rootfs = busybox_rootfs()
    os.symlink("busybox", os.path.join(rootfs, "bin", "sleep"))
    os.mkdir(os.path.join(rootfs, "etc"))
    with running_agent("pystats-netbench-") as a, podman_env() as pm:
        c = a.client
        for rnd in range(n + 1):
            got: dict[str, float | None] = {}
            for kind, body in (("none", {"net": "none"}),
                               ("bridge", {"net": "bridge", "ports": ["18999:80"]})):  # fmt: skip
                name = f"nb-{kind}-{rnd}"
                t0 = time.monotonic()
                c.create({"name": name, "rootfs": rootfs, "argv": ["/bin/sleep", "30"], **body})
                got[f"pystats API {kind}"] = time.monotonic() - t0
                c.rm(name, force=True)
            for kind, net in (("none", ["--net", "none"]),
                              ("bridge", ["--net", "bridge", "-p", "18998:80"])):  # fmt: skip
                name = f"nbc-{kind}-{rnd}"
                got[f"pystats CLI {kind}"] = cli_start(a, name, rootfs, net)
                c.rm(name, force=True)
            # The CLI's fixed cost (interpreter, imports, one API call): `pystats ps`.
            t0 = time.monotonic()
            subprocess.run([*PYSTATS, "ps"], cwd=REPO, check=True,
                           env=dict(os.environ, PYSTATS_SOCKET=a.sock),
                           stdout=subprocess.DEVNULL)  # fmt: skip
            got["pystats CLI ps"] = time.monotonic() - t0
            if pm is not None:
                for kind, net in (("none", ["--net", "none"]),
                                  ("bridge", ["-p", "18997:80"])):  # fmt: skip
                    name = f"pm-{kind}-{rnd}"
                    got[f"podman {kind}"] = pm.start(name, rootfs, net)
                    pm.run("rm", "-f", "-t", "0", name)
            if rnd:
                for key, dt in got.items():
                    if dt is not None:
                        out.setdefault(key, []).append(dt)
        for net in [x["name"] for x in NetworkClient(a.sock).networks()]:
            NetworkClient(a.sock).rm_network(net)
        if pm is not None and pm.failed:
            print(pm.failed, file=sys.stderr)
    shutil.rmtree(rootfs, ignore_errors=True)
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=15)
    args = ap.parse_args()
    if os.environ.get(MNTNS_ENV) != "1":
        os.environ[MNTNS_ENV] = "1"
        argv = ["unshare", "-m", "--propagation", "private", sys.executable, *sys.argv]
        os.execvp("unshare", argv)
    _private_mounts()
    st = starts(args.n)
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
                NetRequest(ports=("18995:80",)),
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
    for key in sorted(st):
        print(f"start, {key:<22} {_ms(st[key])}")
    print(f"attach (netns+lo+CNI ADD)    {_ms(add_s)}")
    print(f"release (CNI DEL+netns)      {_ms(rel_s)}")
    for key, xs in sorted(parts.items()):
        print(f"  {key:<26} {_ms(xs[1:])}")
    bridge = statistics.median(st["pystats API bridge"])
    extra = bridge - statistics.median(st["pystats API none"])
    share = statistics.median(add_s) / bridge * 100
    print(f"bridge - none at p50: {extra * 1e3:.1f} ms; attach is {share:.0f} % of a bridge start")
    if st.get("podman bridge"):
        pod = statistics.median(st["podman bridge"])
        cli = statistics.median(st["pystats CLI bridge"])
        print(f"bridge -p p50: pystats API {bridge * 1e3:.0f} ms, CLI {cli * 1e3:.0f} ms, "
              f"podman {pod * 1e3:.0f} ms; CLI/podman {cli / pod:.2f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
