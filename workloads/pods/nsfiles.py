"""A pod's namespaces kept as files: <dir>/{net,ipc,uts}, each a bind mount of an nsfs file.

Made before the infra starts and kept until `pod rm`, so the pod's workloads (the infra among
them) join the same namespaces across an infra restart or an agent restart, as podman pins a
pod's netns. They are made in a short-lived thread of the agent: unshare(2) of net, IPC and UTS
namespaces applies to the calling thread only, so the agent's other threads keep the host's.
"""

from __future__ import annotations

import contextlib
import os
import threading

from workloads.network import netns
from workloads.pods.record import NS_KINDS
from workloads.runtime import linux

_FLAGS = {"net": linux.CLONE_NEWNET, "ipc": linux.CLONE_NEWIPC, "uts": linux.CLONE_NEWUTS}


def paths(ns_dir: str, kinds: tuple[str, ...] = NS_KINDS) -> dict[str, str]:
    return {kind: os.path.join(ns_dir, kind) for kind in kinds}


def present(ns_dir: str, kinds: tuple[str, ...] = NS_KINDS) -> bool:
    """Whether every namespace file is still bound (lost with a reboot, say)."""
    return all(netns.is_mounted(p) for p in paths(ns_dir, kinds).values())


def _make(files: dict[str, str], hostname: str) -> None:
    flags = 0
    for kind in files:
        flags |= _FLAGS[kind]
    linux.unshare(flags)
    linux.sethostname(hostname)
    if "net" in files:
        linux.loopback_up()  # 127.0.0.1 for the pod's workloads to talk over
    for kind, path in files.items():
        linux.mount(f"/proc/thread-self/ns/{kind}", path, None, linux.MS_BIND)


def create(ns_dir: str, hostname: str, kinds: tuple[str, ...] = NS_KINDS) -> dict[str, str]:
    """New namespaces of ``kinds`` (of net, ipc, uts) bound under ``ns_dir`` (leftovers
    replaced), the hostname set and lo up. Raises OSError naming the failed step; nothing is
    left then."""
    files = paths(ns_dir, kinds)
    os.makedirs(ns_dir, mode=0o700, exist_ok=True)
    for path in files.values():
        netns.remove(path)  # a leftover of a crash: never reuse its namespace
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDONLY | os.O_CLOEXEC, 0o600))
    errors: list[OSError] = []

    def run() -> None:
        try:
            _make(files, hostname)
        except OSError as e:
            errors.append(e)

    t = threading.Thread(target=run, name="pod-namespaces")
    t.start()
    t.join()
    if errors:
        remove(ns_dir)
        raise errors[0]
    return files


def remove(ns_dir: str) -> None:
    """Unbind and delete the files (lazily: a process may still be inside); none is fine."""
    for path in paths(ns_dir).values():
        netns.remove(path)
    with contextlib.suppress(OSError):
        os.rmdir(ns_dir)
