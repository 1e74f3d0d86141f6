"""Named network namespaces: a netns kept alive by a bind mount of its nsfs file, made before
the workload starts so CNI ADD can configure it and the runtime can join it (setns)."""

from __future__ import annotations

import contextlib
import os
import subprocess

from workloads.network.errors import NetworkError
from workloads.runtime import linux

MNT_DETACH = 2


def create(path: str) -> None:
    """A new, empty netns bound at ``path`` (util-linux unshare does the unshare-and-bind)."""
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    remove(path)  # a leftover of a crashed run: never reuse its namespace
    os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDONLY | os.O_CLOEXEC, 0o600))
    try:
        proc = subprocess.run(
            ["unshare", f"--net={path}", "true"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        remove(path)
        raise NetworkError(f"cannot create the network namespace {path}: {e}") from None
    if proc.returncode != 0:
        remove(path)
        why = proc.stderr.strip().splitlines()[-1:] or [f"exit status {proc.returncode}"]
        raise NetworkError(f"cannot create the network namespace {path}: {why[0]}")


def is_mounted(path: str) -> bool:
    """Whether ``path`` is a mount point (the bind of an nsfs file)."""
    try:
        with open("/proc/self/mountinfo", "rb") as f:
            target = os.fsencode(os.path.realpath(path))
            return any(line.split(b" ")[4] == target for line in f)
    except OSError:
        return False


def remove(path: str) -> None:
    """Unmount (lazily: a process may still be inside) and delete; nothing there is fine."""
    while is_mounted(path):
        try:
            linux.umount2(path, MNT_DETACH)
        except OSError:
            break
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
