"""Reading the recorded history: the store at any recorded tick, stepping, events.

Opening a time costs: segment choice by file name, a header scan of that one segment (no
decompression), then decoding from the keyframe before the tick (at most ``keyframe_every``
records). Corrupt or truncated segments are reported in ``problems`` and skipped; the segment
being written is read up to its last complete record.
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Iterator
from dataclasses import dataclass

from collectors.recorder.codec import Snapshot, TickDecoder
from collectors.recorder.events import RecordedEvent, decode_event
from collectors.recorder.format import (
    F_WIDTH,
    HEADER_SIZE,
    NONE,
    FormatError,
    check,
)
from collectors.recorder.retention import Segment, segments
from collectors.recorder.scan import Located, scan

STEP_ON_MAX = 120  # records a decoder is carried forward instead of restarting at a keyframe
_USAGE, _MEM = 3, 12  # F-row columns of cpu.stat usage_usec and memory.current
assert F_WIDTH > _MEM


class NoHistory(Exception):
    """Nothing recorded at or before the asked time (or no history at all)."""


@dataclass(frozen=True, slots=True)
class Point:
    """One tick of one cgroup's recorded series (sparklines)."""

    wall: float
    mono: float
    usage_usec: int | None
    memory_current: int | None


@dataclass(slots=True)
class _Index:
    seg: Segment
    records: list[Located]
    walls: list[int]  # wall_us per record, for bisect
    size: int  # bytes indexed (an open segment grows)


class HistoryReader:
    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.problems: list[str] = []
        self._idx: dict[str, _Index] = {}
        self._pos: tuple[str, int] | None = None  # (segment path, record) of the decoder
        self._dec: TickDecoder | None = None
        self._trail: list[tuple[float, dict[int, tuple[int, ...]]]] = []
        self.decoded = 0  # records applied by the last ``at`` (its cost)

    # --- index -------------------------------------------------------------------------------
    def _segments(self) -> list[Segment]:
        return segments(self.directory, "samples")

    def _index(self, seg: Segment) -> _Index:
        ix = self._idx.get(seg.path)
        if ix is not None and (seg.last_us is not None or ix.size == seg.size):
            return ix
        res = scan(seg.path, verify=False)
        if res.problem is not None and seg.last_us is not None:
            self._problem(f"{res.problem}; records after it are skipped")
        ix = _Index(seg, res.records, [r.header.wall_us for r in res.records], res.size)
        self._idx[seg.path] = ix
        return ix

    def _problem(self, text: str) -> None:
        if text not in self.problems:
            self.problems.append(text)

    def nothing_readable(self) -> NoHistory:
        """What to say when ``span()`` is None: no segment at all, or only segments of which no
        record reads (damaged, or the agent's first tick not yet written)."""
        segs = self._segments()
        if not segs:
            return NoHistory(f"no history recorded in {self.directory}")
        names = ", ".join(os.path.basename(s.path) for s in segs[:3])
        more = f" and {len(segs) - 3} more" if len(segs) > 3 else ""
        verb = "holds" if len(segs) == 1 else "hold"
        return NoHistory(
            f"no readable tick in {self.directory}: {names}{more} {verb} no complete record"
            " (damaged, or the agent has not written its first tick yet)"
        )

    def span(self) -> tuple[float, float] | None:
        """(first, last) recorded tick wall times, None when nothing is recorded."""
        segs = self._segments()
        first = last = None
        for s in segs:
            ix = self._index(s)
            if ix.walls:
                first = ix.walls[0] if first is None else first
                last = ix.walls[-1]
        if first is None or last is None:
            return None
        return first / 1e6, last / 1e6

    def _locate(self, wall: float) -> tuple[Segment, int]:
        """The segment and record index of the last tick at or before ``wall``."""
        t = int(wall * 1e6)
        segs = [s for s in self._segments() if s.first_us <= t]
        for s in reversed(segs):
            ix = self._index(s)
            i = bisect.bisect_right(ix.walls, t) - 1
            if i >= 0:
                return s, i
        span = self.span()
        if span is None:
            raise self.nothing_readable()
        raise NoHistory(f"nothing recorded at or before that time; history starts at {span[0]}")

    # --- decoding ----------------------------------------------------------------------------
    def _decode(self, seg: Segment, i: int) -> TickDecoder:
        """A decoder at record ``i`` of ``seg``: from the keyframe before record i-1 (so that
        rates at i have the previous read), reusing the current decoder when stepping on."""
        ix = self._index(seg)
        if self._dec is not None and self._pos is not None and self._pos[0] == seg.path:
            j = self._pos[1]
            if j <= i <= j + STEP_ON_MAX:
                return self._apply(seg, ix, j + 1, i, self._dec)
        k = max(0, i - 1)
        while k > 0 and not ix.records[k].header.keyframe:
            k -= 1
        self._trail = []
        dec = TickDecoder()
        if i == 0:  # a segment's first tick: its rates need the previous segment's last read
            segs = self._segments()
            n = next((n for n, s in enumerate(segs) if s.path == seg.path), 0)
            if n > 0:
                pix = self._index(segs[n - 1])
                last = len(pix.records) - 1
                pk = last
                while pk > 0 and not pix.records[pk].header.keyframe:
                    pk -= 1
                if last >= 0:
                    dec = self._apply(segs[n - 1], pix, pk, last, dec)
        return self._apply(seg, ix, k, i, dec)

    def _apply(
        self, seg: Segment, ix: _Index, start: int, end: int, dec: TickDecoder
    ) -> TickDecoder:
        with open(seg.path, "rb", buffering=0) as f:
            fd = f.fileno()
            for r in range(start, end + 1):
                loc = ix.records[r]
                frame = os.pread(fd, loc.header.length, loc.offset + HEADER_SIZE)
                try:
                    check(loc.header, frame)
                    dec.apply(frame)
                except FormatError as e:
                    self._problem(f"{os.path.basename(seg.path)} record {r}: {e}")
                    # a bad record breaks the delta chain: nothing after it until a keyframe
                    dec = TickDecoder()
                    continue
                self.decoded += 1
                self._trail.append((dec.wall, dict(dec.rows["f"])))
                if len(self._trail) > 4 * 60:
                    del self._trail[:60]
        self._pos = (seg.path, end)
        self._dec = dec
        return dec

    def at(self, wall: float, paths: set[str] | None = None) -> Snapshot:
        """The store as recorded at the last tick at or before ``wall``."""
        self.decoded = 0
        seg, i = self._locate(wall)
        dec = self._decode(seg, i)
        if not dec.ready:
            raise NoHistory(
                f"the records around that time are damaged ({'; '.join(self.problems[-1:])})"
            )
        return dec.snapshot(paths)

    def step(self, wall: float, ticks: int) -> float:
        """The wall time of the recorded tick ``ticks`` after (negative: before) the one at
        ``wall``; clamped to the recorded span."""
        segs = self._segments()
        seg, i = self._locate(wall) if ticks else (None, 0)
        if seg is None:
            return wall
        k = next(n for n, s in enumerate(segs) if s.path == seg.path)
        ix = self._index(seg)
        i += ticks
        while i < 0 and k > 0:
            k -= 1
            prev = self._index(segs[k])
            i += len(prev.walls)
            ix = prev
        while i >= len(ix.walls) and k < len(segs) - 1:
            i -= len(ix.walls)
            k += 1
            ix = self._index(segs[k])
        i = max(0, min(i, len(ix.walls) - 1))
        return ix.walls[i] / 1e6 if ix.walls else wall

    def tick_near(self, wall: float) -> float:
        """The wall time of the last tick at or before ``wall``; the first tick when ``wall``
        is before the history begins. Raises NoHistory when nothing is recorded."""
        try:
            seg, i = self._locate(wall)
        except NoHistory:
            span = self.span()
            if span is None:
                raise
            return span[0]
        return self._index(seg).walls[i] / 1e6

    def ticks(self, since: float, until: float) -> Iterator[Snapshot]:
        """Every recorded tick from ``since`` to ``until``, in order (damaged ones skipped)."""
        lo, hi = int(since * 1e6), int(until * 1e6)
        for seg in self._segments():
            if seg.first_us > hi:
                return
            if seg.last_us is not None and seg.last_us < lo:
                continue
            ix = self._index(seg)
            start = bisect.bisect_left(ix.walls, lo)
            end = bisect.bisect_right(ix.walls, hi) - 1
            for i in range(start, end + 1):
                dec = self._decode(seg, i)
                if dec.ready:
                    yield dec.snapshot()

    def series(self, path: str) -> list[Point]:
        """The path's points over the records decoded for the last ``at`` (the keyframe group
        up to that tick): its recent history for the detail pane."""
        dec = self._dec
        if dec is None or path not in dec.paths:
            return []
        i = dec.paths.index(path)
        b = dec.base
        out = []
        for wall, rows in self._trail:
            f = rows.get(i)
            if f is None:
                continue
            mono = b.mono + f[1] / 1e6
            usage, mem = f[_USAGE], f[_MEM]
            out.append(
                Point(wall, mono, None if usage == NONE else usage, None if mem == NONE else mem)
            )
        return out

    # --- events ------------------------------------------------------------------------------
    def events(
        self, since: float | None = None, until: float | None = None
    ) -> Iterator[RecordedEvent]:
        """Recorded events in time order. Segment names bound what is read by their last time
        only: events may be appended a little out of order (threads, between-tick checks)."""
        lo = None if since is None else int(since * 1e6)
        hi = None if until is None else int(until * 1e6)
        for s in segments(self.directory, "events"):
            if lo is not None and s.last_us is not None and s.last_us < lo:
                continue
            res = scan(s.path)
            if res.problem is not None and s.last_us is not None:  # the open one: its tail
                self._problem(f"{res.problem}; events after it are skipped")
            got: list[RecordedEvent] = []
            with open(s.path, "rb", buffering=0) as f:
                for loc in res.records:
                    w = loc.header.wall_us
                    if (lo is not None and w < lo) or (hi is not None and w > hi):
                        continue
                    frame = os.pread(f.fileno(), loc.header.length, loc.offset + HEADER_SIZE)
                    try:
                        got.append(decode_event(frame))
                    except FormatError as e:
                        self._problem(f"{os.path.basename(s.path)}: {e}")
            got.sort(key=lambda ev: ev.wall)
            yield from got
