"""The typed outcomes of cgroupfs operations. Every error names the file (and value) involved."""

from __future__ import annotations


class CgroupError(Exception):
    """Base class of everything cgroupfs raises on purpose."""


class CgroupGone(CgroupError):
    """The cgroup (or process) vanished: ENOENT on open, ENODEV on read, ESRCH on a move.

    One outcome for all of them, so callers skip the cgroup for this tick and record its
    final counters instead of crashing.
    """

    def __init__(self, path: str, reason: str = "gone") -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class ParseError(CgroupError):
    """A cgroup file's content did not have the kernel's format."""

    def __init__(self, file: str, message: str) -> None:
        super().__init__(f"{file}: {message}")
        self.file = file
        self.message = message


class UnsafePath(CgroupError):
    """A cgroup name or path that would leave the configured root or name a control file."""


class CgroupWriteError(CgroupError):
    """A write to a cgroup file failed; the message quotes the value and the file."""

    def __init__(self, file: str, value: str, errno_: int, hint: str = "") -> None:
        import os

        msg = f"writing {value!r} to {file} failed: {os.strerror(errno_)}"
        if hint:
            msg += f" ({hint})"
        super().__init__(msg)
        self.file = file
        self.value = value
        self.errno = errno_
        self.hint = hint
