"""The history recorder at 1,000 cgroups, 1 s ticks: CPU, bytes on disk, replay open, RSS.

Samples are synthetic (tests/unit/history_synth.py: every field a v2 host fills; busy cgroups
move like loaded ones, idle ones are re-read every 5th tick as the sampler does): the figures
are the recorder's own cost (encoding, compression, writing, reading), not the collector's.

- CPU per tick: the writer thread's CPU time (thread_time) per recorded tick, as a share of the
  1 s tick; plus the event loop's part (building the TickInput from a real Store).
- Bytes per cgroup per tick: segment bytes on disk / (ticks x cgroups), all busy and all idle,
  keyframes (every 60 ticks) included.
- Replay open: a new reader finding and decoding the tick one hour back in a one-day store
  (24 hour-long segments at 1,000 busy cgroups; built by repeating one encoded keyframe group
  with rewritten headers, the other hours hard links: same sizes and record counts, less
  setup time: the hour's records carry hour 0's times, so the tick found is the segment's
  last, a full keyframe group from its keyframe: the worst case but one record).
- RSS added: the process' resident memory after recording, minus before (ticks pre-built).

    .venv/bin/python -m benchmarks.history_bench [--cgroups 1000] [--ticks 180]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time

from agent.recording import tick_input
from collectors.recorder.codec import TickEncoder, TickInput
from collectors.recorder.format import FLAG_KEYFRAME, KIND_SAMPLES, SegmentName, frame_record
from collectors.recorder.reader import HistoryReader
from collectors.recorder.retention import segments
from collectors.recorder.writer import Recorder, RecorderConfig
from collectors.store import Store
from tests.unit.history_synth import HOST, SyntheticHost

TICK_S = 1.0
KEYFRAME_EVERY = 30  # RecorderConfig's default


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def build(n: int, ticks: int, busy: float) -> list[TickInput]:
    h = SyntheticHost(n, busy_share=busy)
    return [h.next_tick() for _ in range(ticks)]


def record(ticks: list[TickInput], directory: str) -> tuple[float, int, int]:
    """(writer CPU s per tick, bytes on disk, rss added)"""
    before = rss()
    rec = Recorder(RecorderConfig(directory, keyframe_every=KEYFRAME_EVERY, queue_len=10**6))
    rec.start()
    for t in ticks:
        rec.submit_tick(t)
    rec.close(timeout_s=600)
    added = rss() - before
    on_disk = sum(s.size for s in segments(directory))
    return rec.stats.encode_seconds / len(ticks), on_disk, added


def loop_side(ticks: list[TickInput]) -> float:
    """Seconds per tick the event loop spends handing a tick to the recorder."""
    store = Store()
    costs = []
    for t in ticks[:20]:
        store.publish([(e.sample, e.rates) for e in t.entries], mono=t.mono)
        t0 = time.perf_counter()
        tick_input(store, HOST)
        costs.append(time.perf_counter() - t0)
    return statistics.median(costs)


def day_store(ticks: list[TickInput], directory: str) -> float:
    """A one-day store; returns the wall time one hour before its end."""
    enc = TickEncoder(KEYFRAME_EVERY)
    group = [enc.encode(t) for t in ticks[:KEYFRAME_EVERY]]
    assert group[0][1] and not any(k for _, k in group[1:])
    hour = int(3600 / TICK_S)
    end_us = int(time.time() * 1e6)
    start_us = end_us - 24 * 3600 * 10**6
    first = None
    for h in range(24):
        first_us = start_us + h * 3600 * 10**6
        last_us = first_us + (hour - 1) * 10**6
        name = os.path.join(directory, SegmentName("samples", first_us, last_us).name)
        if first is None:
            with open(name, "wb") as f:
                for i in range(hour):
                    frame, key = group[i % KEYFRAME_EVERY]
                    flags = FLAG_KEYFRAME if key else 0
                    f.write(frame_record(KIND_SAMPLES, flags, first_us + i * 10**6, frame))
            first = (name, first_us)
        else:  # same bytes, other hours: only the names (times) differ
            os.link(first[0], name)
    # one hour back from the end, on a keyframe (worst case: its rates need the group before)
    seg_first = start_us + 23 * 3600 * 10**6 - 3600 * 10**6
    return (seg_first + KEYFRAME_EVERY * 30 * 10**6) / 1e6  # record 1800: a keyframe


def open_at(directory: str, wall: float) -> tuple[float, float, int, int]:
    """(wall s, CPU s, records decoded, cgroups) of a fresh reader's ``at``."""
    t0, c0 = time.perf_counter(), time.process_time()
    r = HistoryReader(directory)
    snap = r.at(wall)
    return time.perf_counter() - t0, time.process_time() - c0, r.decoded, len(snap.entries)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cgroups", type=int, default=1000)
    ap.add_argument("--ticks", type=int, default=180)
    a = ap.parse_args()
    n, k = a.cgroups, a.ticks
    tmp = tempfile.mkdtemp(prefix="history-bench-")
    try:
        print(f"history recorder, {n} cgroups, {k} ticks of {TICK_S:.0f} s, keyframe every "
              f"{KEYFRAME_EVERY}; load {os.getloadavg()[0]:.1f}")  # fmt: skip
        busy = build(n, k, 1.0)
        cpu, size, added = record(busy, os.path.join(tmp, "busy"))
        loop = loop_side(busy)
        print(f"busy: writer CPU {cpu * 1e3:.1f} ms/tick = {cpu / TICK_S * 100:.1f} % of the "
              f"tick (target <= 15 %); event loop {loop * 1e3:.2f} ms/tick")  # fmt: skip
        print(f"busy: {size / (k * n):.1f} bytes per cgroup per tick (target <= 32)")
        print(f"busy: RSS added by the recorder {added / 2**20:.1f} MiB")
        idle = build(n, k, 0.0)
        cpu_i, size_i, _ = record(idle, os.path.join(tmp, "idle"))
        print(f"idle: {size_i / (k * n):.2f} bytes per cgroup per tick (target <= 4); "
              f"writer CPU {cpu_i * 1e3:.1f} ms/tick")  # fmt: skip
        day = os.path.join(tmp, "day")
        os.makedirs(day)
        worst = day_store(busy, day)
        segs = segments(day)
        print(f"one-day store: {len(segs)} segments of {segs[0].size / 2**20:.0f} MiB "
              "(hard links)")  # fmt: skip
        for _ in range(3):  # a fresh reader each time: listing, index scan, decode
            secs, cpu_s, recs, rows = open_at(day, worst)
            print(f"replay --at 1 h back ({recs} records decoded): {secs:.3f} s "
                  f"({cpu_s:.3f} s CPU), {rows} cgroups (target <= 1 s)")  # fmt: skip
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
