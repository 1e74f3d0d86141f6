"""The recorder: a writer thread that appends ticks and events to segments.

    rec = Recorder(RecorderConfig("/var/lib/pystats/history"))
    rec.start()                       # recovers unfinished segments, starts the thread
    rec.submit_tick(tick_input)       # on the event loop: never blocks; sheds when behind
    rec.submit_event(event)           # never shed (rare)
    rec.close()                       # drains, closes the segments

Crash safety: each record goes to the kernel in one write (a SIGKILL loses at most what was
not yet handed over), the data is fdatasync'ed every ``sync_every_s`` (a power cut loses at
most that much), and on start every segment left open is cut after its last complete record
(checksums) and closed; the next record starts a new segment with a keyframe.
A full disk (ENOSPC) or another write error stops recording with a logged reason
(``stats.stopped``); the agent's collection and API go on.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from collectors.recorder.codec import TickEncoder, TickInput
from collectors.recorder.events import RecordedEvent, encode_event
from collectors.recorder.format import (
    FLAG_KEYFRAME,
    KIND_EVENT,
    KIND_SAMPLES,
    SegmentName,
    frame_record,
)
from collectors.recorder.retention import enforce, segments
from collectors.recorder.scan import scan

log = logging.getLogger("pystats.recorder")

DAY = 86400.0
EVENTS_MIN_AGE_S = 30 * DAY  # events are small: kept at least this long, whatever the samples


@dataclass(frozen=True, slots=True)
class RecorderConfig:
    directory: str
    max_age_s: float = DAY  # history_retention
    max_bytes: int = 2 << 30  # history_max_bytes (samples and events together)
    keyframe_every: int = 30  # a replay decodes at most ~this many records (~0.5 s CPU)
    segment_s: float = 3600.0  # a segment covers at most this long (retention's granularity)
    segment_bytes: int = 64 << 20
    queue_len: int = 4  # ticks waiting for the writer; beyond, ticks are shed
    sync_every_s: float = 10.0


@dataclass(slots=True)
class RecorderStats:
    ticks_recorded: int = 0
    ticks_dropped: int = 0  # shed because the writer was behind (or stopped)
    events_recorded: int = 0
    bytes_written: int = 0
    encode_seconds: float = 0.0  # writer thread CPU time, encoding and writing
    recovered: list[str] = field(default_factory=list)  # what start-up recovery did
    stopped: str | None = None  # why recording stopped (ENOSPC, ...); None while recording
    segments_removed: int = 0


class _Stream:
    """One stream's open segment: append, rotate, recover."""

    def __init__(self, cfg: RecorderConfig, stream: str, segment_s: float) -> None:
        self.cfg = cfg
        self.stream = stream
        self.segment_s = segment_s
        self.fd: int | None = None
        self.path = ""
        self.first_us = self.last_us = 0
        self.size = 0
        self.synced = 0.0

    def recover(self) -> list[str]:
        """Close segments a crash left open: cut after the last complete record."""
        notes = []
        for s in segments(self.cfg.directory, self.stream):
            if s.last_us is not None:
                continue
            res = scan(s.path)
            if not res.records:
                os.unlink(s.path)
                notes.append(f"{os.path.basename(s.path)}: no complete record, removed")
                continue
            if res.good_end < res.size:
                with open(s.path, "r+b") as f:
                    f.truncate(res.good_end)
                    os.fsync(f.fileno())
                notes.append(
                    f"{os.path.basename(s.path)}: cut {res.size - res.good_end} bytes after "
                    f"the last complete record ({res.problem})"
                )
            last = res.records[-1].header.wall_us
            closed = SegmentName(self.stream, s.first_us, max(last, s.first_us)).name
            os.rename(s.path, os.path.join(self.cfg.directory, closed))
        return notes

    def due_rotation(self, wall_us: int) -> bool:
        if self.fd is None:
            return True
        c = self.cfg
        return self.size >= c.segment_bytes or wall_us - self.first_us >= self.segment_s * 1e6

    def open(self, wall_us: int) -> None:
        self.close()
        self.first_us = self.last_us = wall_us
        self.path = os.path.join(self.cfg.directory, SegmentName(self.stream, wall_us, None).name)
        self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        self.size = 0
        self.synced = time.monotonic()

    def append(self, data: bytes, wall_us: int) -> None:
        assert self.fd is not None
        try:
            n = os.write(self.fd, data)
            if n != len(data):
                raise OSError(errno.ENOSPC, "short write")
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(self.fd, self.size)  # no torn record left behind
            raise
        self.size += len(data)
        self.last_us = max(self.last_us, wall_us)
        now = time.monotonic()
        if now - self.synced >= self.cfg.sync_every_s:
            os.fdatasync(self.fd)
            self.synced = now

    def close(self) -> None:
        if self.fd is None:
            return
        fd, self.fd = self.fd, None
        try:
            os.fdatasync(fd)
        finally:
            os.close(fd)
        closed = SegmentName(self.stream, self.first_us, self.last_us).name
        os.rename(self.path, os.path.join(self.cfg.directory, closed))


class Recorder:
    def __init__(self, cfg: RecorderConfig) -> None:
        self.cfg = cfg
        self.stats = RecorderStats()
        self._enc = TickEncoder(cfg.keyframe_every)
        self._ticks: deque[TickInput] = deque()
        self._events: deque[RecordedEvent] = deque()
        self._cond = threading.Condition()
        self._closing = False
        self._thread: threading.Thread | None = None
        self._samples = _Stream(cfg, "samples", cfg.segment_s)
        self._evstream = _Stream(cfg, "events", DAY)  # a few KB a day: one file per day
        self._retention_at = 0.0

    # --- the event loop's side ---------------------------------------------------------------
    def start(self) -> None:
        """Create the directory, recover unfinished segments (blocking, once) and start the
        thread. Raises OSError when the directory cannot be used."""
        os.makedirs(self.cfg.directory, mode=0o700, exist_ok=True)
        for s in (self._samples, self._evstream):
            for note in s.recover():
                log.warning("history recovery: %s", note)
                self.stats.recovered.append(note)
        self._thread = threading.Thread(target=self._run, name="pystats-recorder", daemon=True)
        self._thread.start()

    def submit_tick(self, tick: TickInput) -> bool:
        """Queue one tick; False when it was shed (writer behind, or recording stopped)."""
        with self._cond:
            if self.stats.stopped is not None or len(self._ticks) >= self.cfg.queue_len:
                self.stats.ticks_dropped += 1
                return False
            self._ticks.append(tick)
            self._cond.notify()
        return True

    def submit_event(self, ev: RecordedEvent) -> None:
        with self._cond:
            if self.stats.stopped is None:
                self._events.append(ev)
                self._cond.notify()

    def close(self, timeout_s: float = 10.0) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    # --- the writer thread -------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cond:
                while not (self._ticks or self._events or self._closing):
                    self._cond.wait(30.0)
                    if not (self._ticks or self._events):
                        break  # periodic: retention
                ticks, self._ticks = list(self._ticks), deque()
                events, self._events = list(self._events), deque()
                closing = self._closing
            t0 = time.thread_time()
            try:
                if self.stats.stopped is None:
                    for ev in events:
                        self._write_event(ev)
                    for t in ticks:
                        self._write_tick(t)
                    self._retention()
            except OSError as e:
                self._stop(e)
            except Exception as e:  # a bug must not take the agent down: stop recording
                log.exception("history recorder failed")
                self._stop(e)
            self.stats.encode_seconds += time.thread_time() - t0
            if closing:
                for s in (self._samples, self._evstream):
                    try:
                        s.close()
                    except OSError as e:
                        log.warning("history: closing %s: %s", s.path, e)
                return

    def _write_tick(self, t: TickInput) -> None:
        wall_us = int(t.wall * 1e6)
        s = self._samples
        if s.due_rotation(wall_us):
            s.open(wall_us)
            self._enc.force_keyframe()  # every segment can be read on its own
        frame, key = self._enc.encode(t)
        rec = frame_record(KIND_SAMPLES, FLAG_KEYFRAME if key else 0, wall_us, frame)
        try:
            s.append(rec, wall_us)
        except OSError:
            self._enc.force_keyframe()  # the chain is broken where the record failed
            raise
        self.stats.ticks_recorded += 1
        self.stats.bytes_written += len(rec)

    def _write_event(self, ev: RecordedEvent) -> None:
        wall_us = int(ev.wall * 1e6)
        s = self._evstream
        if s.due_rotation(wall_us):
            s.open(wall_us)
        rec = frame_record(KIND_EVENT, 0, wall_us, encode_event(ev))
        s.append(rec, wall_us)
        self.stats.events_recorded += 1
        self.stats.bytes_written += len(rec)

    def _retention(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._retention_at < 60.0:
            return
        self._retention_at = now
        c, wall = self.cfg, time.time()
        ev_age = max(c.max_age_s, EVENTS_MIN_AGE_S)
        ev_bytes = max(c.max_bytes // 20, 1 << 20)
        removed = enforce(c.directory, "events", ev_age, ev_bytes, wall, self._evstream.path)
        removed += enforce(
            c.directory, "samples", c.max_age_s, c.max_bytes - ev_bytes, wall, self._samples.path
        )
        self.stats.segments_removed += len(removed)

    def _stop(self, e: BaseException) -> None:
        if isinstance(e, OSError) and e.errno == errno.ENOSPC:
            reason = f"no space left on device in {self.cfg.directory}"
        else:
            reason = f"{type(e).__name__}: {e}"
        with self._cond:
            self.stats.stopped = reason
            self._ticks.clear()
            self._events.clear()
        log.error("history recording stopped: %s (collection and the API go on)", reason)


def history_dir_of(state_dir: str) -> str:
    """Where an agent with this state directory records."""
    return os.path.join(state_dir, "history")
