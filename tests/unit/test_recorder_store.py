"""The history store: round-trips, corruption detection, crash-tail recovery, retention."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from collectors.recorder.codec import TickDecoder, TickEncoder
from collectors.recorder.events import RecordedEvent
from collectors.recorder.format import (
    HEADER_SIZE,
    SegmentName,
    pack_ints,
    parse_segment_name,
    unpack_ints,
)
from collectors.recorder.reader import HistoryReader, NoHistory
from collectors.recorder.retention import enforce, segments
from collectors.recorder.scan import scan
from collectors.recorder.writer import Recorder, RecorderConfig
from tests.unit.history_synth import SyntheticHost


def test_ints_round_trip() -> None:
    vals = [0, 1, -1, 2**62, -(2**62), 123456789, -5]
    assert unpack_ints(pack_ints(vals)) == vals


def test_segment_names() -> None:
    n = SegmentName("samples", 17, None)
    assert parse_segment_name(n.name) == n
    closed = SegmentName("events", 17, 99)
    assert parse_segment_name(closed.name) == closed
    assert parse_segment_name("samples-x.seg") is None
    assert parse_segment_name("notes.txt") is None


def test_codec_round_trips_every_field() -> None:
    h = SyntheticHost(60, busy_share=0.5)
    enc, dec = TickEncoder(keyframe_every=7), TickDecoder()
    for _ in range(20):  # crosses keyframes
        t = h.next_tick()
        frame, _key = enc.encode(t)
        dec.apply(frame)
        snap = dec.snapshot()
        assert [e.path for e in snap.entries] == [e.path for e in t.entries]
        for got, want in zip(snap.entries, t.entries, strict=True):
            g, w = got.sample, want.sample
            assert g.inode == w.inode
            assert g.mono == pytest.approx(w.mono, abs=1e-6)
            assert g.wall == pytest.approx(w.wall, abs=1e-5)
            for name in ("cpu", "cpu_max", "cpu_weight", "memory_current", "memory_peak",
                         "memory_max", "memory_high", "memory_low", "memory_min",
                         "swap_current", "swap_max", "memory_events", "memory_events_local",
                         "pids_current", "pids_max", "io", "events", "stat", "final"):  # fmt: skip
                assert getattr(g, name) == getattr(w, name), name
            assert g.memory_stat is not None and w.memory_stat is not None
            assert dict(g.memory_stat.raw) == dict(w.memory_stat.raw)
            assert g.memory_stat.inactive_file == w.memory_stat.inactive_file
            for name in ("cpu_pressure", "memory_pressure", "io_pressure"):
                gp, wp = getattr(g, name), getattr(w, name)
                assert gp.some.total_usec == wp.some.total_usec
                assert gp.some.avg10 == pytest.approx(wp.some.avg10, abs=0.005)
            assert (got.stale, got.gone) == (want.stale, want.gone)
            assert got.first_seen_wall == pytest.approx(want.first_seen_wall, abs=1e-5)
            if want.rates.cpu_cores is not None and got.rates.cpu_cores is not None:
                assert got.rates.cpu_cores == pytest.approx(want.rates.cpu_cores, rel=1e-6)
            assert got.rates.memory_used == want.rates.memory_used
            if want.rates.io_read_bps is not None:
                assert got.rates.io_read_bps == pytest.approx(want.rates.io_read_bps, abs=0.5)


def _record(
    tmp: Path, ticks: int, start_wall: float | None = None, **kw: object
) -> tuple[Recorder, list[float]]:
    h = SyntheticHost(20, busy_share=0.5, start_wall=start_wall)
    rec = Recorder(RecorderConfig(str(tmp), keyframe_every=5, **kw))  # type: ignore[arg-type]
    rec.start()
    walls = []
    for _ in range(ticks):
        t = h.next_tick()
        walls.append(t.wall)
        while not rec.submit_tick(t):
            rec.stats.ticks_dropped -= 1
            time.sleep(0.01)
    return rec, walls


def test_reader_finds_every_tick_and_steps(tmp_path: Path) -> None:
    rec, walls = _record(tmp_path, 23)
    rec.submit_event(RecordedEvent(walls[3], "oom", "a/b", "web", 412, "python3", 1, 1))
    rec.close()
    r = HistoryReader(str(tmp_path))
    for k in (0, 4, 5, 6, 22, 13, 12):
        snap = r.at(walls[k] + 0.1)
        assert snap.wall == pytest.approx(walls[k], abs=1e-5)
        assert len(snap.entries) == 20
    assert r.step(walls[10], -1) == pytest.approx(walls[9], abs=1e-5)
    assert r.step(walls[10], 3) == pytest.approx(walls[13], abs=1e-5)
    assert r.step(walls[22], 5) == pytest.approx(walls[22], abs=1e-5)  # clamped at the end
    with pytest.raises(NoHistory):
        r.at(walls[0] - 10)
    (ev,) = list(r.events())
    assert (ev.kind, ev.cgroup, ev.pid, ev.comm) == ("oom", "a/b", 412, "python3")
    assert r.problems == []


def test_rates_at_a_keyframe_come_from_the_previous_group(tmp_path: Path) -> None:
    rec, walls = _record(tmp_path, 12)
    rec.close()
    snap = HistoryReader(str(tmp_path)).at(walls[5])  # record 5 is a keyframe (every 5)
    busy = [e for e in snap.entries if e.sample.pids_current]
    assert busy and all(e.rates.cpu_cores and e.rates.cpu_cores > 0.3 for e in busy)


def test_segments_rotate_and_each_starts_with_a_keyframe(tmp_path: Path) -> None:
    rec, walls = _record(tmp_path, 12, segment_s=3.5)
    rec.close()
    segs = segments(str(tmp_path), "samples")
    assert len(segs) == 3 and all(s.last_us is not None for s in segs)
    for s in segs:
        assert scan(s.path).records[0].header.keyframe
    r = HistoryReader(str(tmp_path))
    assert r.at(walls[11]).wall == pytest.approx(walls[11], abs=1e-5)
    assert r.step(walls[3], 1) == pytest.approx(walls[4], abs=1e-5)  # across segments
    first_of_second = r.at(walls[4])  # rates need the previous segment's last read
    busy = [e for e in first_of_second.entries if e.sample.pids_current]
    assert busy and all(e.rates.cpu_cores for e in busy)


def _only_segment(tmp: Path) -> str:
    (s,) = segments(str(tmp), "samples")
    return s.path


def test_bit_flip_is_detected_and_skipped(tmp_path: Path) -> None:
    rec, walls = _record(tmp_path, 15)
    rec.close()
    path = _only_segment(tmp_path)
    recs = scan(path).records
    victim = recs[7]  # a delta record in the second keyframe group
    with open(path, "r+b") as f:
        f.seek(victim.offset + HEADER_SIZE + 5)
        b = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([b[0] ^ 0x40]))
    res = scan(path)
    assert res.problem is not None and "checksum" in res.problem
    r = HistoryReader(str(tmp_path))
    assert r.at(walls[3]).wall == pytest.approx(walls[3], abs=1e-5)  # before: fine
    with pytest.raises(NoHistory):
        r.at(walls[8])  # its delta chain is broken until the next keyframe
    assert any("checksum" in p for p in r.problems)
    assert r.at(walls[11]).wall == pytest.approx(walls[11], abs=1e-5)  # next keyframe group


def test_truncated_closed_segment_is_reported_not_fatal(tmp_path: Path) -> None:
    rec, walls = _record(tmp_path, 10)
    rec.close()
    path = _only_segment(tmp_path)
    size = os.path.getsize(path)
    os.truncate(path, size - 7)
    r = HistoryReader(str(tmp_path))
    assert r.at(walls[9]).wall == pytest.approx(walls[8], abs=1e-5)  # the last whole one
    assert any("truncated" in p for p in r.problems)


def test_crash_tail_is_cut_and_recording_goes_on(tmp_path: Path) -> None:
    live = tmp_path / "live"
    rec, walls = _record(live, 8)
    deadline = time.monotonic() + 10
    while rec.stats.ticks_recorded < 8 and time.monotonic() < deadline:
        time.sleep(0.02)
    # What a SIGKILL leaves: the segment still open (no last time in its name)...
    (s,) = segments(str(live), "samples")
    assert s.last_us is None
    crashed = tmp_path / "crashed"
    crashed.mkdir()
    path = crashed / os.path.basename(s.path)
    path.write_bytes(Path(s.path).read_bytes())
    rec.close()
    good = path.stat().st_size
    with open(path, "ab") as f:  # ...with half a record at its end
        f.write(b"PSR1\x01\x00\x00\x00" + b"\xff" * 30)
    rec2, walls2 = _record(crashed, 4, start_wall=walls[-1] + 5)
    rec2.close()
    assert rec2.stats.recovered and "cut 38 bytes" in rec2.stats.recovered[0]
    segs = segments(str(crashed), "samples")
    assert len(segs) == 2 and segs[0].size == good and segs[0].last_us is not None
    r = HistoryReader(str(crashed))
    assert r.at(walls[7]).wall == pytest.approx(walls[7], abs=1e-5)
    assert r.at(walls2[3]).wall == pytest.approx(walls2[3], abs=1e-5)
    assert r.problems == []


def test_retention_removes_oldest_first_by_age_and_size(tmp_path: Path) -> None:
    d = str(tmp_path)
    for first, last, size in ((100, 200, 10), (300, 400, 10), (500, 600, 10), (700, 800, 10)):
        (tmp_path / SegmentName("samples", first * 10**6, last * 10**6).name).write_bytes(
            b"x" * size
        )
    # by age: segments whose last record is older than now - max_age
    removed = enforce(d, "samples", max_age_s=500, max_bytes=10**9, now=850)
    assert [os.path.basename(p) for p in removed] == [SegmentName("samples", 10**8, 2 * 10**8).name]
    # by size: oldest go until the rest fits
    removed = enforce(d, "samples", max_age_s=10**9, max_bytes=15, now=850)
    assert len(removed) == 2
    assert [s.first_us for s in segments(d, "samples")] == [700 * 10**6]


def test_full_queue_sheds_and_counts(tmp_path: Path) -> None:
    h = SyntheticHost(5)
    rec = Recorder(RecorderConfig(str(tmp_path), queue_len=2))  # not started: nothing drains
    os.makedirs(tmp_path, exist_ok=True)
    results = [rec.submit_tick(h.next_tick()) for _ in range(5)]
    assert results == [True, True, False, False, False]
    assert rec.stats.ticks_dropped == 3


def test_write_error_stops_recording_without_raising(tmp_path: Path) -> None:
    rec, _ = _record(tmp_path, 2)
    time.sleep(0.2)
    assert rec._samples.fd is not None
    os.close(rec._samples.fd)  # stands for ENOSPC / EIO: the next write fails
    rec._samples.fd = os.open("/dev/full", os.O_WRONLY)
    h = SyntheticHost(20, busy_share=0.5)
    for _ in range(3):
        rec.submit_tick(h.next_tick())
        time.sleep(0.1)
    assert rec.stats.stopped is not None and "no space" in rec.stats.stopped
    assert rec.submit_tick(h.next_tick()) is False
    rec.close()
