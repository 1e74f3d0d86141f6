"""docker's multiplexed stream, as ``GET .../logs?mux=1`` sends it: per frame an 8-byte header
(the stream, 1 stdout or 2 stderr; three zero bytes; the payload's length big-endian) then the
payload. Kept apart from agent.api.logtail so the CLI's client imports no launch internals."""

from __future__ import annotations

import struct
from collections.abc import Iterator

STDOUT_ID, STDERR_ID = 1, 2
_HEADER = struct.Struct(">BxxxL")


def frame(stream_id: int, data: bytes) -> bytes:
    return _HEADER.pack(stream_id, len(data)) + data


def unframe(buf: bytes) -> tuple[list[tuple[int, bytes]], bytes]:
    """(the whole frames at the start of ``buf`` as (stream id, payload), the rest)."""
    out: list[tuple[int, bytes]] = []
    pos = 0
    while len(buf) - pos >= _HEADER.size:
        sid, n = _HEADER.unpack_from(buf, pos)
        if len(buf) - pos - _HEADER.size < n:
            break
        start = pos + _HEADER.size
        out.append((sid, buf[start : start + n]))
        pos = start + n
    return out, buf[pos:]


def split_frames(chunks: Iterator[bytes]) -> Iterator[tuple[int, bytes]]:
    """A multiplexed byte stream (any chunking) as (stream id, payload) frames."""
    rest = b""
    for chunk in chunks:
        frames, rest = unframe(rest + chunk)
        yield from frames
