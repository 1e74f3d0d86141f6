"""Run the placement-latency comparison inside the test VM (one boot, scripts/vmrun.py).

    flock /tmp/pystats-vm.lock .venv/bin/python -m benchmarks.policies_vm [--n 200]
        [--base REV] [--nice 0 ...] [--cgre-forms cpu ...]

One boot measures, in this order: the engine of git revision REV (exported into the VM's
writable results folder, so that the same harness times the code before a change), the engine
of the working tree, and cgrulesengd. The guest's output is printed; nothing stays behind.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _boot() -> Callable[[str, str], int]:
    """scripts/vmrun.py's boot(command, out) (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location(
        "vmrun", os.path.join(REPO, "scripts", "vmrun.py")
    )
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    boot: Callable[[str, str], int] = mod.boot
    return boot


def export(rev: str, dest: str) -> None:
    """The engine's packages at ``rev`` (policies/, cgroupfs/) into ``dest``."""
    os.makedirs(dest)
    archive = subprocess.run(
        ["git", "-C", REPO, "archive", rev, "policies", "cgroupfs"],
        check=True,
        capture_output=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", dest], input=archive, check=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--base", help="also time the engine of this git revision, first")
    ap.add_argument("--nice", type=int, nargs="+", default=[0])
    ap.add_argument("--cgre-forms", nargs="*", default=None, help="cgrulesengd controller forms")
    ap.add_argument("--event-nice", nargs="+", default=[], help="this tree's event thread")
    ap.add_argument("--no-cgrulesengd", action="store_true")
    ap.add_argument(
        "--favordynmods",
        action="store_true",
        help="remount cgroup2 with favordynmods first (cheaper migrations, for both placers)",
    )
    ap.add_argument("--no-current", action="store_true", help="skip the working tree's engine")
    args = ap.parse_args()
    out = tempfile.mkdtemp(prefix="pystats-vm-")
    os.chmod(out, 0o755)
    try:
        bench = f"python -m benchmarks.policies_bench latency --parent /sys/fs/cgroup --n {args.n}"
        bench += " --nice " + " ".join(str(n) for n in args.nice)
        steps = []
        if args.base:
            export(args.base, os.path.join(out, "base"))
            label = shlex.quote(f"{args.base} ")
            steps.append(f"{bench} --engine-src {out}/base --label {label}")
        now = bench + (" --no-pystats" if args.no_current else "")
        if args.event_nice:
            now += " --event-nice " + " ".join(shlex.quote(e) for e in args.event_nice)
        if not args.no_cgrulesengd:
            now += " --cgrulesengd"
            if args.cgre_forms is not None:
                now += " --cgre-forms " + " ".join(shlex.quote(f) for f in args.cgre_forms)
        if not (args.no_current and args.no_cgrulesengd):
            steps.append(now)
        prelude = "nproc; uname -r; grep cgroup2 /proc/mounts; "
        if args.favordynmods:
            prelude += "mount -o remount,favordynmods /sys/fs/cgroup && grep cgroup2 /proc/mounts; "
        return _boot()(prelude + " && ".join(steps), out)
    finally:
        shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
