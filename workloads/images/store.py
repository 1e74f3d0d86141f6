"""The content store: blobs addressed by digest under ``<root>/blobs/sha256/<hex>``.

A blob is hashed while it is written, into ``<root>/ingest/<hex>.partial``, and renamed into
place only when its digest and size match, so a blob path always holds exactly its content.
Writers of the same digest take an exclusive flock on ``<root>/ingest/<hex>.lock``: the second
waits, then finds the blob present (one download, both served). The kernel drops the lock of a
killed writer; the next one continues the partial file where a source can start at an offset
(a registry's Range request), else truncates it and starts over. Either way the whole blob's
digest is checked, so nothing a SIGKILL leaves behind is used unverified.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from collections.abc import Callable, Iterable, Iterator

from workloads.images.errors import DigestMismatch, DownloadBroken, ImageError
from workloads.images.reference import is_digest
from workloads.supervisor.state import fsync_dir

CHUNK = 1 << 20
RETRIES = 3  # broken downloads continued within one ingest
# A source that can start at a byte offset: open_at(n) -> (where its bytes really start: n,
# or 0 when it cannot resume; the bytes from there).
Opener = Callable[[int], tuple[int, Iterable[bytes]]]


def hex_of(digest: str) -> str:
    if not is_digest(digest):
        raise ImageError(f"unsupported digest {digest!r} (sha256 only)")
    return digest.removeprefix("sha256:")


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@contextlib.contextmanager
def locked(path: str) -> Iterator[None]:
    """An exclusive flock on ``path`` (created if missing), held for the block."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


class Writer:
    """Bytes of one blob on their way in: hashed and counted as written."""

    def __init__(self, fd: int, digest: str, size: int | None) -> None:
        self.fd = fd
        self.digest = digest
        self.size = size
        self.written = 0
        self._hash = hashlib.sha256()

    def resume(self, start: int) -> None:
        """Continue after the file's first ``start`` bytes (hashed again: the partial file is
        trusted for nothing); drop whatever follows them."""
        pos = 0
        while pos < start:
            block = os.pread(self.fd, min(CHUNK, start - pos), pos)
            if not block:
                break
            self._hash.update(block)
            pos += len(block)
        self.written = pos
        os.ftruncate(self.fd, pos)
        os.lseek(self.fd, pos, os.SEEK_SET)

    def write(self, data: bytes) -> None:
        self._hash.update(data)
        self.written += len(data)
        if self.size is not None and self.written > self.size:
            raise DigestMismatch(
                f"blob {self.digest}: more than the {self.size} bytes its descriptor says"
            )
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view) :]

    def check(self) -> None:
        got = "sha256:" + self._hash.hexdigest()
        if self.size is not None and self.written != self.size:
            raise DigestMismatch(
                f"blob {self.digest}: got {self.written} bytes, its descriptor says {self.size}"
            )
        if got != self.digest:
            raise DigestMismatch(f"blob {self.digest}: content has digest {got}; not stored")


class ContentStore:
    def __init__(self, root: str) -> None:
        self.root = root
        self.blobs = os.path.join(root, "blobs", "sha256")
        self.ingest_dir = os.path.join(root, "ingest")
        os.makedirs(self.blobs, mode=0o700, exist_ok=True)
        os.makedirs(self.ingest_dir, mode=0o700, exist_ok=True)

    def path(self, digest: str) -> str:
        return os.path.join(self.blobs, hex_of(digest))

    def has(self, digest: str) -> bool:
        return os.path.isfile(self.path(digest))

    def size(self, digest: str) -> int:
        return os.stat(self.path(digest)).st_size

    def lock(self, digest: str) -> contextlib.AbstractContextManager[None]:
        return locked(os.path.join(self.ingest_dir, hex_of(digest) + ".lock"))

    def ingest(
        self,
        digest: str,
        chunks: Callable[[], Iterable[bytes]],
        size: int | None = None,
        on_bytes: Callable[[int], None] | None = None,
    ) -> bool:
        """Store the blob ``digest`` from ``chunks()`` (called only if the blob is missing).
        True if this call wrote it, False if it was there (or another writer put it there
        while this one waited). DigestMismatch leaves nothing behind."""
        return self.ingest_from(digest, lambda _offset: (0, chunks()), size, on_bytes)

    def ingest_from(
        self,
        digest: str,
        open_at: Opener,
        size: int | None = None,
        on_bytes: Callable[[int], None] | None = None,
    ) -> bool:
        """As ``ingest``, from a source that may start at an offset: a partial file (a killed
        writer's, or a download that broke, here or in an earlier pull) is continued, not
        fetched again. A DownloadBroken source is opened again where it stopped, up to RETRIES
        times, and its partial file kept after that; a resumed blob whose digest does not
        match is fetched once more from the start."""
        hx = hex_of(digest)
        if self.has(digest):
            return False
        with self.lock(digest):
            if self.has(digest):
                return False
            partial = os.path.join(self.ingest_dir, hx + ".partial")
            fd = os.open(partial, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                self._fill(fd, digest, open_at, size, on_bytes)
                os.fsync(fd)
            except DownloadBroken:
                os.close(fd)  # what arrived stays, for the next pull to continue
                raise
            except BaseException:
                os.close(fd)
                with contextlib.suppress(OSError):
                    os.unlink(partial)
                raise
            os.close(fd)
            os.rename(partial, self.path(digest))
            fsync_dir(self.blobs)
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(self.ingest_dir, hx + ".lock"))
            return True

    @staticmethod
    def _fill(
        fd: int,
        digest: str,
        open_at: Opener,
        size: int | None,
        on_bytes: Callable[[int], None] | None,
    ) -> None:
        """Write the blob into ``fd`` (the partial file, maybe holding a beginning already)."""
        offset = os.fstat(fd).st_size
        if size is not None and offset > size:
            offset = 0
        broken = 0
        whole = False  # fetched once more from the start after a resumed blob did not match
        while True:
            start, chunks = (offset, ()) if offset and offset == size else open_at(offset)
            w = Writer(fd, digest, size)
            w.resume(start)
            if start and on_bytes is not None and not broken:
                on_bytes(start)
            try:
                for chunk in chunks:
                    w.write(chunk)
                    if on_bytes is not None:
                        on_bytes(len(chunk))
                w.check()
                return
            except DownloadBroken:
                broken += 1
                if broken > RETRIES:
                    raise
                offset = w.written
            except DigestMismatch:
                if not start or whole:
                    raise
                whole, offset = True, 0

    def put_bytes(self, data: bytes, digest: str | None = None) -> str:
        """Store small content (a manifest, a config); its digest is checked if given."""
        digest = digest or sha256_digest(data)
        self.ingest(digest, lambda: [data], len(data))
        return digest

    def put_file(self, path: str, digest: str, size: int | None = None) -> bool:
        def chunks() -> Iterator[bytes]:
            with open(path, "rb") as f:
                while block := f.read(CHUNK):
                    yield block

        return self.ingest(digest, chunks, size)

    def read(self, digest: str) -> bytes:
        """A small blob's bytes, verified (a blob changed on disk is refused, not trusted)."""
        try:
            with open(self.path(digest), "rb") as f:
                data = f.read()
        except FileNotFoundError:
            raise ImageError(f"blob {digest} is not in the store") from None
        if sha256_digest(data) != digest:
            raise DigestMismatch(f"blob {digest} in the store does not match its digest")
        return data

    def delete(self, digest: str) -> int:
        """Remove a blob; the bytes freed (0 if it was not there)."""
        path = self.path(digest)
        try:
            n = os.stat(path).st_size
            os.unlink(path)
        except FileNotFoundError:
            return 0
        return n

    def sweep(self) -> int:
        """Remove what killed writers left; only while no writer runs (the caller's lock)."""
        freed = 0
        for name in os.listdir(self.ingest_dir):
            path = os.path.join(self.ingest_dir, name)
            with contextlib.suppress(FileNotFoundError):
                freed += os.stat(path).st_size
                os.unlink(path)
        return freed

    def digests(self) -> dict[str, int]:
        """Every stored blob and its size."""
        out: dict[str, int] = {}
        for name in os.listdir(self.blobs):
            with contextlib.suppress(FileNotFoundError):
                out["sha256:" + name] = os.stat(os.path.join(self.blobs, name)).st_size
        return out
