"""Pull resume: a blob download that broke, or that a killed agent left half-written,
continues with an HTTP Range request where the registry honours it, and the whole blob's
digest is still checked. Against a tiny registry on 127.0.0.1 (stdlib http.server)."""

from __future__ import annotations

import http.server
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from tests.unit.images_fixtures import http_server, sha
from workloads.images.errors import DigestMismatch, DownloadBroken, RegistryError
from workloads.images.reference import parse
from workloads.images.registry import Registry
from workloads.images.store import RETRIES, ContentStore

BLOB = os.urandom(300_000)
DIGEST = sha(BLOB)


@dataclass
class Server:
    ranges: bool = True  # honour Range requests
    break_after: list[int] = field(default_factory=list)  # per request: bytes, then hang up
    bad_content_range: bool = False
    requests: list[str] = field(default_factory=list)  # each GET's Range header ("" if none)
    sent: int = 0  # body bytes written
    port: int = 0


def _handler(s: Server) -> type[http.server.BaseHTTPRequestHandler]:
    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a: object) -> None:
            pass

        def do_GET(self) -> None:
            want = self.headers.get("Range", "")
            s.requests.append(want)
            m = re.fullmatch(r"bytes=(\d+)-", want)
            start = int(m.group(1)) if m and s.ranges else 0
            if start >= len(BLOB) and m and s.ranges:
                self.send_response(416)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = BLOB[start:]
            self.send_response(206 if m and s.ranges else 200)
            if m and s.ranges:
                first = start + (1 if s.bad_content_range else 0)
                self.send_header("Content-Range", f"bytes {first}-{len(BLOB) - 1}/{len(BLOB)}")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if s.break_after:
                body = body[: s.break_after.pop(0)]  # then the connection closes
                self.close_connection = True
            self.wfile.write(body)
            s.sent += len(body)

    return H


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    with http_server(_handler(s)) as s.port:
        yield s


def _pull(store: ContentStore, s: Server, progress: list[int] | None = None) -> bool:
    reg = Registry(parse(f"127.0.0.1:{s.port}/test/app:1"), insecure=True)
    on_bytes = None if progress is None else progress.append
    return store.ingest_from(DIGEST, reg.blob_from(DIGEST), len(BLOB), on_bytes)


def _partial(store: ContentStore) -> str:
    return os.path.join(store.ingest_dir, DIGEST[7:] + ".partial")


def test_a_broken_download_continues_with_a_range_request(tmp_path: str, server: Server) -> None:
    store = ContentStore(str(tmp_path))
    server.break_after = [100_000, 50_000]
    progress: list[int] = []
    assert _pull(store, server, progress) is True
    assert server.requests == ["", "bytes=100000-", "bytes=150000-"]
    assert server.sent == len(BLOB)  # no byte fetched twice
    assert sum(progress) == len(BLOB)
    assert store.read(DIGEST) == BLOB
    assert not os.path.exists(_partial(store))


def test_a_killed_writers_partial_file_is_continued(tmp_path: str, server: Server) -> None:
    store = ContentStore(str(tmp_path))
    with open(_partial(store), "wb") as f:
        f.write(BLOB[:123_456])
    progress: list[int] = []
    assert _pull(store, server, progress) is True
    assert server.requests == ["bytes=123456-"] and server.sent == len(BLOB) - 123_456
    assert progress[0] == 123_456 and sum(progress) == len(BLOB)
    assert store.read(DIGEST) == BLOB


def test_a_partial_file_with_wrong_bytes_is_fetched_again_whole(
    tmp_path: str, server: Server
) -> None:
    store = ContentStore(str(tmp_path))
    with open(_partial(store), "wb") as f:
        f.write(b"\0" * 1000)  # what a crash may leave: the resumed blob cannot match
    assert _pull(store, server) is True
    assert server.requests == ["bytes=1000-", ""]
    assert store.read(DIGEST) == BLOB


def test_a_complete_partial_file_is_only_verified(tmp_path: str, server: Server) -> None:
    store = ContentStore(str(tmp_path))
    with open(_partial(store), "wb") as f:
        f.write(BLOB)
    assert _pull(store, server) is True
    assert server.requests == [] and store.read(DIGEST) == BLOB


def test_a_registry_without_ranges_starts_over(tmp_path: str, server: Server) -> None:
    store = ContentStore(str(tmp_path))
    server.ranges = False
    server.break_after = [100_000]
    assert _pull(store, server) is True
    assert server.requests == ["", "bytes=100000-"]  # asked; got a 200 with all of it
    assert server.sent == 100_000 + len(BLOB)
    assert store.read(DIGEST) == BLOB


def test_a_download_that_keeps_breaking_keeps_what_arrived(tmp_path: str, server: Server) -> None:
    store = ContentStore(str(tmp_path))
    server.break_after = [10_000] * (RETRIES + 1)
    with pytest.raises(DownloadBroken, match="download broken"):
        _pull(store, server)
    assert not store.has(DIGEST)
    assert os.path.getsize(_partial(store)) == 10_000 * (RETRIES + 1)
    server.requests.clear()
    assert _pull(store, server) is True  # the next pull continues from there
    assert server.requests == [f"bytes={10_000 * (RETRIES + 1)}-"]
    assert store.read(DIGEST) == BLOB


def test_a_wrong_content_range_is_refused(tmp_path: str, server: Server) -> None:
    store = ContentStore(str(tmp_path))
    with open(_partial(store), "wb") as f:
        f.write(BLOB[:5000])
    server.bad_content_range = True
    with pytest.raises(RegistryError, match="asked for bytes 5000-"):
        _pull(store, server)
    assert not store.has(DIGEST)


def test_corrupt_content_is_never_stored_even_resumed(tmp_path: str, server: Server) -> None:
    store = ContentStore(str(tmp_path))
    with open(_partial(store), "wb") as f:
        f.write(BLOB[:5000])
    reg = Registry(parse(f"127.0.0.1:{server.port}/test/app:1"), insecure=True)
    other = sha(b"other")  # the registry sends BLOB's bytes for it
    with pytest.raises(DigestMismatch):
        store.ingest_from(other, reg.blob_from(other), len(BLOB))
    assert not store.has(other)
    assert not os.path.exists(os.path.join(store.ingest_dir, other[7:] + ".partial"))
