"""Where the agent's API socket is, for every client (CLI commands, the live view)."""

from __future__ import annotations

import os

DEFAULT_SOCKET = "/run/pystats/agent.sock"
SOCKET_HELP = "agent API socket (default $PYSTATS_SOCKET or " + DEFAULT_SOCKET + ")"


def default_socket() -> str:
    """$PYSTATS_SOCKET when set (non-default agents, tests), else the packaged default."""
    return os.environ.get("PYSTATS_SOCKET") or DEFAULT_SOCKET
