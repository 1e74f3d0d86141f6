"""``logs --since/--until``: docker's time formats, as a Unix time in seconds.

RFC3339 (``2026-12-07T10:20:00Z``, ``...+01:00``, with nanoseconds), the same without a zone or
a date alone (local time, as docker reads them), Unix seconds (``1765102800.5``), or a Go
duration meaning that long ago (``10m``, ``1h30m``, ``90s``, ``1.5h``).
"""

from __future__ import annotations

import re
import time
from datetime import datetime

_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_FRACTION = re.compile(r"\.(\d+)")


def _duration(text: str) -> float | None:
    """A Go duration (``1h30m``) in seconds; None if ``text`` is not one."""
    pos, total = 0, 0.0
    while pos < len(text):
        m = _DURATION.match(text, pos)
        if m is None:
            return None
        total += float(m[1]) * _UNITS[m[2]]
        pos = m.end()
    return total if text else None


def parse_log_time(text: str, now: float | None = None) -> float:
    """``text`` as Unix seconds; ValueError with docker's accepted forms otherwise."""
    t = text.strip()
    now = time.time() if now is None else now
    ago = _duration(t)
    if ago is not None:
        return now - ago
    if re.fullmatch(r"\d+(\.\d+)?", t):
        return float(t)
    # Python's fromisoformat reads at most microseconds: trim longer fractions (nanoseconds).
    iso = _FRACTION.sub(lambda m: "." + m[1][:6], t.replace("Z", "+00:00").replace("z", "+00:00"))
    try:
        return datetime.fromisoformat(iso).timestamp()
    except ValueError:
        raise ValueError(
            f"cannot read {text!r} as a time: use RFC3339 (2026-12-07T10:20:00Z), "
            "Unix seconds, or a duration ago (10m, 1h30m)"
        ) from None
