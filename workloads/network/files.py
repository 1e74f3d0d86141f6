"""/etc/resolv.conf, /etc/hosts and /etc/hostname for a networked workload, bound into it.

The files are rewritten in place (same inode), so a file already bound into a running workload
shows the new content: a workload started later on the same network becomes resolvable by name
in the earlier ones' /etc/hosts."""

from __future__ import annotations

import os
from collections.abc import Iterable

HOST_RESOLV = "/etc/resolv.conf"
# docker's fallback when the host's resolvers are loopback-only (unreachable from a netns).
FALLBACK_DNS = ("8.8.8.8", "8.8.4.4")
NAMES = ("hosts", "resolv.conf", "hostname")


def resolv_conf(host_text: str) -> str:
    """The host's resolv.conf without loopback nameservers (127.0.0.53 and the like live in
    the host's netns); public resolvers when none is left."""
    keep: list[str] = []
    servers = 0
    for line in host_text.splitlines():
        words = line.split()
        if words[:1] == ["nameserver"] and len(words) > 1:
            if words[1].startswith("127.") or words[1] == "::1":
                continue
            servers += 1
        keep.append(line)
    if servers == 0:
        keep += [f"nameserver {ip}" for ip in FALLBACK_DNS]
    return "\n".join(keep) + "\n"


def hosts(own: tuple[str, str] | None, peers: Iterable[tuple[str, str]]) -> str:
    """localhost lines, the workload's own address and name, then its network's peers."""
    lines = [
        "127.0.0.1\tlocalhost",
        "::1\tlocalhost ip6-localhost ip6-loopback",
    ]
    if own is not None:
        lines.append(f"{own[0]}\t{own[1]}")
    lines += [f"{ip}\t{name}" for ip, name in sorted(peers) if own is None or name != own[1]]
    return "\n".join(lines) + "\n"


def write_in_place(path: str, text: str) -> None:
    """Truncate and write the same inode (a bind mount follows the inode, not the name)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def prepare(folder: str, hostname: str) -> None:
    """The three files, present from create on (the spec binds them)."""
    os.makedirs(folder, mode=0o755, exist_ok=True)
    try:
        with open(HOST_RESOLV) as f:
            host_text = f.read()
    except OSError:
        host_text = ""
    write_in_place(os.path.join(folder, "resolv.conf"), resolv_conf(host_text))
    write_in_place(os.path.join(folder, "hostname"), hostname + "\n")
    if not os.path.exists(os.path.join(folder, "hosts")):
        write_in_place(os.path.join(folder, "hosts"), hosts(None, ()))
