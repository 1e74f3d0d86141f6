"""Walking a segment's records: headers, checksums, and where the good part ends."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

from collectors.recorder.format import HEADER_SIZE, FormatError, RecordHeader, check, parse_header


@dataclass(frozen=True, slots=True)
class Located:
    offset: int  # of the header
    header: RecordHeader

    @property
    def end(self) -> int:
        return self.offset + HEADER_SIZE + self.header.length


@dataclass(slots=True)
class ScanResult:
    records: list[Located]
    good_end: int  # bytes up to the end of the last complete, valid record
    size: int
    problem: str | None = None  # why the scan stopped before the end of the file


def scan(path: str, verify: bool = True, start: int = 0) -> ScanResult:
    """Every record from ``start`` until the end or the first bad one (checksums when
    ``verify``; without, only headers are read, as an index)."""
    out: list[Located] = []
    with open(path, "rb", buffering=0) as f:
        size = os.fstat(f.fileno()).st_size
        off = start
        problem = None
        while off < size:
            head = os.pread(f.fileno(), HEADER_SIZE, off)
            try:
                h = parse_header(head)
                if off + HEADER_SIZE + h.length > size:
                    raise FormatError("truncated record")
                if verify:
                    check(h, os.pread(f.fileno(), h.length, off + HEADER_SIZE))
            except FormatError as e:
                problem = f"{os.path.basename(path)} at byte {off}: {e}"
                break
            out.append(Located(off, h))
            off += HEADER_SIZE + h.length
    return ScanResult(out, off, size, problem)


def read_frame(fd: int, loc: Located) -> bytes:
    frame = os.pread(fd, loc.header.length, loc.offset + HEADER_SIZE)
    check(loc.header, frame)
    return frame


def iter_frames(path: str) -> Iterator[tuple[Located, bytes]]:
    """(record, verified frame) pairs; stops at the first bad record."""
    with open(path, "rb", buffering=0) as f:
        for loc in scan(path, verify=False).records:
            try:
                yield loc, read_frame(f.fileno(), loc)
            except FormatError:
                return
