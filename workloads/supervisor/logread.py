"""Reading a workload's logs back: the record files the shim writes (workloads.supervisor.logs)
and the raw ``output.log*`` of an earlier version, oldest first, with ``--tail``'s start found
from the end and records filtered by time. Blocking file I/O: the API runs it in a thread."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from workloads.supervisor.logs import LEGACY_NAME, LOG_NAME, STDERR, STDOUT, log_files

BLOCK = 65536


@dataclass(frozen=True)
class LogFile:
    path: str
    legacy: bool  # raw merged output of an earlier version: no streams, no times


@dataclass(frozen=True)
class Record:
    stream: str  # STDOUT or STDERR
    data: bytes  # the output, with its newline when it ends a line
    ns: int | None = None  # when the shim read it; None: a legacy file does not say
    ends_line: bool = True


def log_sources(wdir: str, keep: int) -> list[LogFile]:
    """Every log file of a workload, oldest first, the live one last. Legacy files come first:
    only a shim of the earlier version wrote them, before any run of this one."""
    old = [LogFile(p, True) for p in log_files(os.path.join(wdir, LEGACY_NAME), keep)]
    return old + [LogFile(p, False) for p in log_files(os.path.join(wdir, LOG_NAME), keep)]


def parse_time(text: bytes) -> int | None:
    """A record's RFC3339Nano UTC time as Unix nanoseconds (None if it is not one)."""
    try:
        base, _, frac = text.decode("ascii").rstrip("Z").partition(".")
        secs = datetime.fromisoformat(base + "+00:00").timestamp()
        return int(secs) * 1_000_000_000 + int((frac + "000000000")[:9] or 0)
    except (UnicodeDecodeError, ValueError):
        return None


def parse_record(line: bytes) -> Record:
    """One line of a record file (without its newline). A line that is not a record (a torn
    write) is shown as stdout rather than lost."""
    parts = line.split(b" ", 3)
    if len(parts) == 4 and parts[1] in (b"stdout", b"stderr") and parts[2] in (b"F", b"P"):
        ns = parse_time(parts[0])
        if ns is not None:
            full = parts[2] == b"F"
            data = parts[3] + b"\n" if full else parts[3]
            return Record(parts[1].decode(), data, ns, full)
    return Record(STDOUT, line + b"\n", None, True)


class RecordReader:
    """Records from a file's bytes fed in order (a followed file grows by any amount)."""

    def __init__(self, legacy: bool) -> None:
        self.legacy = legacy
        self._rest = b""

    def feed(self, chunk: bytes) -> list[Record]:
        if self.legacy:
            return [Record(STDOUT, chunk)] if chunk else []
        buf = self._rest + chunk
        lines = buf.split(b"\n")
        self._rest = lines.pop()  # incomplete (b"" when the chunk ended a line)
        return [parse_record(x) for x in lines]

    def flush(self) -> list[Record]:
        """At the end of a file that is no longer written: a torn last line, if any."""
        rest, self._rest = self._rest, b""
        return [parse_record(rest)] if rest else []


def _lines_backwards(path: str, end: int) -> Iterator[tuple[int, int, bytes]]:
    """(start, stop, line) of ``path``'s lines before ``end``, last first; ``stop`` is where
    the line's newline is (or ``end``, for a last line without one)."""
    if end <= 0:
        return
    with open(path, "rb") as f:
        f.seek(end - 1)
        pos = end - 1 if f.read(1) == b"\n" else end
        carry = b""  # the start of a line read already, which began before ``pos``
        while True:
            start = max(0, pos - BLOCK)
            f.seek(start)
            buf = f.read(pos - start) + carry
            parts = buf.split(b"\n")
            carry = parts[0]
            off = start + len(buf)
            for part in reversed(parts[1:]):
                yield off - len(part), off, part
                off -= len(part) + 1
            pos = start
            if pos == 0:
                yield 0, len(carry), carry
                return


def tail_start(files: list[LogFile], n: int, live_size: int) -> tuple[int, int]:
    """Where the last ``n`` lines of output begin: (index in ``files``, offset). A last line
    without its newline yet counts as a line, as docker's does."""
    if n <= 0 or not files:
        return max(len(files) - 1, 0), live_size
    ends, first = 0, True  # line ends seen from the end; the output's end counts as one
    for idx in range(len(files) - 1, -1, -1):
        lf = files[idx]
        end = live_size if idx == len(files) - 1 else os.path.getsize(lf.path)
        for _, stop, line in _lines_backwards(lf.path, end):
            if first:
                ends += 1
            elif stop == end:
                pass  # raw output rotated mid-line: the line goes on in the next file
            elif lf.legacy or line.split(b" ", 3)[2:3] != [b"P"]:
                ends += 1  # a newline of raw output, an F record
            first = False
            if ends > n:
                return idx, stop + 1
    return 0, 0


def in_window(rec: Record, since_ns: int | None, until_ns: int | None) -> bool:
    """--since/--until: a record without its time (a legacy file) is outside any window."""
    if since_ns is None and until_ns is None:
        return True
    if rec.ns is None:
        return False
    return (since_ns is None or rec.ns >= since_ns) and (until_ns is None or rec.ns <= until_ns)


__all__ = [
    "STDERR",
    "STDOUT",
    "LogFile",
    "Record",
    "RecordReader",
    "in_window",
    "log_sources",
    "parse_record",
    "tail_start",
]
