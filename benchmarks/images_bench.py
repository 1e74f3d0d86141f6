#!/usr/bin/env python3
"""Images: pull + unpack and run-from-image start, pystats vs skopeo+umoci, podman and crun.

One boot, one registry (Debian's docker-registry on 127.0.0.1, plain HTTP), one image built
here by umoci from busybox-static plus MB of random data over several layers
(tests/vm/images_build.py). Timed, each from an empty store:
  - pull + unpack: `pystats pull` (the agent's work; peak RSS of a fresh dev-server agent and
    of the CLI), `skopeo copy docker://... oci:` + `umoci unpack`, `podman pull`;
  - start latency (the request until the workload runs, overlay mount included):
    `pystats run -d IMAGE` (the API's create, which returns once the process is running) vs
    `crun run --detach` of the bundle umoci unpacked, and `podman run -d`.
Run in the test VM: scripts/vmrun.py ... python benchmarks/images_bench.py [--mb 64 --n 10].
On the host (--host: a scratch cgroup of the host's controller-less tree; no start latency,
crun needs controllers): python benchmarks/images_bench.py --host --mb 48 --layers 3 --n 5.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The CLI as users run it: the console script next to this interpreter.
PYSTATS = [os.path.join(os.path.dirname(sys.executable), "pystats")]
sys.path.insert(0, REPO)

from tests import envcheck  # noqa: E402
from tests.vm import images_build as build  # noqa: E402
from tests.vm.wlagent import Agent  # noqa: E402

CPU: dict[str, float] = {}  # the last timed() command's CPU seconds (user + system)


def timed(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, int]:
    """Wall seconds and peak RSS (KiB) of one command, by GNU time (a small parent: the
    rusage of a child forked from this interpreter would count the interpreter's pages);
    its CPU seconds in CPU["last"] (steadier than wall time on a busy machine)."""
    t0 = time.monotonic()
    r = subprocess.run(["/usr/bin/time", "-f", "maxrss=%M cpu=%U %S", *argv], env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    wall = time.monotonic() - t0
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: exit {r.returncode}: {r.stderr.strip()[-500:]}")
    tail = r.stderr.rsplit("maxrss=", 1)[1].split()
    CPU["last"] = float(tail[1].removeprefix("cpu=")) + float(tail[2])
    return wall, int(tail[0])


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a running process (and its waited-for children)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def hwm_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def fresh_agent(work: str, cg: str, tag: str) -> Agent:
    state = os.path.join(work, f"state-{tag}")
    os.mkdir(state)
    a = Agent(cg, state, os.path.join(state, "api.sock"))
    a.start()
    return a


def bench_pulls(work: str, cg: str, ref: str, host: str, n: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {k: [] for k in
                                   ("pystats_s", "pystats_agent_kib", "pystats_cli_kib",
                                    "skopeo_umoci_s", "skopeo_kib", "umoci_kib",
                                    "podman_s", "podman_kib")}  # fmt: skip
    for i in range(n):
        a = fresh_agent(work, cg, f"pull{i}")
        try:
            assert a.proc is not None
            base = hwm_kib(a.proc.pid)
            env = dict(os.environ, PYSTATS_SOCKET=a.sock)
            cpu0 = cpu_s(a.proc.pid)
            wall, kib = timed([*PYSTATS, "pull", "-q",
                               "--insecure-registry", host, ref], env)  # fmt: skip
            out.setdefault("pystats_cpu", []).append(CPU["last"] + cpu_s(a.proc.pid) - cpu0)
            out["pystats_s"].append(wall)
            out["pystats_cli_kib"].append(kib)
            out["pystats_agent_kib"].append(hwm_kib(a.proc.pid))
            out.setdefault("agent_idle_kib", []).append(base)
        finally:
            a.stop()
        d = tempfile.mkdtemp(dir=work)
        w1, k1 = timed(["skopeo", "copy", "--quiet", "--src-tls-verify=false",
                        f"docker://{ref}", f"oci:{d}/layout:x"])  # fmt: skip
        c1 = CPU["last"]
        w2, k2 = timed(["umoci", "unpack", "--image", f"{d}/layout:x", f"{d}/bundle"])
        out.setdefault("skopeo_umoci_cpu", []).append(c1 + CPU["last"])
        out["skopeo_umoci_s"].append(w1 + w2)
        out["skopeo_kib"].append(k1)
        out["umoci_kib"].append(k2)
        shutil.rmtree(d)
        proot = os.path.join(work, f"podman{i}")
        if shutil.which("podman"):
            try:
                w, k = timed([*_podman(proot), "pull", "-q", "--tls-verify=false", ref])
                out.setdefault("podman_cpu", []).append(CPU["last"])
                out["podman_s"].append(w)
                out["podman_kib"].append(k)
            except RuntimeError as e:
                print(f"podman pull failed: {e}", file=sys.stderr)
            with contextlib.suppress(Exception):
                subprocess.run([*_podman(proot), "system", "reset", "-f"], capture_output=True)
            shutil.rmtree(proot, ignore_errors=True)
    return out


def _podman(root: str) -> list[str]:
    return ["podman", "--root", f"{root}/root", "--runroot", f"{root}/run",
            "--storage-driver", "overlay", "--cgroup-manager", "cgroupfs",
            "--events-backend", "none"]  # fmt: skip


def bench_starts(work: str, cg: str, ref: str, host: str, n: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"pystats_run_s": [], "crun_run_s": []}
    a = fresh_agent(work, cg, "run")
    try:
        env = dict(os.environ, PYSTATS_SOCKET=a.sock)
        timed([*PYSTATS, "pull", "-q", "--insecure-registry", host,
               ref], env)  # fmt: skip
        bundle = os.path.join(work, "crun-bundle")
        d = os.path.join(work, "crun-layout")
        timed(["skopeo", "copy", "--quiet", "--src-tls-verify=false", f"docker://{ref}",
               f"oci:{d}:x"])  # fmt: skip
        timed(["umoci", "unpack", "--image", f"{d}:x", bundle])
        with open(os.path.join(bundle, "config.json")) as f:
            spec = json.load(f)
        spec["process"]["args"] = ["/bin/sleep", "60"]
        spec["process"]["terminal"] = False
        with open(os.path.join(bundle, "config.json"), "w") as f:
            json.dump(spec, f)
        for i in range(n):
            t0 = time.monotonic()
            a.client.create({"name": f"r{i}", "image": ref, "argv": ["/bin/sleep", "60"]})
            out["pystats_run_s"].append(time.monotonic() - t0)
            a.client.rm(f"r{i}", force=True)
            t0 = time.monotonic()
            # Not captured: the detached container keeps pipes open, run() would wait on them.
            subprocess.run(["crun", "run", "--detach", "--bundle", bundle, f"c{i}"], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
            out["crun_run_s"].append(time.monotonic() - t0)
            subprocess.run(["crun", "delete", "-f", f"c{i}"], capture_output=True)
        _podman_starts(work, ref, n, out)
    finally:
        with contextlib.suppress(Exception):
            for w in a.client.listing(all_=True):
                a.client.rm(w["name"], force=True)
        a.stop()
    return out


def _podman_starts(work: str, ref: str, n: int, out: dict[str, list[float]]) -> None:
    """`podman run -d` (crun, cgroupfs, no network: as the others) of the pulled image."""
    if not shutil.which("podman"):
        return
    proot = os.path.join(work, "podman-run")
    try:
        timed([*_podman(proot), "pull", "-q", "--tls-verify=false", ref])
        out["podman_run_s"] = []
        for i in range(n):
            t0 = time.monotonic()
            subprocess.run([*_podman(proot), "run", "-d", "--network", "none", "--name",
                            f"p{i}", ref, "/bin/sleep", "60"], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
            out["podman_run_s"].append(time.monotonic() - t0)
            subprocess.run([*_podman(proot), "rm", "-f", "-t", "0", f"p{i}"],
                           capture_output=True)  # fmt: skip
    except (RuntimeError, subprocess.CalledProcessError) as e:
        print(f"podman run failed: {e}", file=sys.stderr)
    finally:
        with contextlib.suppress(Exception):
            subprocess.run([*_podman(proot), "system", "reset", "-f"], capture_output=True)
        shutil.rmtree(proot, ignore_errors=True)


def pq(xs: list[float], q: float) -> float:
    """The q-quantile, nearest rank (p90 of 10 samples: the 9th)."""
    if not xs:
        return float("nan")
    ys = sorted(xs)
    return ys[min(len(ys) - 1, max(0, int(q * len(ys) + 0.5) - 1))]


def p50(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=64, help="random data in the image (MB)")
    ap.add_argument("--layers", type=int, default=4, help="layers holding it")
    ap.add_argument("--n", type=int, default=3, help="pulls of each tool")
    ap.add_argument("--starts", type=int, default=10, help="run starts of each")
    ap.add_argument("--host", action="store_true", help="on the host's v2 tree (pulls only)")
    args = ap.parse_args()
    root = envcheck.require_host() if args.host else envcheck.require_vm()
    if args.host:
        args.starts = 0
    work = tempfile.mkdtemp(prefix="pystats-imgbench-")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1500m", "tmpfs", work], check=True)
    reg = None
    try:
        layout = build.build_layout(work, extra_mb=args.mb, extra_layers=args.layers)
        reg = build.start_registry(work, os.path.join(work, "registry"))
        ref = f"{reg.addr}/bench/app:1"
        build.push(layout, "app", ref)
        shutil.rmtree(layout)
        controllers = set() if args.host else {"cpu", "memory", "pids"}
        if not args.host:
            with open(os.path.join(root, "cgroup.subtree_control"), "w") as f:
                f.write("+cpu +memory +pids")
        with envcheck.scratch_cgroup(root, controllers) as cg:
            pulls = bench_pulls(work, cg, ref, reg.addr, args.n)
            starts: dict[str, list[float]] = {}
            if args.starts:
                starts = bench_starts(work, cg, ref, reg.addr, args.starts)
    finally:
        if reg is not None:
            reg.stop()
        subprocess.run(["umount", "-l", work], check=False)
        shutil.rmtree(work, ignore_errors=True)
    mib = 1024.0
    print(f"image: busybox + {args.mb} MB random in {args.layers} layers; "
          f"pulls n={args.n}, starts n={args.starts}")  # fmt: skip
    print("pull + unpack      p50 wall s   peak RSS MiB")
    print(f"pystats pull        {p50(pulls['pystats_s']):8.2f}   agent "
          f"{p50(pulls['pystats_agent_kib']) / mib:.0f} (idle "
          f"{p50(pulls['agent_idle_kib']) / mib:.0f}), cli "
          f"{p50(pulls['pystats_cli_kib']) / mib:.0f}")  # fmt: skip
    print(
        f"skopeo + umoci      {p50(pulls['skopeo_umoci_s']):8.2f}   skopeo "
        f"{p50(pulls['skopeo_kib']) / mib:.0f}, umoci {p50(pulls['umoci_kib']) / mib:.0f}"
    )
    print(f"podman pull         {p50(pulls['podman_s']):8.2f}   "
          f"{p50(pulls['podman_kib']) / mib:.0f}")  # fmt: skip
    for tool in ("pystats", "skopeo_umoci", "podman"):
        walls = " ".join(f"{x:.2f}" for x in pulls[f"{tool}_s"])
        cpus = pulls.get(f"{tool}_cpu", [])
        print(f"  {tool}: wall s {walls}; CPU s p50 {p50(cpus):.2f} (user + system, all threads)")
    print(f"load average {os.getloadavg()[0]:.1f} ({os.cpu_count()} CPUs)")
    if not starts:
        return 0
    print("start latency      p50 ms   p90 ms   min ms")
    for key, label in (("pystats_run_s", "pystats run -d"), ("crun_run_s", "crun run -d"),
                       ("podman_run_s", "podman run -d")):  # fmt: skip
        xs = starts.get(key, [])
        if xs:
            print(f"{label:18s} {p50(xs) * 1000:7.1f}  {pq(xs, 0.9) * 1000:7.1f}"
                  f"  {min(xs) * 1000:7.1f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
