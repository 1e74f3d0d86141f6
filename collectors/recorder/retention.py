"""Retention: whole segments are removed, oldest first, by age and by total size."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from collectors.recorder.format import parse_segment_name

log = logging.getLogger("pystats.recorder")


@dataclass(frozen=True, slots=True)
class Segment:
    path: str
    stream: str
    first_us: int
    last_us: int | None
    size: int


def segments(directory: str, stream: str | None = None) -> list[Segment]:
    """Segments of ``stream`` (every stream when None), oldest first."""
    out: list[Segment] = []
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    for name in names:
        n = parse_segment_name(name)
        if n is None or (stream is not None and n.stream != stream):
            continue
        path = os.path.join(directory, name)
        try:
            size = os.stat(path).st_size
        except FileNotFoundError:  # removed meanwhile (another process's retention)
            continue
        out.append(Segment(path, n.stream, n.first_us, n.last_us, size))
    out.sort(key=lambda s: (s.first_us, s.path))
    return out


def enforce(
    directory: str, stream: str, max_age_s: float, max_bytes: int, now: float, keep: str = ""
) -> list[str]:
    """Remove the stream's oldest closed segments whose newest record is older than
    ``max_age_s``, then more oldest ones while the stream exceeds ``max_bytes``. ``keep``: the
    segment being written (never removed). Returns the removed paths."""
    segs = segments(directory, stream)
    total = sum(s.size for s in segs)
    cutoff_us = int((now - max_age_s) * 1e6)
    removed: list[str] = []
    for s in segs:
        if s.path == keep:
            break
        last = s.last_us if s.last_us is not None else s.first_us
        if last >= cutoff_us and total <= max_bytes:
            break
        try:
            os.unlink(s.path)
        except FileNotFoundError:
            pass
        except OSError as e:
            log.warning("history retention: cannot remove %s: %s", s.path, e)
            break
        total -= s.size
        removed.append(s.path)
    return removed
