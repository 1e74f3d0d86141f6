"""``GET /v1/workloads/NAME/logs``: a workload's log records as the client asked for them.

``mux=1`` sends docker's multiplexed stream (an 8-byte header per frame: stream 1 stdout or 2
stderr, three zero bytes, the payload's length big-endian), so the client keeps stdout and
stderr apart; without it the output comes merged, as raw bytes (an attached ``run``).
``timestamps=1`` puts each line's RFC3339Nano time before it, as ``docker logs -t``.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

from workloads.supervisor.logread import STDERR, STDOUT, Record, in_window
from workloads.supervisor.logs import format_time

STREAM_IDS = {STDOUT: 1, STDERR: 2}
_HEADER = struct.Struct(">BxxxL")


@dataclass(frozen=True)
class LogQuery:
    follow: bool = False
    tail: int | None = None  # the last N lines only; None: everything
    since_ns: int | None = None
    until_ns: int | None = None
    timestamps: bool = False
    mux: bool = False


def frame(stream: str, data: bytes) -> bytes:
    return _HEADER.pack(STREAM_IDS[stream], len(data)) + data


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


class Renderer:
    """Records to the bytes sent; remembers per stream whether a line is open (a P record), so
    a timestamp goes only before the start of a line."""

    def __init__(self, q: LogQuery) -> None:
        self.q = q
        self._open = {STDOUT: False, STDERR: False}
        self.past_until = False  # a record after --until was met: nothing more to send

    def render(self, records: list[Record]) -> bytes:
        out: list[bytes] = []
        q = self.q
        for rec in records:
            if q.until_ns is not None and rec.ns is not None and rec.ns > q.until_ns:
                self.past_until = True
                break
            if not in_window(rec, q.since_ns, q.until_ns):
                continue
            data = rec.data
            if q.timestamps and rec.ns is not None and not self._open[rec.stream]:
                data = format_time(rec.ns) + b" " + data
            self._open[rec.stream] = not rec.ends_line
            out.append(frame(rec.stream, data) if q.mux else data)
        return b"".join(out)


def split_frames(chunks: Iterator[bytes]) -> Iterator[tuple[int, bytes]]:
    """A multiplexed byte stream (any chunking) as (stream id, payload) frames."""
    rest = b""
    for chunk in chunks:
        frames, rest = unframe(rest + chunk)
        yield from frames
