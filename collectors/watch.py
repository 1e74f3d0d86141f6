"""inotify on memory.events and cgroup.events: an OOM kill or an emptied cgroup is seen between
ticks (the kernel raises IN_MODIFY on both files when they change).

inotify watches paths without opening the files, so this stays outside cgroupfs' readers; the
reads that follow an event go through the sampler as usual. Without inotify (no libc symbol,
watch limit reached) ``ok`` turns False and the collector relies on its per-tick reads (poll).
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct
from collections.abc import Iterable

IN_MODIFY = 0x00000002
IN_MOVED_FROM = 0x00000040
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE = 0x00000200
IN_Q_OVERFLOW = 0x00004000
IN_IGNORED = 0x00008000
IN_ONLYDIR = 0x01000000
IN_ISDIR = 0x40000000
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC
WATCHED = ("memory.events", "cgroup.events")
_EVENT = struct.Struct("iIII")


def _libc() -> ctypes.CDLL | None:
    try:
        # The process's own symbols: find_library would fork ldconfig from a threaded process.
        libc = ctypes.CDLL(None, use_errno=True)
        libc.inotify_init1.argtypes = [ctypes.c_int]
        libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        libc.inotify_rm_watch.argtypes = [ctypes.c_int, ctypes.c_int]
        return libc
    except (OSError, AttributeError):
        return None


class Inotify:
    """One non-blocking inotify fd: add/remove watches by path, drain (wd, mask, name)."""

    def __init__(self) -> None:
        self._libc = _libc()
        self.fd = -1
        self.reason = ""
        if self._libc is None:
            self.reason = "no inotify in libc"
            return
        fd = self._libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            self.reason = f"inotify_init1: {os.strerror(ctypes.get_errno())}"
            return
        self.fd = fd

    def add(self, path: str, mask: int) -> tuple[int, int]:
        """(wd, 0) or (-1, errno)."""
        if self.fd < 0 or self._libc is None:
            return -1, 0
        wd = self._libc.inotify_add_watch(self.fd, path.encode(), mask)
        return (wd, 0) if wd >= 0 else (-1, ctypes.get_errno())

    def rm(self, wd: int) -> None:
        if self.fd >= 0 and self._libc is not None:
            self._libc.inotify_rm_watch(self.fd, wd)  # EINVAL if the kernel dropped it

    def read(self) -> list[tuple[int, int, bytes]]:
        out: list[tuple[int, int, bytes]] = []
        while self.fd >= 0:
            try:
                buf = os.read(self.fd, 65536)
            except OSError:  # EAGAIN: drained
                break
            off = 0
            while off + _EVENT.size <= len(buf):
                wd, mask, _cookie, ln = _EVENT.unpack_from(buf, off)
                name = buf[off + _EVENT.size : off + _EVENT.size + ln].rstrip(b"\0")
                off += _EVENT.size + ln
                out.append((wd, mask, name))
        return out

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class Watcher:
    """Watches WATCHED files of many cgroups on one inotify fd (non-blocking)."""

    def __init__(self) -> None:
        self._in = Inotify()
        self.fd = self._in.fd
        self.ok = self.fd >= 0  # every added cgroup got its watches
        self.reason = self._in.reason
        self._wd: dict[int, tuple[str, str]] = {}  # wd -> (rel, file)
        self._by_rel: dict[str, list[int]] = {}

    def add(self, rel: str, cgroup_dir: str) -> None:
        if self.fd < 0:
            return
        wds = self._by_rel.setdefault(rel, [])
        for name in WATCHED:
            wd, err = self._in.add(os.path.join(cgroup_dir, name), IN_MODIFY)
            if wd < 0:
                if err in (errno.ENOENT, errno.ENOTDIR):  # file lacking, or cgroup gone
                    continue
                self.ok = False  # ENOSPC (max_user_watches) and the like: fall back to polling
                self.reason = f"inotify_add_watch: {os.strerror(err)}"
                continue
            self._wd[wd] = (rel, name)
            wds.append(wd)

    def remove(self, rel: str) -> None:
        for wd in self._by_rel.pop(rel, ()):
            if self._wd.pop(wd, None) is not None:
                self._in.rm(wd)

    def read(self) -> list[tuple[str, str]]:
        """Drain pending events: (rel, file) for each changed watched file."""
        out: list[tuple[str, str]] = []
        for wd, mask, _name in self._in.read():
            hit = self._wd.get(wd)
            if hit is None:
                continue
            if mask & IN_IGNORED:  # the cgroup was removed: the kernel dropped the watch
                self._wd.pop(wd, None)
                continue
            out.append(hit)
        return out

    def watched(self) -> Iterable[str]:
        return self._by_rel.keys()

    def close(self) -> None:
        self._in.close()
        self.fd = -1
        self._wd.clear()
        self._by_rel.clear()
        self.ok = False
