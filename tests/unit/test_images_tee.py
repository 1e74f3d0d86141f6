"""Download and unpack overlapped: BlobTee passes a blob's bytes to the layer's unpacker only
while they are one continuous stream from byte 0, never blocks the download, and a layer
unpacked from the stream is kept only when its blob was stored verified."""

from __future__ import annotations

import gzip
import os
import threading
from collections.abc import Callable, Iterable

import pytest

from tests.unit.test_images_registry import LAYER, Fake, fake  # noqa: F401 (the fixture)
from tests.unit.test_images_unpack import layer
from workloads.images import unpack
from workloads.images.errors import DigestMismatch
from workloads.images.service import ImageService
from workloads.images.tee import BlobTee

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="unpacking layers needs root")


def _reading(tee: BlobTee) -> tuple[threading.Thread, list[bytes]]:
    got: list[bytes] = []
    t = threading.Thread(target=lambda: got.append(tee.reader.read()))
    t.start()
    return t, got


def test_a_continuous_stream_is_passed_on_a_resumed_one_is_not() -> None:
    tee = BlobTee()
    t, got = _reading(tee)
    sent: dict[int, tuple[int, list[bytes]]] = {0: (0, [b"ab", b"cd"]), 4: (4, [b"ef"])}
    opener = tee.wrap(lambda offset: sent[offset])
    for offset in (0, 4):  # a broken download continued where it stopped: still one stream
        _, chunks = opener(offset)
        assert list(chunks) == sent[offset][1]
    tee.stop()
    t.join()
    assert got == [b"abcdef"]

    tee = BlobTee()
    t, got = _reading(tee)
    opener = tee.wrap(lambda offset: (offset, [b"xyz"]))
    _, chunks = opener(1000)  # a partial file's continuation: the unpacker never saw 0..999
    assert list(chunks) == [b"xyz"]  # the store still gets every byte
    t.join()
    assert got == [b""]


def test_an_unpacker_that_gave_up_never_blocks_the_download() -> None:
    tee = BlobTee()
    tee.reader.close()
    big = [b"x" * (1 << 20)] * 8  # far more than a pipe holds
    _, chunks = tee.wrap(lambda offset: (0, big))(0)
    assert sum(len(c) for c in list(chunks)) == 8 << 20


def _spy(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    results: list[bool] = []
    real = unpack.Layers.unpack_stream

    def spy(self: unpack.Layers, stream: object, diff_id: str, commit: object) -> bool:
        r = real(self, stream, diff_id, commit)  # type: ignore[arg-type]
        results.append(r)
        return r

    monkeypatch.setattr(unpack.Layers, "unpack_stream", spy)
    return results


def test_a_pull_unpacks_while_it_downloads(
    tmp_path: str,
    fake: Fake,  # noqa: F811 (the fixture)
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake.auth = "none"
    streamed = _spy(monkeypatch)
    svc = ImageService(str(tmp_path))
    rec = svc.pull(f"127.0.0.1:{fake.port}/test/app:1", insecure=True)
    assert streamed == [True]
    (path,) = svc.layer_dirs(rec)
    with open(os.path.join(path, "etc", "hello"), "rb") as f:
        assert f.read() == b"hi\n"
    assert svc.layers.size(rec.layers[0].diff_id) == 3


def test_a_layer_whose_blob_is_refused_is_not_kept(
    tmp_path: str,
    fake: Fake,  # noqa: F811 (the fixture)
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The registry sends the right tar (its diff_id matches) compressed otherwise: the blob's
    digest does not match, so neither the blob nor the layer unpacked from it is kept."""
    fake.auth = "none"
    raw = layer(*LAYER)
    (digest,) = [d for d, b in fake.blobs.items() if b == gzip.compress(raw, mtime=0)]
    fake.blobs[digest] = gzip.compress(raw, mtime=12345)
    streamed = _spy(monkeypatch)
    svc = ImageService(str(tmp_path))
    with pytest.raises(DigestMismatch, match="not stored"):
        svc.pull(f"127.0.0.1:{fake.port}/test/app:1", insecure=True)
    assert streamed == [False]
    leftovers: Iterable[str] = os.listdir(svc.layers.root)
    assert [n for n in leftovers if not n.endswith(".lock")] == []
    assert not svc.store.has(digest)


def test_the_pipe_holds_a_whole_chunk() -> None:
    # One read of the unpacker gets a chunk, not 64 KiB of it (the reader's cost per read).
    import fcntl

    from workloads.images.store import CHUNK

    tee = BlobTee()
    try:
        assert tee._w is not None
        assert fcntl.fcntl(tee._w, fcntl.F_GETPIPE_SZ) >= CHUNK
    finally:
        tee.stop()
        tee.reader.close()


@pytest.mark.parametrize(("every_s", "lines"), [(3600.0, 1), (0.0, 1 + 64)])
def test_download_progress_is_throttled(
    tmp_path: str, monkeypatch: pytest.MonkeyPatch, every_s: float, lines: int
) -> None:
    # 64 chunks: one "Downloading" line (the first, at 0) when they come faster than the
    # interval, one per chunk more when it is 0; the layer is stored and unpacked either way.
    from workloads.images import service
    from workloads.images.manifest import Descriptor
    from workloads.images.service import Progress, Wrap
    from workloads.images.store import sha256_digest

    monkeypatch.setattr(service, "PROGRESS_EVERY_S", every_s)
    raw = layer(("f", "file", os.urandom(64 * 1024)))
    blob = gzip.compress(raw)
    step = -(-len(blob) // 64)
    chunks = [blob[i : i + step] for i in range(0, len(blob), step)]
    assert len(chunks) == 64
    desc = Descriptor("application/vnd.oci.image.layer.v1.tar+gzip", sha256_digest(blob), len(blob))
    svc = ImageService(str(tmp_path))

    def fetch(d: Descriptor, on_bytes: Callable[[int], None], wrap: Wrap) -> None:
        svc.store.ingest_from(d.digest, wrap(lambda _o: (0, chunks)), d.size, on_bytes)

    events: list[Progress] = []
    rec = svc._layer(desc, sha256_digest(raw), fetch, events.append)
    downloading = [e for e in events if e.status == "Downloading"]
    assert len(downloading) == lines
    assert downloading[0].current == 0 and rec.unpacked == 64 * 1024
    assert [e.status for e in events][-2:] == ["Extracting", "Pull complete"]
