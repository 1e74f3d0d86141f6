"""Issue 17.5: the shim's log records (stdout and stderr apart, each with its time), read back
with --since/--until/-t, and docker's multiplexed frames to the CLI."""

from __future__ import annotations

import errno
import os
from pathlib import Path

from agent.api.logframes import split_frames
from agent.api.logtail import LogQuery, Renderer
from workloads.supervisor.logread import Record, RecordReader, log_sources, parse_time
from workloads.supervisor.logs import (
    MAX_PIECE,
    STDERR,
    STDOUT,
    StreamLog,
    encode_records,
    format_time,
)

T0 = 1_765_102_800_123_456_789  # 2025-12-07T10:20:00.123456789Z


def _read(path: Path) -> list[Record]:
    reader = RecordReader(legacy=False)
    return reader.feed(path.read_bytes()) + reader.flush()


def test_time_format_round_trips_with_nanoseconds() -> None:
    assert format_time(T0) == b"2025-12-07T10:20:00.123456789Z"
    assert parse_time(format_time(T0)) == T0
    assert parse_time(b"not a time") is None


def test_lines_and_pieces_become_records() -> None:
    recs = encode_records(STDERR, b"a b\n\nc", T0).splitlines(keepends=True)
    stamp = format_time(T0)
    assert recs == [stamp + b" stderr F a b\n", stamp + b" stderr F \n", stamp + b" stderr P c\n"]
    reader = RecordReader(legacy=False)
    got = reader.feed(b"".join(recs)[:-3]) + reader.feed(b"".join(recs)[-3:])  # torn reads
    assert [(r.stream, r.data, r.ns, r.ends_line) for r in got] == [
        (STDERR, b"a b\n", T0, True),
        (STDERR, b"\n", T0, True),
        (STDERR, b"c", T0, False),
    ]


def test_a_long_line_is_stored_in_pieces() -> None:
    recs = encode_records(STDOUT, b"x" * (2 * MAX_PIECE + 5) + b"\n", T0).splitlines(True)
    assert [r.split(b" ")[2] for r in recs] == [b"P", b"P", b"F"]
    reader = RecordReader(legacy=False)
    assert (
        b"".join(r.data for r in reader.feed(b"".join(recs))) == b"x" * (2 * MAX_PIECE + 5) + b"\n"
    )


def test_a_line_that_is_no_record_is_shown_not_lost() -> None:
    reader = RecordReader(legacy=False)
    assert reader.feed(b"garbage line\n") == [Record(STDOUT, b"garbage line\n", None, True)]
    assert reader.feed(b"torn at the e") == []
    assert reader.flush() == [Record(STDOUT, b"torn at the e\n", None, True)]


def test_stream_log_rotates_between_records_only(tmp_path: Path) -> None:
    path = tmp_path / "stdio.log"
    rec_len = len(encode_records(STDOUT, b"0123456789\n", T0))
    log = StreamLog(str(path), max_bytes=rec_len * 2 + 5, keep=2)
    for i in range(7):
        log.write(STDOUT if i % 2 else STDERR, b"line %04d\n" % i)
    log.close()
    files = [f.path for f in log_sources(str(tmp_path), 2)]
    assert [os.path.basename(f) for f in files] == ["stdio.log.2", "stdio.log.1", "stdio.log"]
    got = [r for f in files for r in _read(Path(f))]
    assert all(r.ns is not None for r in got)  # every file starts at a record
    assert [(r.stream, r.data) for r in got] == [
        (STDERR if i % 2 == 0 else STDOUT, b"line %04d\n" % i) for i in range(2, 7)
    ]


def test_a_full_disk_counts_the_output_bytes_lost() -> None:
    log = StreamLog("/dev/full", max_bytes=1 << 20, keep=1)  # ENOSPC on every write
    log.write(STDOUT, b"abc\nde")
    log.write(STDERR, b"f\n")
    log.close()
    assert log.dropped == len(b"abc\nde") + len(b"f\n")
    assert log.last_error == os.strerror(errno.ENOSPC)


def test_legacy_files_come_first(tmp_path: Path) -> None:
    for name in ("output.log.1", "output.log", "stdio.log"):
        (tmp_path / name).write_bytes(b"")
    assert [(os.path.basename(f.path), f.legacy) for f in log_sources(str(tmp_path), 3)] == [
        ("output.log.1", True),
        ("output.log", True),
        ("stdio.log", False),
    ]


def _records() -> list[Record]:
    return [
        Record(STDOUT, b"old\n", None),  # from a legacy file
        Record(STDOUT, b"one\n", T0),
        Record(STDERR, b"half", T0 + 1, ends_line=False),
        Record(STDERR, b" done\n", T0 + 2),
        Record(STDOUT, b"late\n", T0 + 10),
    ]


def test_renderer_windows_and_timestamps_at_line_starts_only() -> None:
    q = LogQuery(since_ns=T0, until_ns=T0 + 5, timestamps=True)
    r = Renderer(q)
    stamp = format_time(T0).decode()
    assert r.render(_records()).decode() == (
        f"{stamp} one\n{format_time(T0 + 1).decode()} half done\n"
    )
    assert r.past_until  # "late" is after --until: a follower stops there
    assert Renderer(LogQuery()).render(_records()) == b"old\none\nhalf done\nlate\n"


def test_frames_keep_the_streams_apart_across_any_chunking() -> None:
    data = Renderer(LogQuery(mux=True)).render(_records())
    chunks = [data[i : i + 3] for i in range(0, len(data), 3)]
    assert list(split_frames(iter(chunks))) == [
        (1, b"old\n"),
        (1, b"one\n"),
        (2, b"half"),
        (2, b" done\n"),
        (1, b"late\n"),
    ]
