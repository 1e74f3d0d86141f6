"""One agent per state directory and per cgroup root: flock'ed PID files.

The lock is the kernel's (flock on an open file, released when the holder dies, however it
dies); the PID in the file only names the holder in the refusal. A clean stop removes the file
while still holding the lock; a taker checks that the file it locked is still the one at the path
(else it lost that race to the unlink and takes the new file), so two agents never both hold one.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import urllib.parse
from dataclasses import dataclass

RUN_DIR = "/run/pystats"  # the root locks live here, whatever socket and state dir are set


class AlreadyRunning(Exception):
    """Another agent holds the lock; the message names its PID and what it holds."""


@dataclass(frozen=True, slots=True)
class PidLock:
    path: str
    fd: int  # held open for the life of the agent (close-on-exec: no child inherits it)

    def release(self) -> None:
        with contextlib.suppress(OSError):
            os.unlink(self.path)
        with contextlib.suppress(OSError):
            os.close(self.fd)


def root_lock_path(cgroup_root: str, run_dir: str = RUN_DIR) -> str:
    """The lock file of a cgroup root: one name per real path, readable by an operator."""
    name = urllib.parse.quote(os.path.realpath(cgroup_root), safe="")
    if len(name) > 200:
        name = hashlib.sha256(name.encode()).hexdigest()
    return os.path.join(run_dir, "roots", name + ".pid")


def _holder(fd: int) -> str:
    with contextlib.suppress(OSError, ValueError):
        pid = int(os.pread(fd, 32, 0).split()[0])
        return f"PID {pid}"
    return "PID unknown"  # it took the lock and has not written its PID yet


def _same_file(fd: int, path: str) -> bool:
    try:
        st = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return False
    own = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino)


def acquire(path: str, what: str) -> PidLock:
    """Take the lock at ``path`` and write our PID into it; AlreadyRunning names the holder.
    ``what`` says what the lock guards, for the message ("state directory /var/lib/pystats")."""
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if _same_file(fd, path):
                break
            os.close(fd)  # its holder removed it as we locked it: take the new one
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise AlreadyRunning(
                f"another pystats agent ({holder}) already uses {what} (lock {path}); "
                "stop it first, or give this one its own root, state_dir and socket"
            ) from None
        except BaseException:
            os.close(fd)
            raise
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return PidLock(path, fd)
