#!/usr/bin/env python3
"""Boot the test VM once and run a command inside it: the VM-marked tests, or the sandbox.

A Debian kernel is booted by virtme-ng under qemu (software emulation by default; set
PYSTATS_VM_KVM=1 where /dev/kvm works). The guest sees this machine's filesystem read-only, so
the project's own .venv runs inside unchanged; results come back through one writable folder,
because the guest console is unreliable. The guest command's exit status is this script's.

Usage: scripts/test-vm [pytest args...]   (default: tests/, -m vm)
       scripts/vmrun.py --sandbox          (scripts/sandbox-inside.sh: agent, policy, workloads)
"""

from __future__ import annotations

import glob
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV_BIN = os.path.join(ROOT, ".venv", "bin")


def newest_kernel() -> str:
    def version_key(path: str) -> list[int]:
        return [int(x) for x in re.findall(r"\d+", os.path.basename(path))]

    kernels = sorted(glob.glob("/boot/vmlinuz-*"), key=version_key)
    if not kernels:
        sys.exit(
            "vmrun: no kernel in /boot (apt-get install linux-image-amd64; scripts/setup does)"
        )
    return kernels[-1]


def boot(command: str, out: str) -> int:
    """Run ``command`` (a shell line) as root in the guest; its output goes to out/output.log."""
    vng = shutil.which("vng", path=VENV_BIN + os.pathsep + os.environ.get("PATH", ""))
    if vng is None:
        sys.exit("vmrun: vng not found; run scripts/setup first")
    kernel = newest_kernel()
    require = shlex.quote(os.environ.get("PYSTATS_REQUIRE_ENV", ""))
    inner = (
        f"cd {shlex.quote(ROOT)} && export PYSTATS_IN_VM=1 PYTHONDONTWRITEBYTECODE=1"
        f" PYSTATS_REQUIRE_ENV={require} PYSTATS_VM_OUT={shlex.quote(out)} HOME=/tmp"
        f" PATH={VENV_BIN}:$PATH && ( {command} ) > {out}/output.log 2>&1; echo $? > {out}/rc"
    )
    cmd = [
        vng,
        "--run",
        kernel,
        "--memory",
        os.environ.get("PYSTATS_VM_MEMORY", "2G"),
        "--cpus",
        "2",
        "--rwdir",
        out,
        "--",
        inner,
    ]
    if os.environ.get("PYSTATS_VM_KVM") != "1":
        cmd.insert(3, "--disable-kvm")
    env = dict(os.environ, PATH=VENV_BIN + os.pathsep + os.environ.get("PATH", ""))
    timeout = float(os.environ.get("PYSTATS_VM_TIMEOUT", "2700"))
    print(f"vmrun: booting {kernel}", flush=True)
    t0 = time.monotonic()
    # A new session, so that a timeout stops qemu and everything vng started with it.
    with open(os.path.join(out, "console.log"), "wb") as console:
        proc = subprocess.Popen(
            cmd,
            env=env,
            cwd=out,
            start_new_session=True,
            stdout=console,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            print(f"vmrun: guest still running after {timeout:.0f} s; stopping it", flush=True)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    print(f"vmrun: guest ran {time.monotonic() - t0:.0f} s", flush=True)
    log = os.path.join(out, "output.log")
    if os.path.exists(log):
        with open(log, encoding="utf-8", errors="replace") as f:
            sys.stdout.write(f.read())
    try:
        with open(os.path.join(out, "rc")) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        print("vmrun: the guest reported no exit status; end of its console:", flush=True)
        with open(os.path.join(out, "console.log"), "rb") as f:
            sys.stdout.write(f.read()[-5000:].decode(errors="replace"))
        return 1


def main(argv: list[str]) -> int:
    out = tempfile.mkdtemp(prefix="pystats-vm-")
    os.chmod(out, 0o755)
    try:
        if argv[:1] == ["--sandbox"]:
            return boot(f"bash {shlex.quote(ROOT)}/scripts/sandbox-inside.sh", out)
        args = " ".join(shlex.quote(a) for a in (argv or ["tests"]))
        rc = boot(
            ".venv/bin/python -m pytest -m vm -p no:cacheprovider -rs --durations=25"
            f" --junitxml={out}/junit.xml {args}",
            out,
        )
        junit = os.environ.get("PYSTATS_VM_JUNIT")
        if junit and os.path.exists(os.path.join(out, "junit.xml")):
            shutil.copy(os.path.join(out, "junit.xml"), junit)
        return rc
    finally:
        if os.environ.get("PYSTATS_VM_KEEP") == "1":
            print(f"vmrun: results kept in {out}")
        else:
            shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
