"""The shim's log write path: raw bytes (the earlier merged output.log) against timestamped
stream records (stdio.log), on 64 KiB chunks as the shim reads them from a pipe.

    .venv/bin/python benchmarks/logs_records.py
"""

from __future__ import annotations

import functools
import os
import tempfile
import time

from workloads.supervisor.logs import STDOUT, RotatingLog, StreamLog

CHUNK = 64 * 1024
TOTAL = 64 * 1024 * 1024  # per case


def _chunk(line: bytes) -> bytes:
    return (line * (CHUNK // len(line) + 1))[:CHUNK]


def _rate(write: object, data: bytes) -> float:
    assert callable(write)
    t0 = time.perf_counter()
    for _ in range(TOTAL // len(data)):
        write(data)
    return TOTAL / (time.perf_counter() - t0) / 1e6


def main() -> None:
    cases = {
        "short lines (y\\n, `yes`)": _chunk(b"y\n"),
        "80-byte lines": _chunk(b"x" * 79 + b"\n"),
        "no newline (binary)": _chunk(b"z"),
    }
    with tempfile.TemporaryDirectory() as d:
        print(f"{'case':28} {'raw MB/s':>10} {'records MB/s':>13} {'records/raw':>12}")
        for name, data in cases.items():
            raw = RotatingLog(os.path.join(d, "raw.log"), 16 << 20, 1)
            rec = StreamLog(os.path.join(d, "rec.log"), 16 << 20, 1)
            r_raw = _rate(raw.write, data)
            r_rec = _rate(functools.partial(rec.write, STDOUT), data)
            raw.close()
            rec.close()
            print(f"{name:28} {r_raw:10.0f} {r_rec:13.0f} {r_rec / r_raw:12.2f}")


if __name__ == "__main__":
    main()
