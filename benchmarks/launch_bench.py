#!/usr/bin/env python3
"""Launch latency: API call -> the workload's first instruction, pystats vs crun vs runc.

The workload is a static C program whose first act is to write CLOCK_MONOTONIC to a file; the
latency is that stamp minus the monotonic time just before the launch request (pystats: the
POST to the API; crun/runc: running `crun run` / `runc run`). All three launch into the same
busybox rootfs with the same namespaces (mnt, pid, net, uts, ipc), the same limits (memory.max
64M, cpu.max 0.5, pids.max 64), a fresh /proc, pivot_root, in the same boot, interleaved.

Containment: each runtime runs with its own default security profile. pystats: docker's 14
capabilities, no_new_privs, containers-common's seccomp profile (the default of `pystats run`).
crun and runc: the same 14 capabilities in all five sets, noNewPrivileges, runc's masked and
read-only paths, and the same seccomp profile resolved for those capabilities into the OCI form,
as podman hands it to crun. Also timed: pystats --privileged (every capability, no filter, no
masked paths: close to pystats before containment) and pystats with seccomp=unconfined (the
filter's own share).

Run it where cgroup v2 has controllers (the test VM):
    python scripts/vmrun.py ... or:  python benchmarks/launch_bench.py --n 100
--userns adds pystats with a user namespace (root inside = host uid 100000) on a copy of the
rootfs owned by that range, interleaved with the others.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from agent.api.client import WorkloadClient  # noqa: E402
from workloads.runtime import caps, seccomp_profile  # noqa: E402
from workloads.runtime.spec import USERNS_DEFAULT_BASE  # noqa: E402

STAMP_C = r"""
#include <fcntl.h>
#include <stdio.h>
#include <time.h>
int main(int argc, char **argv) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    int fd = open(argc > 1 ? argv[1] : "/ts", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dprintf(fd, "%lld\n", (long long)t.tv_sec * 1000000000LL + t.tv_nsec);
    return 0;
}
"""
MEMORY = 64 << 20
CPUS = 0.5
PIDS = 64
# runc's defaults (`runc spec`), which docker and podman also apply.
MASKED = [
    "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
]  # fmt: skip
READONLY = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
# The pystats variants: name -> the request's "security" (None: the default profile).
PYSTATS_VARIANTS: dict[str, dict[str, object] | None] = {
    "pystats": None,
    "pystats-unconfined": {"seccomp": "unconfined"},
    "pystats-privileged": {"privileged": True},
}


def build_rootfs(work: str) -> str:
    rootfs = os.path.join(work, "rootfs")
    for d in ("bin", "proc", "dev", "sys", "tmp"):
        os.makedirs(os.path.join(rootfs, d))
    shutil.copy("/bin/busybox", os.path.join(rootfs, "bin", "busybox"))
    os.symlink("busybox", os.path.join(rootfs, "bin", "sh"))
    src = os.path.join(work, "stamp.c")
    with open(src, "w") as f:
        f.write(STAMP_C)
    subprocess.run(["gcc", "-static", "-O2", "-o", os.path.join(rootfs, "stamp"), src], check=True)
    return rootfs


def oci_seccomp() -> dict[str, object]:
    """containers-common's profile for docker's default capabilities, in the OCI form (the
    includes/excludes resolved, as podman does before it calls crun)."""
    prof = seccomp_profile.read(seccomp_profile.DEFAULT_PROFILE)
    native = {"x86_64": "SCMP_ARCH_X86_64", "aarch64": "SCMP_ARCH_AARCH64"}[platform.machine()]
    held = frozenset(caps.names_of(caps.DEFAULT_MASK))
    go, kernel = seccomp_profile.goarch(), seccomp_profile.kernel_version()
    syscalls: list[dict[str, object]] = []
    for r in prof.rules:
        if not r.applies(held, go, kernel):
            continue
        entry: dict[str, object] = {"names": list(r.names), "action": r.action}
        if r.errno_ret is not None:
            entry["errnoRet"] = r.errno_ret
        if r.args:
            entry["args"] = [
                {"index": a.index, "value": a.value, "valueTwo": a.value_two,
                 "op": f"SCMP_CMP_{a.op}"}
                for a in r.args
            ]  # fmt: skip
        syscalls.append(entry)
    out: dict[str, object] = {
        "defaultAction": prof.default_action,
        "architectures": [native, *prof.sub_arches(native)],
        "syscalls": syscalls,
    }
    if prof.default_errno is not None:
        out["defaultErrnoRet"] = prof.default_errno
    return out


def oci_bundle(work: str, rootfs: str, name: str) -> str:
    bundle = os.path.join(work, f"bundle-{name}")
    os.makedirs(bundle)
    config = {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False,
            "user": {"uid": 0, "gid": 0},
            "args": ["/stamp", "/ts"],
            "env": ["PATH=/bin"],
            "cwd": "/",
            "noNewPrivileges": True,
            "capabilities": {
                s: caps.names_of(caps.DEFAULT_MASK)
                for s in ("bounding", "effective", "permitted", "inheritable", "ambient")
            },
        },
        "root": {"path": rootfs, "readonly": False},
        "hostname": name,
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {
                "destination": "/dev",
                "type": "tmpfs",
                "source": "tmpfs",
                "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
            },
            {
                "destination": "/sys",
                "type": "sysfs",
                "source": "sysfs",
                "options": ["nosuid", "noexec", "nodev", "ro"],
            },
        ],
        "linux": {
            "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
            "resources": {
                "memory": {"limit": MEMORY, "swap": MEMORY},
                "cpu": {"quota": int(CPUS * 100000), "period": 100000},
                "pids": {"limit": PIDS},
            },
            "cgroupsPath": f"/pystats-bench-{name}/{name}",
            "seccomp": oci_seccomp(),
            "maskedPaths": MASKED,
            "readonlyPaths": READONLY,
        },
    }
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(config, f)
    return bundle


def read_stamp(path: str, timeout: float = 60.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(path) as f:
                text = f.read()
            if text.endswith("\n"):
                os.unlink(path)
                return int(text)
        except FileNotFoundError:
            pass
        time.sleep(0.0005)
    raise TimeoutError(f"no stamp at {path}")


def oci_runner(binary: str, work: str, rootfs: str) -> Callable[[int], float]:
    name = os.path.basename(binary)
    bundle = oci_bundle(work, rootfs, name)
    state = os.path.join(work, f"state-{name}")

    def once(i: int) -> float:
        t0 = time.monotonic_ns()
        subprocess.run(
            [binary, "--root", state, "run", "-b", bundle, f"{name}-{i}"],
            check=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        return (read_stamp(os.path.join(rootfs, "ts")) - t0) / 1e6

    return once


def userns_rootfs(work: str, rootfs: str) -> str:
    """A copy of the rootfs owned by the --userns range, so its root may write /ts."""
    dst = os.path.join(work, "rootfs-userns")
    shutil.copytree(rootfs, dst, symlinks=True)
    for dirpath, dirs, files in os.walk(dst):
        for path in [dirpath, *(os.path.join(dirpath, n) for n in dirs + files)]:
            os.lchown(path, USERNS_DEFAULT_BASE, USERNS_DEFAULT_BASE)
    os.chmod(work, 0o755)  # mkdtemp's 0700 would keep the mapped root out
    return dst


def pystats_runner(
    client: WorkloadClient,
    rootfs: str,
    userns: bool = False,
    security: dict[str, object] | None = None,
    tag: str = "",
    limits: bool = True,
) -> Callable[[int], float]:
    def once(i: int) -> float:
        name = f"bench-{tag}{'u' if userns else ''}{i}"
        body: dict[str, object] = {
            "name": name,
            "argv": ["/stamp", "/ts"],
            "rootfs": rootfs,
            "userns": userns,
        }
        if limits:
            body.update(memory=str(MEMORY), cpus=str(CPUS), pids=str(PIDS))
        if security is not None:
            body["security"] = security
        t0 = time.monotonic_ns()
        client.create(body)
        ms = (read_stamp(os.path.join(rootfs, "ts")) - t0) / 1e6
        client.rm(name, force=True)
        return ms

    return once


def start_devserver(tree: str, cgroup: str, state: str, sock: str) -> subprocess.Popen[bytes]:
    """The workload API without the rest of the agent, from ``tree`` (this checkout or an older
    one: before the layout of issue 13 the dev server was agent.workloads.devserver)."""
    module = "agent.api.devserver"
    if not os.path.exists(os.path.join(tree, "agent", "api", "devserver.py")):
        module = "agent.workloads.devserver"
    server = subprocess.Popen(
        [sys.executable, "-m", module, "--root", cgroup, "--state", state, "--socket", sock],
        cwd=tree,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert server.stdout is not None
    server.stdout.readline()
    return server


def _remove_tree(path: str) -> None:
    for dirpath, _dirs, _files in sorted(os.walk(path), key=lambda w: -w[0].count("/")):
        try:
            with open(os.path.join(dirpath, "cgroup.kill"), "w") as f:
                f.write("1")
        except OSError:
            pass
        for _ in range(100):
            try:
                os.rmdir(dirpath)
                break
            except OSError:
                time.sleep(0.05)


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(q / 100 * (len(s) - 1)))]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--cgroup-parent", default="/sys/fs/cgroup")
    ap.add_argument("--max-seconds", type=float, default=1200.0, help="stop early, say so")
    ap.add_argument(
        "--userns", action="store_true", help="also time pystats --userns (user namespace)"
    )
    ap.add_argument(
        "--tree",
        action="append",
        default=[],
        metavar="NAME=DIR",
        help="also time the dev server of another checkout (e.g. a git worktree of an older"
        " commit) as pystats@NAME, interleaved with this one: before/after in one boot",
    )
    ap.add_argument(
        "--native",
        action="store_true",
        help="on a host whose cgroup2 has no controllers (hybrid): pystats only, no limits set"
        " (crun and runc left out), to time the launch path without emulation",
    )
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="pystats-launch-")
    rootfs = build_rootfs(work)
    if not args.native:
        with open(os.path.join(args.cgroup_parent, "cgroup.subtree_control"), "w") as f:
            f.write("+cpu +memory +pids")
    cg = os.path.join(args.cgroup_parent, f"pystats-bench-{os.getpid()}")
    os.mkdir(cg)
    sock = os.path.join(work, "api.sock")
    server = start_devserver(REPO, cg, os.path.join(work, "state"), sock)
    servers = [server]
    runners: dict[str, Callable[[int], float]] = {
        name: pystats_runner(
            WorkloadClient(sock), rootfs, security=sec, tag=str(k), limits=not args.native
        )
        for k, (name, sec) in enumerate(PYSTATS_VARIANTS.items())
    }
    for spec in args.tree:
        tname, _, tdir = spec.partition("=")
        tcg = os.path.join(args.cgroup_parent, f"pystats-bench-{os.getpid()}-{tname}")
        os.mkdir(tcg)
        tsock = os.path.join(work, f"api-{tname}.sock")
        servers.append(start_devserver(tdir, tcg, os.path.join(work, f"state-{tname}"), tsock))
        runners[f"pystats@{tname}"] = pystats_runner(
            WorkloadClient(tsock), rootfs, tag=tname, limits=not args.native
        )
    if args.userns:
        runners["pystats-userns"] = pystats_runner(
            WorkloadClient(sock), userns_rootfs(work, rootfs), userns=True
        )
    for name, path in (("crun", shutil.which("crun")), ("runc", shutil.which("runc"))):
        if path and not args.native:
            runners[name] = oci_runner(path, work, rootfs)
    results: dict[str, list[float]] = {k: [] for k in runners}
    try:
        for name, warm in list(runners.items()):
            try:
                warm(-1)  # warm-up: page cache, first cgroup creation
            except (subprocess.CalledProcessError, TimeoutError, OSError) as e:
                err = getattr(e, "stderr", b"") or b""
                print(f"{name}: failed, left out: {e} {err.decode(errors='replace')[-500:]}")
                del runners[name]
                del results[name]
        stop_at = time.monotonic() + args.max_seconds
        order = list(runners)
        for i in range(args.n):  # interleaved, so a slow phase of the machine hits all three
            if time.monotonic() > stop_at:
                print(f"time budget of {args.max_seconds:.0f} s spent: stopped after {i} rounds")
                break
            # In a rotating order: each launch runs while the kernel still frees the one before
            # it (its mounts, filters, cgroup), so each runtime follows each other one as often.
            k = i % len(order)
            for name in order[k:] + order[:k]:
                results[name].append(runners[name](i))
    finally:
        for srv in servers:
            srv.send_signal(signal.SIGTERM)
            srv.wait()
        _remove_tree(cg)
        for spec in args.tree:
            _remove_tree(f"{cg}-{spec.partition('=')[0]}")
    n = len(results["pystats"])
    print(f"launch latency, API call -> first instruction, N={n} each, same boot:")
    print(f"{'runtime':<20}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'mean ms':>9}{'min ms':>9}")
    for name, vals in results.items():
        print(
            f"{name:<20}{pct(vals, 50):>9.1f}{pct(vals, 90):>9.1f}{pct(vals, 99):>9.1f}"
            f"{statistics.mean(vals):>9.1f}{min(vals):>9.1f}"
        )
    p = pct(results["pystats"], 50)
    trees = [k for k in results if k.startswith("pystats@")]
    for other in ("crun", "runc", "pystats-privileged", "pystats-unconfined", *trees):
        if other in results:
            print(f"pystats p50 / {other} p50 = {p / pct(results[other], 50):.2f}")
    if "pystats-userns" in results:
        print(f"pystats --userns p50 / pystats p50 = {pct(results['pystats-userns'], 50) / p:.2f}")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
