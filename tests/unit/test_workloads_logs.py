"""Size-capped, rotated workload logs."""

from __future__ import annotations

import errno
import os

import pytest

from workloads.supervisor.logs import RotatingLog, log_files


def _read(paths: list[str]) -> bytes:
    out = b""
    for p in paths:
        with open(p, "rb") as f:
            out += f.read()
    return out


def test_rotation_caps_each_file_and_keeps_the_newest(tmp_path: os.PathLike[str]) -> None:
    path = os.path.join(tmp_path, "output.log")
    log = RotatingLog(path, max_bytes=10, keep=2)
    data = b"".join(f"{i:02d}\n".encode() for i in range(20))  # 60 bytes
    for i in range(0, len(data), 7):
        log.write(data[i : i + 7])
    log.close()
    files = log_files(path, 2)
    assert [os.path.basename(f) for f in files] == ["output.log.2", "output.log.1", "output.log"]
    assert all(os.path.getsize(f) <= 10 for f in files)
    # Oldest first, contiguous, ending with the last bytes written: only the oldest were dropped.
    assert data.endswith(_read(files))
    assert len(_read(files)) == 30


def test_a_write_larger_than_the_cap_is_split(tmp_path: os.PathLike[str]) -> None:
    path = os.path.join(tmp_path, "output.log")
    log = RotatingLog(path, max_bytes=4, keep=5)
    log.write(b"abcdefghij")
    log.close()
    assert _read(log_files(path, 5)) == b"abcdefghij"


def test_reopening_appends_and_counts_the_existing_size(tmp_path: os.PathLike[str]) -> None:
    path = os.path.join(tmp_path, "output.log")
    first = RotatingLog(path, max_bytes=8, keep=1)
    first.write(b"123456")
    first.close()
    second = RotatingLog(path, max_bytes=8, keep=1)
    second.write(b"789")
    second.close()
    # The size already on disk counts: the file is filled to its cap, then rotated.
    assert _read([path + ".1"]) == b"12345678"
    assert _read([path]) == b"9"


def test_keep_zero_drops_old_output(tmp_path: os.PathLike[str]) -> None:
    path = os.path.join(tmp_path, "output.log")
    log = RotatingLog(path, max_bytes=3, keep=0)
    log.write(b"abcdef")
    log.close()
    assert log_files(path, 3) == [path]
    assert _read([path]) == b"def"


def test_a_full_disk_drops_and_counts_output_without_raising() -> None:
    # /dev/full answers every write with ENOSPC: a real full-disk error, no mock.
    log = RotatingLog("/dev/full", max_bytes=1 << 20, keep=1)
    log.write(b"x" * 100)
    log.write(b"y" * 23)
    log.close()
    assert log.dropped == 123
    assert log.last_error == os.strerror(errno.ENOSPC)


def test_a_failed_rotation_drops_output_and_the_next_write_recovers(
    tmp_path: os.PathLike[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = os.path.join(tmp_path, "output.log")
    log = RotatingLog(path, max_bytes=4, keep=1)
    log.write(b"abcd")

    def full(src: str, dst: str) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with monkeypatch.context() as m:
        m.setattr(os, "rename", full)
        log.write(b"efgh")  # needs a rotation, which fails: dropped, not raised
    assert log.dropped == 4
    log.write(b"ij")  # the file is reopened and rotation works again
    log.close()
    assert log.dropped == 4
    assert _read(log_files(path, 1)) == b"abcdij"
