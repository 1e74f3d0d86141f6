"""Size-capped, rotated workload logs."""

from __future__ import annotations

import os

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
