"""Durable JSON records: atomic writes, and corrupt records reported and set aside.

A record is written to a temporary file, fsynced, renamed over the old one, and the directory is
fsynced, so a crash leaves either the old record or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from typing import Any


class CorruptRecord(Exception):
    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: corrupt record ({reason})")
        self.path = path
        self.reason = reason


def fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json_atomic(path: str, obj: Any) -> None:
    data = json.dumps(obj, sort_keys=True, indent=1).encode() + b"\n"
    tmp = f"{path}.tmp.{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, path)
    except BaseException:
        # A full disk must not leave half-written temporaries behind to fill it further.
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(os.path.dirname(path) or ".")


def read_json(path: str) -> dict[str, Any]:
    """The record at ``path``; FileNotFoundError if absent, CorruptRecord if unreadable."""
    with open(path, "rb") as f:
        raw = f.read()
    try:
        obj = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise CorruptRecord(path, f"not JSON: {e}") from None
    if not isinstance(obj, dict):
        raise CorruptRecord(path, "not a JSON object")
    return obj


def set_aside(path: str) -> str:
    """Rename a corrupt record out of the way (kept for inspection); returns its new path."""
    dest = f"{path}.corrupt-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
    os.rename(path, dest)
    return dest
