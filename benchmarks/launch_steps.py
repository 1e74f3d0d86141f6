#!/usr/bin/env python3
"""Where a launch's init spends its time, step by step: pystats's default profile vs --privileged.

Runs the workload init's own code (workloads.runtime.init.setup_namespaces, then the security
plan) in a forked child of a fresh PID namespace, as the shim does, on a busybox rootfs, with a
timer around each step; the child stops just before execve. Natively on the host (root, no
cgroup needed). The shim, the API and the cgroup work are not in it: see launch_bench.py.

    python benchmarks/launch_steps.py --n 200 [--tree DIR]

--tree times another checkout's runtime (e.g. a git worktree of an older commit) instead.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

# (module, function): each call's time is added to the step of that name. mount_dev and
# mount_sys call set_attrs: its time is counted in both.
STEPS = {
    "linux": ("unshare", "sethostname", "loopback_up"),
    "mounts": (
        "prepare_rootfs",
        "set_attrs",
        "mount_proc",
        "mount_dev",
        "mount_sys",
        "make_devices",
        "pivot",
        "readonly_path",
        "mask_path",
    ),
    "caps": ("apply",),
    "seccomp_profile": ("load",),
    "init": ("reset_nofile",),
}


def _wrap(mod: ModuleType, name: str, acc: dict[str, int]) -> None:
    f: Callable[..., Any] = getattr(mod, name)

    def timed(*a: Any, **k: Any) -> Any:
        t = time.perf_counter_ns()
        try:
            return f(*a, **k)
        finally:
            acc[name] = acc.get(name, 0) + time.perf_counter_ns() - t

    setattr(mod, name, timed)


def _child(spec: Any, mods: dict[str, ModuleType], w: int) -> None:
    acc: dict[str, int] = {}
    for mod, names in STEPS.items():
        for name in names:
            _wrap(mods[mod], name, acc)
    security, init = mods["security"], mods["init"]
    plan = security.prepare(spec.security)  # the shim's, inherited (memoized): not timed
    t0 = time.perf_counter_ns()
    init.setup_namespaces(spec)
    t1 = time.perf_counter_ns()
    os.chdir("/")
    init.reset_nofile()
    security.apply_security(plan)
    t2 = time.perf_counter_ns()
    acc["= namespaces and mounts"] = t1 - t0
    acc["= security (caps, nnp, seccomp)"] = t2 - t1
    acc["= total, fork to execve"] = t2 - t0
    os.write(w, json.dumps(acc).encode())


def one(spec: Any, mods: dict[str, ModuleType]) -> dict[str, int]:
    """One launch's steps (ns): a child that makes the PID namespace, its child the init."""
    r, w = os.pipe()
    mid = os.fork()
    if mid == 0:
        try:
            os.close(r)
            mods["linux"].unshare(mods["linux"].CLONE_NEWPID)
            pid = os.fork()
            if pid == 0:
                try:
                    _child(spec, mods, w)
                finally:
                    os._exit(0)
            os.waitpid(pid, 0)
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        out: dict[str, int] = json.loads(f.read())
    os.waitpid(mid, 0)
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--tree", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    args = ap.parse_args()
    sys.path.insert(0, args.tree)
    from workloads.runtime import caps, init, linux, mounts, seccomp_profile, security
    from workloads.runtime.spec import WorkloadSpec

    mods = {
        "linux": linux,
        "mounts": mounts,
        "caps": caps,
        "seccomp_profile": seccomp_profile,
        "init": init,
        "security": security,
    }
    work = tempfile.mkdtemp(prefix="pystats-steps-")
    rootfs = os.path.join(work, "rootfs")
    for d in ("bin", "proc", "dev", "sys", "tmp"):
        os.makedirs(os.path.join(rootfs, d))
    shutil.copy("/bin/busybox", os.path.join(rootfs, "bin", "busybox"))
    base = {"name": "steps", "argv": ["/bin/busybox", "true"], "rootfs": rootfs}
    specs = {
        "default": WorkloadSpec.from_json(base),
        "privileged": WorkloadSpec.from_json({**base, "security": {"privileged": True}}),
    }
    runs: dict[str, list[dict[str, int]]] = {k: [] for k in specs}
    try:
        for _ in range(args.n):  # interleaved
            for k, spec in specs.items():
                runs[k].append(one(spec, mods))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    steps = sorted(
        {s for rs in runs.values() for r in rs for s in r}, key=lambda s: (s[0] == "=", s)
    )
    print(f"init steps, median of N={args.n} each (us), tree {args.tree}:")
    print(f"{'step':<34}" + "".join(f"{k:>12}" for k in runs) + f"{'difference':>12}")
    for s in steps:
        med = [statistics.median(r.get(s, 0) for r in rs) / 1000 for rs in runs.values()]
        print(f"{s:<34}" + "".join(f"{m:>12.0f}" for m in med) + f"{med[0] - med[1]:>12.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
