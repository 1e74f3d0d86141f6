"""Sampler and tree against an in-memory reader: cadence, absent files, vanished and replaced
cgroups, error reasons, idle sampling, OOM events from local counters."""

from __future__ import annotations

import dataclasses

import pytest

from cgroupfs.errors import CgroupGone
from collectors.rates import HostInfo
from collectors.sample import CgroupSample
from collectors.sampler import Sampler, _build_by_setters
from collectors.tree import Tree

HOST = HostInfo(cpus=2, mem_bytes=1 << 30)
CPU = b"usage_usec %d\nuser_usec 0\nsystem_usec 0\n"
PSI = (
    b"some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"
    b"full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"
)
MEMSTAT = b"anon 4096\nfile 8192\ninactive_file 4096\n"
EVENTS = b"low 0\nhigh 0\nmax 0\noom %d\noom_kill %d\noom_group_kill 0\n"


class FakeReader:
    def __init__(self) -> None:
        self.files: dict[tuple[str, str], bytes] = {}
        self.inodes: dict[str, int] = {}
        self.reads: list[tuple[str, str]] = []
        self.forgotten: list[str] = []
        self.fail: dict[tuple[str, str], Exception] = {}

    def add(self, rel: str, ino: int, **files: bytes) -> None:
        self.inodes[rel] = ino
        for k, v in files.items():
            self.files[(rel, k.replace("_", "."))] = v

    def read(self, rel: str, filename: str, inode: int) -> bytes | None:
        if self.inodes.get(rel) != inode:
            raise CgroupGone(rel)
        self.reads.append((rel, filename))
        err = self.fail.get((rel, filename))
        if err is not None:
            raise err
        return self.files.get((rel, filename))

    def read_files(self, rel: str, filenames: tuple[str, ...], inode: int) -> list[bytes | None]:
        return [self.read(rel, name, inode) for name in filenames]

    def forget(self, rel: str) -> None:
        self.forgotten.append(rel)

    def walk(self, start: str = "", depth: int | None = None) -> list[tuple[str, int]]:
        return sorted(self.inodes.items())


def full_v2(r: FakeReader, rel: str, ino: int, usage: int = 0, oom_kill: int = 0) -> None:
    r.add(
        rel,
        ino,
        cpu_stat=CPU % usage,
        memory_current=b"8192\n",
        memory_max=b"max\n",
        memory_events=EVENTS % (oom_kill, oom_kill),
        **{"memory_events_local": EVENTS % (oom_kill, oom_kill)},
        memory_stat=MEMSTAT,
        cpu_pressure=PSI,
        cgroup_events=b"populated 1\nfrozen 0\n",
    )


def test_memory_stat_on_slow_cadence_and_root_never_every_tick() -> None:
    r = FakeReader()
    full_v2(r, "", 1)
    full_v2(r, "a", 2)
    s = Sampler(r, HOST, slow_every=1)  # asks for everything every tick...
    for tick in range(11):
        s.sample_batch(r.walk(), tick)
    root_reads = sum(1 for x in r.reads if x == ("", "memory.stat"))
    a_reads = sum(1 for x in r.reads if x == ("a", "memory.stat"))
    assert a_reads == 11
    assert root_reads == 2  # ...but the root's memory.stat: first tick, then every 10th at most

    r2 = FakeReader()
    full_v2(r2, "a", 2)
    s2 = Sampler(r2, HOST, slow_every=5)
    out = [s2.sample_batch(r2.walk(), t) for t in range(10)]
    assert sum(1 for x in r2.reads if x == ("a", "memory.stat")) == 3  # first + 2 staggered
    # Between slow reads the last memory.stat is carried, with the time it was read.
    last = out[-1].samples[0][0]
    assert last.memory_stat is not None and last.memory_stat_mono is not None
    assert last.memory_stat_mono <= last.mono


def test_hybrid_cgroup_has_none_for_missing_controllers() -> None:
    r = FakeReader()
    r.add("h", 3, cpu_stat=CPU % 5, cpu_pressure=PSI, cgroup_events=b"populated 1\nfrozen 0\n")
    s = Sampler(r, HOST)
    s.sample_batch(r.walk(), 0)
    r.files[("h", "cpu.stat")] = CPU % 1_000_005
    sample, rates = s.sample_batch(r.walk(), 1).samples[0]
    assert sample.cpu is not None and sample.cpu.usage_usec == 1_000_005
    assert sample.memory_current is None and sample.memory_stat is None and sample.io is None
    assert rates.memory_percent is None and rates.cpu_cores is not None
    # Absent files are not re-probed every tick.
    n = sum(1 for x in r.reads if x == ("h", "memory.current"))
    s.sample_batch(r.walk(), 2)
    assert sum(1 for x in r.reads if x == ("h", "memory.current")) == n


def test_vanished_cgroup_gets_final_sample_and_gone() -> None:
    r = FakeReader()
    full_v2(r, "a", 2, usage=100)
    s = Sampler(r, HOST)
    tree = Tree(r.walk)
    s.sample_batch(tree.scan().current, 0)
    del r.inodes["a"]
    d = tree.scan()
    assert d.vanished == [("a", 2)]
    res = s.sample_batch(d.current, 1, vanished=d.vanished)
    assert res.gone == ["a"]
    final = res.samples[0][0]
    assert final.final and final.cpu is not None and final.cpu.usage_usec == 100
    assert "a" in r.forgotten and res.errors == {}


def test_removed_mid_tick_is_gone_not_an_error() -> None:
    r = FakeReader()
    full_v2(r, "a", 2)
    s = Sampler(r, HOST)
    s.sample_batch(r.walk(), 0)
    walk = r.walk()
    del r.inodes["a"]  # between the walk and the read
    res = s.sample_batch(walk, 1)
    assert res.gone == ["a"] and res.errors == {} and res.samples[0][0].final


def test_recreated_cgroup_same_name_no_rate_no_gone() -> None:
    r = FakeReader()
    full_v2(r, "a", 2, usage=5_000_000)
    s = Sampler(r, HOST)
    tree = Tree(r.walk)
    s.sample_batch(tree.scan().current, 0)
    full_v2(r, "a", 9, usage=10)  # removed and made again between two ticks
    d = tree.scan()
    assert d.new == [("a", 9)] and d.vanished == [("a", 2)]
    res = s.sample_batch(d.current, 1, vanished=d.vanished)
    assert res.gone == []
    sample, rates = res.samples[0]
    assert sample.inode == 9 and rates.cpu_cores is None


def test_errors_counted_by_reason() -> None:
    r = FakeReader()
    full_v2(r, "a", 2)
    full_v2(r, "b", 3)
    r.files[("b", "cpu.stat")] = b"usage_usec notanumber\n"
    r.fail[("a", "memory.current")] = PermissionError(13, "denied")
    res = Sampler(r, HOST).sample_batch(r.walk(), 0)
    assert res.errors == {"EACCES": 1, "parse": 1}
    assert res.samples == [] and res.gone == []


def test_idle_cgroups_are_read_less_often() -> None:
    r = FakeReader()
    full_v2(r, "a", 2)
    r.files[("a", "cgroup.events")] = b"populated 0\nfrozen 0\n"
    s = Sampler(r, HOST, idle_every=5)
    read_ticks = [t for t in range(12) if s.sample_batch(r.walk(), t, events_watched=True).samples]
    assert read_ticks == [0, 1, 6, 11]  # two reads for a rate, then every 5th tick
    # Without a watch, idle cgroups read cgroup.events each tick and wake up at once.
    s2 = Sampler(r, HOST, idle_every=5)
    s2.sample_batch(r.walk(), 0)
    s2.sample_batch(r.walk(), 1)
    assert not s2.sample_batch(r.walk(), 2).samples
    r.files[("a", "cgroup.events")] = b"populated 1\nfrozen 0\n"
    assert s2.sample_batch(r.walk(), 3).samples


def test_emptied_cgroup_sample_is_final() -> None:
    r = FakeReader()
    full_v2(r, "a", 2)
    s = Sampler(r, HOST)
    assert not s.sample_batch(r.walk(), 0).samples[0][0].final
    r.files[("a", "cgroup.events")] = b"populated 0\nfrozen 0\n"
    assert s.sample_batch(r.walk(), 1).samples[0][0].final


def test_one_oom_event_for_the_killed_cgroup_not_its_parent() -> None:
    r = FakeReader()
    full_v2(r, "p", 2)
    full_v2(r, "p/c", 3)
    s = Sampler(r, HOST)
    assert s.sample_batch(r.walk(), 0).oom == []
    # The child's kill shows in its local counter and in both hierarchical counters.
    r.files[("p/c", "memory.events")] = EVENTS % (1, 1)
    r.files[("p/c", "memory.events.local")] = EVENTS % (1, 1)
    r.files[("p", "memory.events")] = EVENTS % (1, 1)
    res = s.sample_batch(r.walk(), 1)
    assert [(e.cgroup, e.count, e.total) for e in res.oom] == [("p/c", 1, 1)]
    assert s.sample_batch(r.walk(), 2).oom == []
    # A watch-triggered check between ticks counts it once, and the tick then does not.
    r.files[("p/c", "memory.events")] = EVENTS % (2, 2)
    r.files[("p/c", "memory.events.local")] = EVENTS % (2, 2)
    assert [e.total for e in s.check_oom(["p/c"])] == [2]
    assert s.sample_batch(r.walk(), 3).oom == []


def test_existing_kills_at_start_are_not_events() -> None:
    r = FakeReader()
    full_v2(r, "a", 2, oom_kill=3)
    s = Sampler(r, HOST)
    assert s.sample_batch(r.walk(), 0).oom == []
    full_v2(r, "new", 5, oom_kill=1)  # created and OOM-killed between two ticks
    assert [e.cgroup for e in s.sample_batch(r.walk(), 1).oom] == ["new"]


def test_tree_globs_and_depth_free_diff() -> None:
    r = FakeReader()
    for i, rel in enumerate(["", "sys", "sys/a", "user", "user/x"]):
        r.add(rel, i + 1)
    t = Tree(r.walk, include=["", "user*"], exclude=["user/x"])
    d = t.scan()
    assert [rel for rel, _ in d.current] == ["", "user"]
    assert len(d.new) == 2 and d.vanished == []
    d = t.scan()
    assert d.new == [] and d.vanished == []


def test_repeated_content_is_parsed_once_and_shared_between_cgroups() -> None:
    r = FakeReader()
    full_v2(r, "a", 2)
    full_v2(r, "b", 3)
    s = Sampler(r, HOST)
    for t in range(3):
        res = s.sample_batch(r.walk(), t)
    (sa, _), (sb, _) = res.samples
    assert sa.cpu_pressure is sb.cpu_pressure and sa.events is sb.events
    r.files[("a", "cpu.stat")] = CPU % 77  # new content is parsed, not taken from the share
    sa2 = s.sample_batch(r.walk(), 3).samples[0][0]
    assert sa2.cpu is not None and sa2.cpu.usage_usec == 77


def test_files_of_controllers_not_enabled_are_never_probed() -> None:
    r = FakeReader()
    r.add("h", 3, cpu_stat=CPU % 5, cpu_pressure=PSI, cgroup_events=b"populated 1\nfrozen 0\n")
    r.files[("h", "cgroup.controllers")] = b"\n"  # hybrid host: no controller in v2
    full_v2(r, "m", 4)
    r.files[("m", "cgroup.controllers")] = b"cpu memory\n"
    s = Sampler(r, HOST, slow_every=1)
    for t in range(3):
        s.sample_batch(r.walk(), t)
    h_files = {f for rel, f in r.reads if rel == "h"}
    assert not any(
        f.startswith(("memory.current", "memory.max", "pids.", "io.stat")) for f in h_files
    )
    assert {"cpu.stat", "cpu.pressure", "memory.pressure"} <= h_files  # core files still read
    m_files = {f for rel, f in r.reads if rel == "m"}
    assert "memory.current" in m_files and "pids.current" not in m_files


def test_built_samples_are_plain_frozen_cgroup_samples() -> None:
    r = FakeReader()
    full_v2(r, "a", 2, usage=42)
    s = Sampler(r, HOST)
    sample = s.sample_batch(r.walk(), 0).samples[0][0]
    assert type(sample) is CgroupSample
    # Same values as the dataclass's own constructor gives, field by field.
    same = CgroupSample(**{f.name: getattr(sample, f.name) for f in dataclasses.fields(sample)})
    assert sample == same
    assert sample.cpu is not None and sample.cpu.usage_usec == 42 and sample.path == "a"
    with pytest.raises(dataclasses.FrozenInstanceError):
        sample.path = "b"  # type: ignore[misc]
    assert dataclasses.replace(sample, final=True).final
    row = [getattr(sample, f.name) for f in dataclasses.fields(sample)]
    assert _build_by_setters(*row) == sample  # the fallback builds the same


def test_fast_files_changing_after_a_run_of_repeats_are_parsed_again() -> None:
    r = FakeReader()
    full_v2(r, "a", 2, usage=5)
    s = Sampler(r, HOST, slow_every=1000)  # only the first read is a slow one
    for t in range(4):  # repeats: the whole list of bytes is compared at once
        sample, rates = s.sample_batch(r.walk(), t).samples[0]
    assert sample.cpu is not None and sample.cpu.usage_usec == 5 and rates.cpu_cores == 0.0
    r.files[("a", "cpu.stat")] = CPU % 2_000_005
    sample, rates = s.sample_batch(r.walk(), 4).samples[0]
    assert sample.cpu is not None and sample.cpu.usage_usec == 2_000_005
    assert rates.cpu_cores is not None and rates.cpu_cores > 0
    r.files[("a", "cgroup.events")] = b"populated 0\nfrozen 0\n"
    sample, _ = s.sample_batch(r.walk(), 5).samples[0]
    assert sample.events is not None and sample.events.populated is False and sample.final
    del r.files[("a", "cpu.pressure")]  # a file vanishing reads as None, never stale
    assert s.sample_batch(r.walk(), 6, dirty=frozenset({"a"})).samples[0][0].cpu_pressure is None


def test_rates_are_reused_only_while_every_input_repeats_slow_files_included() -> None:
    r = FakeReader()
    full_v2(r, "a", 2, usage=1_000_000)
    r.files[("a", "cpu.max")] = b"max 100000\n"
    del r.files[("a", "memory.stat")]  # a memory.stat read (new read time) is always a change
    s = Sampler(r, HOST, slow_every=1)  # every read is a slow one
    rates = [s.sample_batch(r.walk(), t).samples[0][1] for t in range(4)]
    assert rates[3] is rates[2]  # nothing moved for two reads: the same rates object
    r.files[("a", "cpu.max")] = b"50000 100000\n"  # a slow-cadence file changes
    r.files[("a", "cpu.stat")] = CPU % 1_500_000
    moved = s.sample_batch(r.walk(), 4).samples[0][1]
    assert moved is not rates[3] and moved.cpu_quota_percent is not None
    again = s.sample_batch(r.walk(), 5).samples[0][1]
    assert again is not moved and again.cpu_cores == 0.0  # recomputed once more, then reused
    assert s.sample_batch(r.walk(), 6).samples[0][1] is again
    del r.files[("a", "memory.current")]  # a file vanishing is a change, never a reuse
    gone = s.sample_batch(r.walk(), 7).samples[0][1]
    assert gone is not again and gone.memory_used is None


def test_files_of_a_controller_turned_off_read_none_not_stale() -> None:
    r = FakeReader()
    full_v2(r, "m", 4)
    r.files[("m", "cgroup.controllers")] = b"cpu memory\n"
    s = Sampler(r, HOST, slow_every=1)
    first = s.sample_batch(r.walk(), 0).samples[0][0]
    assert first.memory_current == 8192 and first.memory_max is not None
    r.files[("m", "cgroup.controllers")] = b"cpu\n"  # memory disabled in the parent
    later = s.sample_batch(r.walk(), 1).samples[0][0]
    assert later.memory_current is None and later.memory_max is None
    assert later.memory_events is None and later.cpu is not None
