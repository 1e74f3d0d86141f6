"""Issue 17.5: logs --tail N reads the last lines across rotated files, from the end, in raw
files of an earlier version and in record files alike."""

from __future__ import annotations

from pathlib import Path

import pytest

from workloads.supervisor import logread
from workloads.supervisor.logread import LogFile, RecordReader, tail_start
from workloads.supervisor.logs import STDERR, STDOUT, encode_records


def _files(tmp_path: Path, *contents: bytes, legacy: bool = True) -> list[LogFile]:
    paths = []
    for i, data in enumerate(contents):
        p = tmp_path / f"f{i}"
        p.write_bytes(data)
        paths.append(LogFile(str(p), legacy))
    return paths


def _tail(files: list[LogFile], n: int) -> bytes:
    """The output ``tail_start`` points at, read as the API reads it."""
    live = Path(files[-1].path).stat().st_size
    first, start = tail_start(files, n, live)
    out = b""
    for i in range(first, len(files)):
        reader = RecordReader(files[i].legacy)
        data = Path(files[i].path).read_bytes()[start if i == first else 0 :]
        out += b"".join(r.data for r in reader.feed(data) + reader.flush())
    return out


def test_last_lines_across_rotated_files(tmp_path: Path) -> None:
    files = _files(tmp_path, b"1\n2\n3\n", b"4\n5\n")
    assert _tail(files, 2) == b"4\n5\n"
    assert _tail(files, 3) == b"3\n4\n5\n"
    assert _tail(files, 99) == b"1\n2\n3\n4\n5\n"
    assert _tail(files, 0) == b""
    assert tail_start([], 3, 0) == (0, 0)


def test_an_unfinished_last_line_counts(tmp_path: Path) -> None:
    assert _tail(_files(tmp_path, b"a\nb\nc"), 2) == b"b\nc"


def test_a_raw_line_rotated_in_its_middle_is_one_line(tmp_path: Path) -> None:
    assert _tail(_files(tmp_path, b"a\nbb", b"b\nc\n"), 2) == b"bbb\nc\n"


def test_blocks_smaller_than_the_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(logread, "BLOCK", 3)
    data = b"".join(f"line {i}\n".encode() for i in range(100))
    assert _tail(_files(tmp_path, data), 3) == b"line 97\nline 98\nline 99\n"


def test_records_count_lines_not_pieces(tmp_path: Path) -> None:
    recs = [
        *encode_records(STDOUT, b"one\ntw", 1).splitlines(keepends=True),
        *encode_records(STDERR, b"err\n", 2).splitlines(keepends=True),
        *encode_records(STDOUT, b"o\nthree\nfou", 3).splitlines(keepends=True),
    ]
    files = _files(tmp_path, b"".join(recs[:2]), b"".join(recs[2:]), legacy=False)
    # the lines: one, two (pieces "tw" + "o"), err, three, fou (unfinished)
    assert _tail(files, 1) == b"fou"
    assert _tail(files, 2) == b"three\nfou"
    assert _tail(files, 3) == b"o\nthree\nfou"  # "tw" is in the line before "err"
    assert _tail(files, 99) == b"one\ntwerr\no\nthree\nfou"
