"""Run the placement-latency comparison inside the test VM (one boot, scripts/vmrun.py).

    flock /tmp/pystats-vm.lock .venv/bin/python -m benchmarks.policies_vm [--n 200]
        [--base REV] [--nice 0 ...] [--cgre-forms cpu ...]

One boot measures, in interleaved rounds: the engine of git revision REV (exported into the
VM's writable results folder, so that the same harness times the code before a change), the
engine of the working tree (copied there too, with this harness, when the run starts), and
cgrulesengd. The guest's output is printed; nothing stays behind.
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


def snapshot(dest: str, tree: str = REPO) -> None:
    """The working tree's engine and this harness (policies/, cgroupfs/, benchmarks/) into
    ``dest``: the guest reads the host's files live, so edits made during a run stay out."""
    for pkg in ("policies", "cgroupfs", "benchmarks"):
        shutil.copytree(
            os.path.join(tree, pkg),
            os.path.join(dest, pkg),
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
        )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=4, help="interleaved blocks per placer")
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
    ap.add_argument(
        "--tree",
        default=REPO,
        help="take policies/, cgroupfs/, benchmarks/ from this copy (made before waiting for "
        "the VM lock) instead of the working tree",
    )
    args = ap.parse_args()
    out = tempfile.mkdtemp(prefix="pystats-vm-")
    os.chmod(out, 0o755)
    try:
        snapshot(os.path.join(out, "cur"), args.tree)
        cmd = f"cd {out}/cur && python -m benchmarks.policies_bench latency"
        cmd += f" --parent /sys/fs/cgroup --n {args.n} --rounds {args.rounds}"
        cmd += " --nice " + " ".join(str(n) for n in args.nice)
        if args.base:
            export(args.base, os.path.join(out, "base"))
            cmd += f" --base-src {out}/base --base-label " + shlex.quote(f"{args.base}: ")
        if args.no_current:
            cmd += " --no-pystats"
        if args.event_nice:
            cmd += " --event-nice " + " ".join(shlex.quote(e) for e in args.event_nice)
        if not args.no_cgrulesengd:
            cmd += " --cgrulesengd"
            if args.cgre_forms is not None:
                cmd += " --cgre-forms " + " ".join(shlex.quote(f) for f in args.cgre_forms)
        prelude = "nproc; uname -r; grep cgroup2 /proc/mounts; "
        if args.favordynmods:
            prelude += "mount -o remount,favordynmods /sys/fs/cgroup && grep cgroup2 /proc/mounts; "
        return _boot()(prelude + cmd, out)
    finally:
        shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
