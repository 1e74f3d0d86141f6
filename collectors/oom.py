"""OOM kill accounting: oom_kill counter increments become events, victims from the kernel log.

The counter is the cgroup's own (memory.events.local, kernel 5.2+) when the sampler has it, so a
kill in ``a/b`` is one event for ``a/b`` and not one more for every ancestor; on older kernels the
hierarchical memory.events counter is used. The kernel log (/dev/kmsg) is not under the cgroup
root: reading it here is optional and only names the victim (PID, command).
"""

from __future__ import annotations

import errno
import os
import re
import time
from collections import deque
from dataclasses import dataclass

from collectors.sample import CgroupSample, OomEvent

# "oom-kill:constraint=CONSTRAINT_MEMCG,...,task_memcg=/a/b,task=python3,pid=1234,uid=0"
_OOM_KILL = re.compile(rb"oom-kill:.*?task_memcg=([^,]*),task=([^,]*),pid=(\d+)")
# "Memory cgroup out of memory: Killed process 1234 (python3) total-vm:..."
_KILLED = re.compile(rb"Killed process (\d+) \(([^)]*)\)")


def oom_count(sample: CgroupSample) -> int | None:
    """The oom_kill counter events are derived from: the local one when read, else hierarchical."""
    if sample.memory_events_local is not None and sample.memory_events_local.oom_kill is not None:
        return sample.memory_events_local.oom_kill
    if sample.memory_events is not None:
        return sample.memory_events.oom_kill
    return None


class OomTracker:
    """Turns oom_kill counter increments of each (cgroup, inode) into OomEvents."""

    def __init__(self) -> None:
        self._last: dict[str, tuple[int, int]] = {}  # path -> (inode, oom_kill seen)

    def update(self, sample: CgroupSample, *, baseline: bool) -> OomEvent | None:
        """Feed one sample. ``baseline``: the collector's first look at the tree, where counts
        are history and not events. A cgroup first seen later that already counts kills had
        them since its creation (between two ticks): those are events."""
        count = oom_count(sample)
        if count is None:
            return None
        last = self._last.get(sample.path)
        self._last[sample.path] = (sample.inode, count)
        if last is None or last[0] != sample.inode:
            if baseline or count == 0:
                return None
            return OomEvent(sample.path, sample.wall, count, count)
        if count > last[1]:
            return OomEvent(sample.path, sample.wall, count - last[1], count)
        return None

    def known(self, path: str) -> int | None:
        last = self._last.get(path)
        return last[1] if last is not None else None

    def forget(self, path: str) -> None:
        self._last.pop(path, None)


@dataclass(frozen=True, slots=True)
class KmsgKill:
    pid: int
    comm: str
    memcg: str | None  # task_memcg as the kernel prints it: path from the cgroup2 mount root
    mono: float


def parse_kmsg_record(record: bytes) -> tuple[str, int, str, str | None] | None:
    """One /dev/kmsg record -> ("oomkill"|"killed", pid, comm, memcg) or None."""
    _, _, msg = record.partition(b";")
    m = _OOM_KILL.search(msg)
    if m is not None:
        return "oomkill", int(m[3]), m[2].decode(errors="replace"), m[1].decode(errors="replace")
    m = _KILLED.search(msg)
    if m is not None and b"out of memory" in msg:
        return "killed", int(m[1]), m[2].decode(errors="replace"), None
    return None


class KmsgVictims:
    """Reads OOM victims from /dev/kmsg (non-blocking, from the moment it is opened).

    Absent or unreadable kernel log (no root, container): every lookup answers None.
    """

    def __init__(self, path: str = "/dev/kmsg", keep: int = 128) -> None:
        self._kills: deque[KmsgKill] = deque(maxlen=keep)
        self._fd: int | None = None
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            return
        try:
            os.lseek(fd, 0, os.SEEK_END)  # old kills are not ours to attribute
        except OSError:
            os.close(fd)
            return
        self._fd = fd

    @property
    def available(self) -> bool:
        return self._fd is not None

    def drain(self) -> None:
        fd = self._fd
        if fd is None:
            return
        pending: dict[int, KmsgKill] = {}
        while True:
            try:
                rec = os.read(fd, 8192)
            except BlockingIOError:
                break
            except OSError as e:
                if e.errno == errno.EPIPE:  # overwritten records: continue at the next one
                    continue
                break
            if not rec:
                break
            parsed = parse_kmsg_record(rec)
            if parsed is None:
                continue
            kind, pid, comm, memcg = parsed
            if kind == "oomkill":
                pending[pid] = KmsgKill(pid, comm, memcg, time.monotonic())
                self._kills.append(pending[pid])
            else:
                prior = pending.pop(pid, None)
                if prior is None:
                    self._kills.append(KmsgKill(pid, comm, None, time.monotonic()))
                else:  # the "Killed process" line has the full comm; keep the memcg
                    self._replace(prior, KmsgKill(pid, comm, prior.memcg, prior.mono))

    def _replace(self, old: KmsgKill, new: KmsgKill) -> None:
        for i, k in enumerate(self._kills):
            if k is old:
                self._kills[i] = new
                return

    def victim(self, abs_cgroup_path: str) -> KmsgKill | None:
        """Take the oldest unclaimed kill whose task_memcg names this cgroup (path suffix)."""
        for k in self._kills:
            if k.memcg and k.memcg != "/" and abs_cgroup_path.endswith(k.memcg):
                self._kills.remove(k)
                return k
        return None

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
