"""systemd's notify protocol (READY=1, WATCHDOG=1, STATUS=...), without libsystemd.

A datagram to $NOTIFY_SOCKET; '@' at the start means an abstract socket. Outside systemd the
variable is unset and every call is a cheap no-op.
"""

from __future__ import annotations

import os
import socket


def notify(message: str, env: dict[str, str] | None = None) -> bool:
    """Send one notification; False when not under systemd or the socket is gone."""
    address = (env if env is not None else os.environ).get("NOTIFY_SOCKET")
    if not address:
        return False
    target = "\0" + address[1:] if address.startswith("@") else address
    try:
        flags = socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK
        with socket.socket(socket.AF_UNIX, flags) as s:
            # Never block the event loop on a receiver that stopped reading.
            s.connect(target)
            s.sendall(message.encode())
    except OSError:
        return False
    return True


def watchdog_interval_s(env: dict[str, str] | None = None) -> float | None:
    """Half of WatchdogSec= (as sd_watchdog_enabled advises), or None when not asked for."""
    e = env if env is not None else os.environ
    usec = e.get("WATCHDOG_USEC")
    pid = e.get("WATCHDOG_PID")
    if not usec or (pid and pid.isdigit() and int(pid) != os.getpid()):
        return None
    try:
        return int(usec) / 2_000_000
    except ValueError:
        return None
