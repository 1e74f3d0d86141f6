"""A blob's bytes, as they are downloaded, into a pipe its layer's unpacker reads, so that
download and unpack overlap (as containerd does) instead of one after the other.

Only a stream continuous from byte 0 is passed on: when the content store resumes a partial
file, or starts over after a resumed blob did not match, the tee stops; the unpacker then sees
a short stream and fails, and the layer is unpacked from the stored blob as before. The writer
never waits on an unpacker that gave up: it closes its end and the tee stops (EPIPE).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterable, Iterator
from typing import BinaryIO

from workloads.images.store import CHUNK, Opener


class BlobTee:
    def __init__(self) -> None:
        r, w = os.pipe2(os.O_CLOEXEC)
        # A 1 MiB pipe (as large as a chunk, the default limit for root): 64 KiB ones cost
        # the reader one read, and an allocation, per 64 KiB (slow under emulation).
        with contextlib.suppress(OSError):
            fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, CHUNK)
        self.reader: BinaryIO = os.fdopen(r, "rb", buffering=CHUNK)
        self._w: int | None = w
        self._pos = 0  # bytes passed on

    def wrap(self, open_at: Opener) -> Opener:
        """The store's opener, its bytes also passed to the reader."""

        def opened(offset: int) -> tuple[int, Iterable[bytes]]:
            start, chunks = open_at(offset)
            if start != self._pos:
                self.stop()
            return start, self._through(chunks)

        return opened

    def _through(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            if self._w is not None:
                try:
                    view = memoryview(chunk)
                    while view:
                        view = view[os.write(self._w, view) :]
                    self._pos += len(chunk)
                except OSError:  # EPIPE: the unpacker gave up
                    self.stop()
            yield chunk

    def stop(self) -> None:
        """No more bytes: the reader sees the end of the stream."""
        if self._w is not None:
            os.close(self._w)
            self._w = None
