"""Store: ring buffer bounds, compact history, staleness, gone expiry, OOM events."""

from __future__ import annotations

import asyncio

from collectors.rates import EMPTY_RATES
from collectors.sample import CgroupRates, CgroupSample, OomEvent
from collectors.store import Store


def smp(path: str, mono: float, mem: int | None = 4096 * 10, inode: int = 1) -> CgroupSample:
    return CgroupSample(path, inode, mono, 100.0 + mono, memory_current=mem)


def test_ring_buffer_is_bounded_and_ordered() -> None:
    st = Store(history_len=5)
    for t in range(12):
        st.publish(
            [(smp("a", float(t), mem=4096 * t), CgroupRates(cpu_cores=t / 10))], mono=float(t)
        )
    h = st.history("a")
    assert len(h) == 5
    assert [p.mono for p in h] == [7.0, 8.0, 9.0, 10.0, 11.0]
    assert [p.memory_current for p in h] == [4096 * t for t in range(7, 12)]
    assert h[-1].cpu_cores is not None and abs(h[-1].cpu_cores - 1.1) < 1e-6
    e = st.entries["a"]
    assert e.history[0].mono == 7.0 and e.history[-1].mono == 11.0
    assert [p.mono for p in e.history[1:3]] == [8.0, 9.0]


def test_history_grows_with_age_and_keeps_none() -> None:
    st = Store(history_len=600)
    st.publish([(smp("a", 0.0, mem=None), EMPTY_RATES)], mono=0.0)
    st.publish([(smp("a", 1.0, mem=None), EMPTY_RATES)], mono=1.0)
    h = st.history("a")
    assert len(h) == 2
    assert h[0].cpu_cores is None and h[0].memory_current is None  # unavailable, not zero
    assert st.entries["a"].history.nbytes() == 16  # 8 bytes per point, not 600 preallocated


def test_inode_change_restarts_history() -> None:
    st = Store(history_len=10)
    st.publish([(smp("a", 0.0, inode=1), EMPTY_RATES)], mono=0.0)
    st.publish([(smp("a", 1.0, inode=2), EMPTY_RATES)], mono=1.0)
    assert len(st.history("a")) == 1
    assert st.entries["a"].sample.inode == 2


def test_entries_without_sample_are_stale_and_repeat_their_point() -> None:
    st = Store(history_len=10)
    st.publish([(smp("a", 0.0), EMPTY_RATES), (smp("b", 0.0), EMPTY_RATES)], mono=0.0)
    st.publish([(smp("a", 1.0), EMPTY_RATES)], mono=1.0)
    st.publish([(smp("a", 2.0), EMPTY_RATES)], mono=2.0)
    assert st.entries["a"].stale_ticks == 0
    assert st.entries["b"].stale_ticks == 2
    assert [p.mono for p in st.history("b")] == [0.0, 1.0, 2.0]
    st.publish([(smp("b", 3.0), EMPTY_RATES)], mono=3.0)
    assert st.entries["b"].stale_ticks == 0


def test_gone_keeps_final_sample_until_ttl() -> None:
    st = Store(history_len=10, gone_ttl_ticks=2)
    st.publish([(smp("a", 0.0), EMPTY_RATES)], mono=0.0)
    final = CgroupSample("a", 1, 1.0, 101.0, memory_current=8192, final=True)
    st.publish([(final, EMPTY_RATES)], gone=["a"], mono=1.0)
    assert st.entries["a"].gone and st.entries["a"].sample.final
    assert st.stats.cgroups == 0
    st.publish([], mono=2.0)
    assert "a" in st.entries
    st.publish([], mono=3.0)
    assert "a" not in st.entries


def test_errors_counted_by_reason_and_oom_events_kept() -> None:
    st = Store(max_oom_events=2)
    ev = [OomEvent("a", 1.0, 1, n) for n in range(1, 4)]
    st.publish([], errors={"parse": 2}, oom=ev[:1])
    st.publish([], errors={"parse": 1, "EACCES": 1})
    st.record_oom(ev[1:])
    assert st.stats.errors == {"parse": 3, "EACCES": 1}
    assert [e.total for e in st.oom_events()] == [2, 3]  # bounded list
    assert st.stats.oom_events == 3  # but every one counted


async def test_wait_tick_wakes_once_per_publish() -> None:
    st = Store()
    waiter = asyncio.ensure_future(st.wait_tick())
    await asyncio.sleep(0)
    st.publish([])
    assert await asyncio.wait_for(waiter, 1) == 1


def test_set_history_len_keeps_newest_points() -> None:
    st = Store(history_len=8)
    for t in range(11):  # wrapped once
        st.publish(
            [(smp("a", float(t), mem=4096 * t), CgroupRates(cpu_cores=t / 10))], mono=float(t)
        )
    st.set_history_len(3)
    assert [p.mono for p in st.history("a")] == [8.0, 9.0, 10.0]
    assert [p.memory_current for p in st.history("a")] == [4096 * t for t in (8, 9, 10)]
    for t in range(11, 14):
        st.publish([(smp("a", float(t)), EMPTY_RATES)], mono=float(t))
    assert [p.mono for p in st.history("a")] == [11.0, 12.0, 13.0]
    st.set_history_len(6)  # growing keeps what there is and fills up
    st.publish([(smp("a", 14.0), EMPTY_RATES)], mono=14.0)
    assert [p.mono for p in st.history("a")] == [11.0, 12.0, 13.0, 14.0]
