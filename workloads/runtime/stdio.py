"""A workload's stdio: -i (stdin kept open through the shim) and -t (a pty held by the shim).

``StdioOpts`` is part of the spec. With ``tty`` the shim opens a pty, keeps the master and gives
the slave to the workload as fds 0-2; the workload's init makes it its controlling terminal
(``take_terminal``: setsid + TIOCSCTTY), so job control and ^C reach its foreground group.
"""

from __future__ import annotations

import fcntl
import os
import struct
import termios
from dataclasses import dataclass
from typing import Any

from workloads.runtime.errors import SpecError


@dataclass(frozen=True)
class StdioOpts:
    interactive: bool = False  # -i: stdin stays open, fed by attached clients
    tty: bool = False  # -t: a pty; stdout and stderr are one stream, as docker's
    # `pystats run` without -d: its client attaches right after the start, and the shim reads
    # none of the first run's output before it has (workloads.supervisor.console.read_output)
    attach: bool = False

    @property
    def console(self) -> bool:
        return self.interactive or self.tty

    def to_json(self) -> dict[str, Any]:
        out = {"interactive": self.interactive, "tty": self.tty}
        return {**out, "attach": True} if self.attach else out

    @classmethod
    def from_json(cls, d: object) -> StdioOpts:
        if d is None:
            return cls()
        if not isinstance(d, dict):
            raise SpecError("stdio must be an object")
        keys = ("interactive", "tty", "attach")
        unknown = set(d) - set(keys)
        if unknown:
            raise SpecError(f"unknown stdio field(s): {', '.join(sorted(unknown))}")
        for key in keys:
            if not isinstance(d.get(key, False), bool):
                raise SpecError(f"stdio.{key} must be true or false")
        return cls(**{key: bool(d.get(key)) for key in keys})


def take_terminal(fd: int = 0) -> None:
    """Make the pty slave at ``fd`` this process's controlling terminal (a new session)."""
    os.setsid()
    fcntl.ioctl(fd, termios.TIOCSCTTY, 0)


def set_winsize(fd: int, rows: int, cols: int) -> None:
    """TIOCSWINSZ on a pty master: the kernel sends SIGWINCH to the foreground group."""
    if rows > 0 and cols > 0:
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
