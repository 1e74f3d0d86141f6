"""inotify on memory.events and cgroup.events: an OOM kill or an emptied cgroup is seen between
ticks (the kernel raises IN_MODIFY on both files when they change).

inotify watches paths without opening the files, so this stays outside cgroupfs' readers; the
reads that follow an event go through the sampler as usual. Without inotify (no libc symbol,
watch limit reached) ``ok`` turns False and the collector relies on its per-tick reads (poll).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import struct
from collections.abc import Iterable

IN_MODIFY = 0x00000002
IN_IGNORED = 0x00008000
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC
WATCHED = ("memory.events", "cgroup.events")
_EVENT = struct.Struct("iIII")


def _libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.inotify_init1.argtypes = [ctypes.c_int]
        libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        libc.inotify_rm_watch.argtypes = [ctypes.c_int, ctypes.c_int]
        return libc
    except (OSError, AttributeError):
        return None


class Watcher:
    """Watches WATCHED files of many cgroups on one inotify fd (non-blocking)."""

    def __init__(self) -> None:
        self._libc = _libc()
        self.fd = -1
        self.ok = False  # every added cgroup got its watches
        self.reason = ""
        self._wd: dict[int, tuple[str, str]] = {}  # wd -> (rel, file)
        self._by_rel: dict[str, list[int]] = {}
        if self._libc is None:
            self.reason = "no inotify in libc"
            return
        fd = self._libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            self.reason = f"inotify_init1: {os.strerror(ctypes.get_errno())}"
            return
        self.fd = fd
        self.ok = True

    def add(self, rel: str, cgroup_dir: str) -> None:
        if self.fd < 0 or self._libc is None:
            return
        wds = self._by_rel.setdefault(rel, [])
        for name in WATCHED:
            path = os.path.join(cgroup_dir, name).encode()
            wd = self._libc.inotify_add_watch(self.fd, path, IN_MODIFY)
            if wd < 0:
                err = ctypes.get_errno()
                if err in (2, 20):  # ENOENT, ENOTDIR: the cgroup lacks the file or is gone
                    continue
                self.ok = False  # ENOSPC (max_user_watches) and the like: fall back to polling
                self.reason = f"inotify_add_watch: {os.strerror(err)}"
                continue
            self._wd[wd] = (rel, name)
            wds.append(wd)

    def remove(self, rel: str) -> None:
        for wd in self._by_rel.pop(rel, ()):
            if self._wd.pop(wd, None) is not None and self._libc is not None and self.fd >= 0:
                self._libc.inotify_rm_watch(self.fd, wd)  # EINVAL if the kernel dropped it

    def read(self) -> list[tuple[str, str]]:
        """Drain pending events: (rel, file) for each changed watched file."""
        out: list[tuple[str, str]] = []
        if self.fd < 0:
            return out
        while True:
            try:
                buf = os.read(self.fd, 65536)
            except BlockingIOError:
                return out
            except OSError:
                return out
            off = 0
            while off + _EVENT.size <= len(buf):
                wd, mask, _cookie, ln = _EVENT.unpack_from(buf, off)
                off += _EVENT.size + ln
                hit = self._wd.get(wd)
                if hit is None:
                    continue
                if mask & IN_IGNORED:  # the cgroup was removed: the kernel dropped the watch
                    del self._wd[wd]
                    continue
                out.append(hit)

    def watched(self) -> Iterable[str]:
        return self._by_rel.keys()

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        self._wd.clear()
        self._by_rel.clear()
        self.ok = False
