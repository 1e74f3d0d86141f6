"""Who may use the agent's API socket: checked by SO_PEERCRED on every connection.

The socket file's mode is only a first gate (a mode or owner set wrong by hand would open it);
every request's peer is checked as well: root, the agent's own uid, and the members of
``api_group`` (its primary group or a supplementary one, as the kernel reports them for the
connection: SO_PEERCRED and SO_PEERGROUPS).
"""

from __future__ import annotations

import grp
import os
import socket
import struct
from dataclasses import dataclass

from agent.config import AgentConfig

SO_PEERGROUPS = getattr(socket, "SO_PEERGROUPS", 59)  # Linux >= 4.13; Python lacks the name


class AccessError(Exception):
    """The configured API group does not exist."""


@dataclass(frozen=True, slots=True)
class Peer:
    pid: int
    uid: int
    gid: int
    groups: frozenset[int]  # supplementary groups at connect time (empty when unknown)


@dataclass(frozen=True, slots=True)
class ApiAccess:
    uids: frozenset[int] = frozenset({0})
    gid: int | None = None  # members of this group may use the API
    socket_gid: int | None = None  # the socket file's group (socket_group)

    def allows(self, peer: Peer) -> bool:
        if peer.uid in self.uids:
            return True
        return self.gid is not None and (peer.gid == self.gid or self.gid in peer.groups)


def peer_of(sock: socket.socket) -> Peer:
    """The credentials of a connected Unix socket's peer, as the kernel took them at connect."""
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, gid = struct.unpack("3i", raw)
    try:
        # 1024 bytes is the most getsockopt() gives Python: 256 groups. A peer in more groups
        # is judged by its uid and primary group only.
        blob = sock.getsockopt(socket.SOL_SOCKET, SO_PEERGROUPS, 1024)
        groups = frozenset(struct.unpack(f"{len(blob) // 4}I", blob[: len(blob) // 4 * 4]))
    except OSError:
        groups = frozenset()
    return Peer(pid, uid, gid, groups)


def _gid(setting: str, name: str) -> int:
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        raise AccessError(f"{setting}: no group named {name!r} on this host") from None


def resolve_access(cfg: AgentConfig) -> ApiAccess:
    """Root and the agent's own uid; and ``api_group`` (default: ``socket_group``)."""
    socket_gid = None if cfg.socket_group is None else _gid("socket_group", cfg.socket_group)
    if cfg.api_group is not None:
        gid: int | None = _gid("api_group", cfg.api_group)
    else:
        gid = socket_gid
    return ApiAccess(uids=frozenset({0, os.getuid()}), gid=gid, socket_gid=socket_gid)
