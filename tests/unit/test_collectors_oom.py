"""OOM events from oom_kill counter deltas, and victims from kernel log records."""

from __future__ import annotations

import os

from cgroupfs.types import MemoryEvents
from collectors.oom import KmsgVictims, OomTracker, parse_kmsg_record
from collectors.sample import CgroupSample


def smp(
    oom_kill: int | None, local: int | None = None, inode: int = 1, path: str = "w"
) -> CgroupSample:
    return CgroupSample(
        path,
        inode,
        0.0,
        50.0,
        memory_events=MemoryEvents(oom_kill=oom_kill),
        memory_events_local=None if local is None else MemoryEvents(oom_kill=local),
    )


def test_baseline_counts_are_history_not_events() -> None:
    t = OomTracker()
    assert t.update(smp(3), baseline=True) is None
    assert t.update(smp(3), baseline=False) is None
    ev = t.update(smp(5), baseline=False)
    assert ev is not None and (ev.cgroup, ev.count, ev.total, ev.wall) == ("w", 2, 5, 50.0)


def test_new_cgroup_with_kills_since_creation_is_an_event() -> None:
    t = OomTracker()
    ev = t.update(smp(1), baseline=False)
    assert ev is not None and ev.count == 1
    assert t.update(smp(0, path="other"), baseline=False) is None


def test_recreated_cgroup_is_not_a_delta_of_the_old_one() -> None:
    t = OomTracker()
    t.update(smp(4, inode=1), baseline=True)
    assert t.update(smp(0, inode=2), baseline=False) is None
    ev = t.update(smp(1, inode=2), baseline=False)
    assert ev is not None and ev.count == 1 and ev.total == 1


def test_local_counter_wins_over_hierarchical() -> None:
    # The parent's hierarchical counter grows with a child's kill; its local one does not.
    t = OomTracker()
    t.update(smp(0, local=0), baseline=True)
    assert t.update(smp(1, local=0), baseline=False) is None


def test_unavailable_counter_is_no_event() -> None:
    t = OomTracker()
    s = CgroupSample("h", 1, 0.0, 0.0)
    assert t.update(s, baseline=False) is None


def test_parse_kmsg_records() -> None:
    a = parse_kmsg_record(
        b"6,1234,5678,-;oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,"
        b"mems_allowed=0,oom_memcg=/t,task_memcg=/t/leaf,task=python3,pid=4321,uid=0\n"
    )
    assert a == ("oomkill", 4321, "python3", "/t/leaf")
    b = parse_kmsg_record(
        b"3,1235,5679,-;Memory cgroup out of memory: Killed process 4321 (python3) "
        b"total-vm:1000kB, anon-rss:900kB\n"
    )
    assert b == ("killed", 4321, "python3", None)
    assert parse_kmsg_record(b"6,1,2,-;eth0: link up\n") is None


def test_kmsg_victims_from_a_fifo_of_records(tmp_path: object) -> None:
    # A regular file stands in for /dev/kmsg: opening seeks to the end, so write after opening.
    path = os.path.join(str(tmp_path), "kmsg")
    with open(path, "wb") as f:
        f.write(b"old record that must be skipped\n")
    v = KmsgVictims(path)
    assert v.available
    with open(path, "ab") as f:
        # /dev/kmsg returns one record per read; a regular file returns them all at once, so
        # write one record only.
        f.write(
            b"6,1,2,-;oom-kill:constraint=CONSTRAINT_MEMCG,task_memcg=/x/y,task=dd,pid=77,uid=0"
        )
    v.drain()
    assert v.victim("/sys/fs/cgroup/x/zy") is None
    k = v.victim("/sys/fs/cgroup/x/y")
    assert k is not None and (k.pid, k.comm) == (77, "dd")
    assert v.victim("/sys/fs/cgroup/x/y") is None  # claimed once
    v.close()
    assert not KmsgVictims(os.path.join(str(tmp_path), "missing")).available
