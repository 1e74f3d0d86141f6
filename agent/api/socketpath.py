"""Where the agent's API socket is, for every client (CLI commands, the live view)."""

from __future__ import annotations

import contextlib
import os
import stat

DEFAULT_SOCKET = "/run/pystats/agent.sock"
SOCKET_HELP = "agent API socket (default $PYSTATS_SOCKET or " + DEFAULT_SOCKET + ")"


def default_socket() -> str:
    """$PYSTATS_SOCKET when set (non-default agents, tests), else the packaged default."""
    return os.environ.get("PYSTATS_SOCKET") or DEFAULT_SOCKET


def unreachable(socket_path: str, err: BaseException) -> str:
    """Why the agent's socket at ``socket_path`` did not answer, for every client alike;
    names the case where the path is something other than a socket."""
    cause = getattr(err, "os_error", err)  # aiohttp wraps the OSError of connect()
    with contextlib.suppress(OSError):
        if not stat.S_ISSOCK(os.stat(socket_path).st_mode):
            return f"{socket_path} is not a socket (--socket or $PYSTATS_SOCKET names the agent's)"
    if isinstance(cause, FileNotFoundError):
        return f"no pystats agent socket at {socket_path} (is it running?)"
    if isinstance(cause, PermissionError):
        return (
            f"permission denied on {socket_path}: the pystats API is for root"
            " and the agent's api_group"
        )
    if isinstance(cause, ConnectionRefusedError):
        return f"the pystats agent at {socket_path} refused the connection (is it running?)"
    return f"no pystats agent answers at {socket_path}: {cause}"
