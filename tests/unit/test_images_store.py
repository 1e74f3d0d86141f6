"""The content store: verified while written, atomic, one writer per digest."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator

import pytest

from workloads.images.errors import DigestMismatch
from workloads.images.store import ContentStore, sha256_digest


def test_put_and_read(tmp_path: str) -> None:
    s = ContentStore(str(tmp_path))
    d = s.put_bytes(b"hello")
    assert d == sha256_digest(b"hello")
    assert s.has(d) and s.read(d) == b"hello" and s.size(d) == 5
    assert s.put_bytes(b"hello") == d  # idempotent
    assert s.digests() == {d: 5}
    assert s.delete(d) == 5 and not s.has(d) and s.delete(d) == 0


def test_mismatch_never_stored(tmp_path: str) -> None:
    s = ContentStore(str(tmp_path))
    want = sha256_digest(b"good")
    with pytest.raises(DigestMismatch, match="content has digest"):
        s.ingest(want, lambda: [b"bad!"], 4)
    with pytest.raises(DigestMismatch, match="got 4 bytes"):
        s.ingest(want, lambda: [b"good"], 5)
    with pytest.raises(DigestMismatch, match="more than the 3 bytes"):
        s.ingest(want, lambda: [b"good"], 3)
    assert not s.has(want)
    assert os.listdir(s.ingest_dir) in ([], [want[7:] + ".lock"])
    assert not any(n.endswith(".partial") for n in os.listdir(s.ingest_dir))


def test_nothing_half_written_visible(tmp_path: str) -> None:
    """While a blob is being written its path does not exist; a writer that dies mid-way
    leaves a partial file the next writer truncates."""
    s = ContentStore(str(tmp_path))
    data = b"x" * 1000
    d = sha256_digest(data)
    seen: list[bool] = []

    def chunks() -> Iterator[bytes]:
        yield data[:500]
        seen.append(s.has(d))
        raise ConnectionError("the peer went away")

    with pytest.raises(ConnectionError):
        s.ingest(d, chunks, 1000)
    assert seen == [False] and not s.has(d)
    # a SIGKILLed writer's leftover: garbage in the partial file
    with open(os.path.join(s.ingest_dir, d[7:] + ".partial"), "wb") as f:
        f.write(b"garbage" * 100)
    assert s.ingest(d, lambda: [data], 1000) is True
    assert s.read(d) == data


def test_concurrent_writers_download_once(tmp_path: str) -> None:
    s = ContentStore(str(tmp_path))
    data = os.urandom(1 << 16)
    d = sha256_digest(data)
    calls: list[int] = []
    results: list[bool] = []

    def chunks() -> Iterator[bytes]:
        calls.append(1)
        for i in range(0, len(data), 4096):
            time.sleep(0.002)
            yield data[i : i + 4096]

    def pull() -> None:
        results.append(s.ingest(d, chunks, len(data)))

    threads = [threading.Thread(target=pull) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1
    assert sorted(results) == [False, False, True]
    assert s.read(d) == data


def test_corrupted_on_disk_refused(tmp_path: str) -> None:
    s = ContentStore(str(tmp_path))
    d = s.put_bytes(b"config")
    with open(s.path(d), "wb") as f:
        f.write(b"changed")
    with pytest.raises(DigestMismatch, match="does not match"):
        s.read(d)
