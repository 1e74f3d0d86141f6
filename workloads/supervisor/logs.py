"""Size-capped, rotated log files of a workload's output.

``output.log`` is the live file; when the next write would take it past ``max_bytes`` it becomes
``output.log.1`` (older ones shift up to ``output.log.<keep>``, the oldest is dropped). The disk
used per workload is bounded by ``(keep + 1) * max_bytes``.
"""

from __future__ import annotations

import os

LOG_NAME = "output.log"


def log_path(wdir: str) -> str:
    return os.path.join(wdir, LOG_NAME)


def log_files(path: str, keep: int) -> list[str]:
    """Existing files oldest first: output.log.<keep> ... output.log.1, output.log."""
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

    def write(self, data: bytes) -> None:
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
