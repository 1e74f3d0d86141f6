"""Size-capped, rotated log files of a workload's output.

``stdio.log`` is the live file; when the next write would take it past ``max_bytes`` it becomes
``stdio.log.1`` (older ones shift up to ``stdio.log.<keep>``, the oldest is dropped). The disk
used per workload is bounded by ``(keep + 1) * max_bytes``.

Each line of it is one record in the CRI log format (containerd's, Kubernetes'):
``<RFC3339Nano UTC time> <stdout|stderr> <F|P> <bytes>\n``: F ends a line of output, P is a
piece of a line whose end comes in a later record. So stdout and stderr stay apart, each record
has its time, and rotation never splits a record. ``output.log*`` (LEGACY_NAME) is the raw,
merged output an earlier version wrote: still read (workloads.supervisor.logread), never written.
"""

from __future__ import annotations

import os
import time

LOG_NAME = "stdio.log"
LEGACY_NAME = "output.log"
STDOUT, STDERR = "stdout", "stderr"
MAX_PIECE = 16 * 1024  # longer lines are stored in pieces (P records), as docker's 16 KiB


def log_path(wdir: str) -> str:
    return os.path.join(wdir, LOG_NAME)


def format_time(ns: int) -> bytes:
    """RFC3339 with nanoseconds in UTC, as docker's ``logs -t`` prints."""
    secs, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)).encode() + b".%09dZ" % frac


def _as_pieces(head: bytes, text: bytes, last_tag: bytes) -> bytes:
    """``text`` as records of at most MAX_PIECE bytes: P ones, the last one ``last_tag``."""
    out = []
    while len(text) > MAX_PIECE:
        out.append(head + b"P " + text[:MAX_PIECE] + b"\n")
        text = text[MAX_PIECE:]
    out.append(head + last_tag + b" " + text + b"\n")
    return b"".join(out)


def encode_records(stream: str, data: bytes, ns: int) -> bytes:
    """``data`` (a chunk read from one stream) as records: whole lines F, the rest P."""
    head = format_time(ns) + b" " + stream.encode() + b" "
    full, nl, rest = data.rpartition(b"\n")
    if not nl:
        return _as_pieces(head, data, b"P") if data else b""
    if len(full) <= MAX_PIECE or max(map(len, full.split(b"\n"))) <= MAX_PIECE:
        # the common case in one pass of C code, not a loop per line: no line needs pieces
        out = head + b"F " + full.replace(b"\n", b"\n" + head + b"F ") + b"\n"
    else:
        out = b"".join(_as_pieces(head, line, b"F") for line in full.split(b"\n"))
    return out + (_as_pieces(head, rest, b"P") if rest else b"")


def log_files(path: str, keep: int) -> list[str]:
    """Existing files oldest first: <path>.<keep> ... <path>.1, <path>."""
    files = [f"{path}.{i}" for i in range(keep, 0, -1)]
    files.append(path)
    return [f for f in files if os.path.exists(f)]


class RotatingLog:
    """Never raises on write: output that cannot be stored (disk full, I/O error) is dropped and
    counted in ``dropped``, since the shim writing it must live on to record the exit."""

    def __init__(self, path: str, max_bytes: int, keep: int) -> None:
        if max_bytes < 1:
            raise ValueError("max_bytes must be positive")
        self.path = path
        self.max_bytes = max_bytes
        self.keep = max(keep, 0)
        self.dropped = 0  # bytes of output lost to write errors
        self.last_error: str | None = None
        self._fd = -1
        self._size = 0
        self._open()

    def _open(self) -> None:
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)
        self._size = os.fstat(self._fd).st_size

    def write(self, data: bytes, whole: bool = False) -> None:
        """Append ``data``; ``whole``: rotate first rather than split it across two files
        (unless it is larger than a file may be)."""
        if whole and self._size > 0 and self._size + len(data) > self.max_bytes >= len(data):
            try:
                self.rotate()
            except OSError as e:
                self.dropped += len(data)
                self.last_error = e.strerror or str(e)
                return
        view = memoryview(data)
        try:
            while view:
                if self._fd < 0:  # a rotation failed half-way: try the file again
                    self._open()
                room = self.max_bytes - self._size
                if room <= 0:
                    self.rotate()
                    room = self.max_bytes
                n = os.write(self._fd, view[:room])
                self._size += n
                view = view[n:]
        except OSError as e:
            self.dropped += len(view)
            self.last_error = e.strerror or str(e)

    @property
    def room(self) -> int:
        """Bytes the live file takes before it is rotated."""
        return self.max_bytes - self._size

    def rotate(self) -> None:
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)
        if self.keep == 0:
            os.unlink(self.path)
        else:
            for i in range(self.keep - 1, 0, -1):
                src = f"{self.path}.{i}"
                if os.path.exists(src):
                    os.rename(src, f"{self.path}.{i + 1}")
            os.rename(self.path, f"{self.path}.1")
        self._open()

    def close(self) -> None:
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)


class StreamLog:
    """The shim's log: output chunks of stdout and stderr as timestamped records (above) in a
    RotatingLog. ``dropped`` counts the output bytes lost to write errors."""

    def __init__(self, path: str, max_bytes: int, keep: int) -> None:
        self._log = RotatingLog(path, max_bytes, keep)
        self.dropped = 0

    @property
    def last_error(self) -> str | None:
        return self._log.last_error

    def write(self, stream: str, data: bytes) -> None:
        """As few writes as rotation allows (not one per line); records never split."""
        blob = encode_records(stream, data, time.time_ns())
        while blob:
            room = self._log.room
            cut = len(blob) if len(blob) <= room else blob.rfind(b"\n", 0, room) + 1
            if cut == 0:  # not even one record fits: the next goes whole into a new file
                cut = blob.index(b"\n") + 1
            self._flush(blob[:cut])
            blob = blob[cut:]

    def _flush(self, records: bytes) -> None:
        before = self._log.dropped
        self._log.write(records, whole=True)
        if self._log.dropped != before:  # lost: count the output bytes of its records
            self.dropped += sum(_output_len(r) for r in records.splitlines(keepends=True))

    def close(self) -> None:
        self._log.close()


def _output_len(rec: bytes) -> int:
    """The workload's bytes in a record: its content, and its newline if it ends a line."""
    tag = rec.index(b" ", rec.index(b" ") + 1) + 1
    return len(rec) - tag - 2 - (1 if rec[tag : tag + 1] == b"P" else 0)
