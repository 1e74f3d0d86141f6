"""Reading cgroup files: a reader that keeps fds open, a tree walk, and one-shot reads.

Re-reading a kept fd with ``os.pread(fd, size, 0)`` makes the kernel regenerate the file, so
the hot path costs one syscall per file (measured ~6 us against ~14 us for openat+read+close
and ~30 us for ``with open``; see benchmarks/RESULTS.md). Files are opened with openat
relative to a kept directory fd, so the path is looked up once per cgroup.

Vanished cgroups have one outcome, ``CgroupGone``: ENOENT when opening a file of a cgroup whose
directory no longer exists (or is a different directory now), ENODEV when reading an fd kept
from a removed cgroup. A file that is simply absent (controller not enabled, older kernel)
reads as ``None``.

Paths from the walk are read with ``strict=False`` name checks: existing cgroups named like
"cpu.service" must be monitored even though create() refuses such names.
"""

from __future__ import annotations

import errno
import operator
import os
import resource
import time
from collections.abc import Iterable, Iterator
from typing import cast

from cgroupfs.errors import CgroupGone, UnsafePath
from cgroupfs.parsers import parse_procs
from cgroupfs.paths import CgroupRoot, check_filename, join_rel, validate_name

_GONE_ERRNOS = frozenset({errno.ENOENT, errno.ENODEV})
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_CLOEXEC
INITIAL_READ_SIZE = 4096  # most files fit; memory.stat ~1.5 KB; io.stat and PSI grow it
MAX_READ_SIZE = 16 << 20  # a cgroup file never legitimately gets near this
_ZEROS = (0,) * 64  # the offset argument of each pread in a plan (at most 64 files)


def _fit(length: int) -> int:
    """The pread size kept for a file whose content was ``length`` bytes: room to grow by
    half, and small enough that most files' buffers come from pymalloc (a 4 KB buffer is a
    libc malloc + realloc per read: ~500 instructions). A file that outgrows it is re-read
    with a bigger buffer once (``len(data) == size``) and keeps that size."""
    return length + (length >> 1) + 64


def _pread_all(fd: int, size: int) -> tuple[bytes, int]:
    """The whole file at offset 0, and the buffer size that held it (grown when it was full)."""
    while True:
        data = os.pread(fd, size, 0)
        if len(data) < size or size >= MAX_READ_SIZE:
            return data, size
        size *= 4


class _Kept:
    """The fds of one cgroup: its directory and each file read so far."""

    __slots__ = ("absent", "dir_fd", "files", "inode", "plans")

    def __init__(self, dir_fd: int, inode: int) -> None:
        self.dir_fd = dir_fd
        self.inode = inode
        self.files: dict[str, tuple[int, int]] = {}  # filename -> (fd, read size)
        self.absent: dict[str, float] = {}  # filename -> monotonic time it was found missing
        # read_files: filenames -> their (fds, sizes) once every one of them has a kept fd,
        # so that the preads run in one C-level map. Cleared when any size changes.
        self.plans: dict[tuple[str, ...], tuple[list[int], list[int]]] = {}


def _default_max_fds() -> int:
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 1 << 20
    return max(16, soft - max(64, soft // 8))  # leave room for sockets, logs, the API


def raise_fd_limit() -> int:
    """Raise this process's soft RLIMIT_NOFILE to its hard limit (the daemon calls it once at
    start, as KeptReader holds ~10 fds per cgroup); returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    return soft


class KeptReader:
    """Reads cgroup files through fds kept open between ticks. Not thread-safe: use one reader
    per thread (the collector reads a whole tick in one worker thread)."""

    def __init__(
        self,
        root: CgroupRoot,
        *,
        max_fds: int | None = None,
        absent_recheck_s: float = 5.0,
    ) -> None:
        """``max_fds``: beyond this many kept fds, files are read one-shot (openat, pread,
        close) instead of kept, so a huge tree degrades speed rather than failing with EMFILE.
        Default: the soft RLIMIT_NOFILE minus headroom. ``absent_recheck_s``: how long a file
        found missing (controller not enabled) reads as None before openat is tried again."""
        self.root = root
        self.max_fds = _default_max_fds() if max_fds is None else max_fds
        self.absent_recheck_s = absent_recheck_s
        self._cgroups: dict[str, _Kept] = {}
        self._fd_count = 0

    def __enter__(self) -> KeptReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- bookkeeping -------------------------------------------------------------------------

    def open_fd_count(self) -> int:
        """Directory and file fds currently kept open (for leak tests and metrics)."""
        return self._fd_count

    def kept(self) -> list[str]:
        """The rels of the cgroups whose fds are kept."""
        return list(self._cgroups)

    def inode_of(self, rel: str) -> int | None:
        """The inode the kept fds of ``rel`` belong to, if any."""
        kept = self._cgroups.get(rel)
        return None if kept is None else kept.inode

    def forget(self, rel: str) -> None:
        """Close the fds kept for cgroup ``rel`` (it vanished, or is no longer watched)."""
        kept = self._cgroups.pop(rel, None)
        if kept is None:
            return
        for fd, _size in kept.files.values():
            os.close(fd)
        os.close(kept.dir_fd)
        self._fd_count -= len(kept.files) + 1

    def forget_missing(self, present: Iterable[str]) -> list[str]:
        """Forget every kept cgroup not in ``present`` (e.g. the rels of this tick's walk)."""
        keep = set(present)
        gone = [rel for rel in self._cgroups if rel not in keep]
        for rel in gone:
            self.forget(rel)
        return gone

    def close(self) -> None:
        for rel in list(self._cgroups):
            self.forget(rel)

    # -- reading -----------------------------------------------------------------------------

    def _open_cgroup(self, rel: str, inode: int | None) -> _Kept:
        path = self.root.resolve(rel, strict=False)
        try:
            dir_fd = os.open(path, _DIR_FLAGS)
        except OSError as e:
            if e.errno in _GONE_ERRNOS or e.errno == errno.ENOTDIR:
                raise CgroupGone(path, "no such cgroup") from None
            raise
        try:
            found = os.fstat(dir_fd).st_ino
        except OSError:
            os.close(dir_fd)
            raise
        if inode is not None and found != inode:
            os.close(dir_fd)
            # the cgroup the caller knew was removed and another one made at the same path
            raise CgroupGone(path, f"replaced (inode {inode} is now {found})")
        kept = _Kept(dir_fd, found)
        self._cgroups[rel] = kept
        self._fd_count += 1
        return kept

    def _cgroup(self, rel: str, inode: int | None) -> _Kept:
        kept = self._cgroups.get(rel)
        if kept is not None:
            if inode is None or kept.inode == inode:
                return kept
            self.forget(rel)
        return self._open_cgroup(rel, inode)

    def _vanished(self, rel: str, kept: _Kept) -> bool:
        """Whether the directory the kept fds belong to is no longer at its path."""
        try:
            return os.stat(self.root.resolve(rel, strict=False)).st_ino != kept.inode
        except (FileNotFoundError, NotADirectoryError):
            return True

    def _gone(self, rel: str, why: str) -> CgroupGone:
        self.forget(rel)
        return CgroupGone(self.root.resolve(rel, strict=False), why)

    def read(self, rel: str, filename: str, inode: int | None = None) -> bytes | None:
        """The content of ``filename`` of cgroup ``rel``; None when the file does not exist.

        ``inode``: the cgroup's inode as seen by walk(). Kept fds of another inode are closed
        and reopened; if the directory now at ``rel`` has another inode, the cgroup the
        caller knew is gone (CgroupGone), so no rate is ever computed across two cgroups.
        Raises CgroupGone when the cgroup vanished (its fds are then closed).
        """
        kept = self._cgroups.get(rel)
        if kept is None or (inode is not None and kept.inode != inode):
            kept = self._cgroup(rel, inode)
        entry = kept.files.get(filename)
        if entry is None:
            return self._read_new(rel, kept, filename)
        fd, size = entry
        try:
            data = os.pread(fd, size, 0)  # the hot path: one syscall, no other call
            if len(data) == size:  # the buffer was full: the file may be longer
                data, size = _pread_all(fd, size * 4)
                kept.files[filename] = (fd, size)
                kept.plans.clear()
        except OSError as e:
            if e.errno in _GONE_ERRNOS:
                raise self._gone(rel, "removed") from None
            raise
        return data

    def read_files(
        self, rel: str, filenames: tuple[str, ...], inode: int | None = None
    ) -> list[bytes | None]:
        """``read`` of each of ``filenames`` of one cgroup, in order (None: absent file).

        The collector's hot path: once every file has a kept fd, the preads run as one
        ``map`` over the cgroup's fds for this tuple of names (no Python code per file).
        Raises CgroupGone when the cgroup vanished (its fds are then closed)."""
        kept = self._cgroups.get(rel)
        if kept is None or (inode is not None and kept.inode != inode):
            kept = self._cgroup(rel, inode)
        plan = kept.plans.get(filenames)
        if plan is not None:
            fds, sizes = plan
            try:
                datas = list(map(os.pread, fds, sizes, _ZEROS))
            except OSError as e:
                if e.errno in _GONE_ERRNOS:
                    raise self._gone(rel, "removed") from None
                raise
            if not any(map(operator.eq, map(len, datas), sizes)):
                return cast("list[bytes | None]", datas)
            # a buffer was full: the slow way below grows it (and drops the plan)
        return self._read_files_slow(rel, kept, filenames)

    def _read_files_slow(
        self, rel: str, kept: _Kept, filenames: tuple[str, ...]
    ) -> list[bytes | None]:
        out = [self.read(rel, name, kept.inode) for name in filenames]
        files = kept.files
        if len(filenames) <= len(_ZEROS) and all(name in files for name in filenames):
            entries = [files[name] for name in filenames]
            kept.plans[filenames] = ([e[0] for e in entries], [e[1] for e in entries])
        return out

    def _read_new(self, rel: str, kept: _Kept, filename: str) -> bytes | None:
        missing_since = kept.absent.get(filename)
        if missing_since is not None:
            if time.monotonic() - missing_since < self.absent_recheck_s:
                return None
            del kept.absent[filename]
        check_filename(filename)
        try:
            fd = os.open(filename, _FILE_FLAGS, dir_fd=kept.dir_fd)
        except OSError as e:
            if e.errno in _GONE_ERRNOS:
                # absent file, or the whole cgroup removed: only the path can tell
                if self._vanished(rel, kept):
                    raise self._gone(rel, "removed") from None
                kept.absent[filename] = time.monotonic()
                return None
            raise
        try:
            data, size = _pread_all(fd, INITIAL_READ_SIZE)
        except OSError as e:
            os.close(fd)
            if e.errno in _GONE_ERRNOS:
                raise self._gone(rel, "removed") from None
            raise
        if self._fd_count < self.max_fds:
            kept.files[filename] = (fd, min(size, _fit(len(data))))
            kept.plans.clear()
            self._fd_count += 1
        else:
            os.close(fd)
        return data

    def read_many(
        self, rel: str, filenames: Iterable[str], inode: int | None = None
    ) -> dict[str, bytes | None]:
        """Several files of one cgroup; CgroupGone if it vanished part way."""
        return {name: self.read(rel, name, inode) for name in filenames}


def walk(
    root: CgroupRoot, max_depth: int | None = None, *, start: str = ""
) -> Iterator[tuple[str, int]]:
    """(rel, inode) of cgroup ``start`` (default: the root) and every cgroup below it, depth
    first, parents before children, siblings by name. Inodes come free from the directory listing.

    A cgroup vanishing mid-walk is not an error: if it was already listed it is still
    yielded (reading it then raises CgroupGone) and its children are skipped.
    ``max_depth`` 0 yields only ``start``, 1 also its children, and so on. Entries whose
    names could not be read back safely (paths.validate_name, strict=False) are skipped.
    """
    start_path = root.resolve(start, strict=False)
    try:
        start_inode = os.stat(start_path).st_ino
    except (FileNotFoundError, NotADirectoryError):
        return
    stack: list[tuple[str, str, int, int]] = [(start.strip("/"), start_path, start_inode, 0)]
    while stack:
        rel, path, inode, depth = stack.pop()
        yield rel, inode
        if max_depth is not None and depth >= max_depth:
            continue
        try:
            with os.scandir(path) as it:
                children = sorted(
                    (e for e in it if e.is_dir(follow_symlinks=False)), key=lambda e: e.name
                )
        except OSError as e:
            if e.errno in _GONE_ERRNOS or e.errno == errno.ENOTDIR:
                continue
            raise
        for entry in reversed(children):
            try:
                validate_name(entry.name, strict=False)
            except UnsafePath:  # e.g. a newline in the name
                continue
            stack.append((join_rel(rel, entry.name), entry.path, entry.inode(), depth + 1))


def read_file(root: CgroupRoot, rel: str, filename: str) -> bytes:
    """One-shot read of ``filename`` of cgroup ``rel``.

    Raises CgroupGone when the cgroup does not exist (or vanished while reading), and
    FileNotFoundError when the cgroup exists but has no such file (controller absent).
    """
    path = root.file(rel, filename, strict=False)
    try:
        fd = os.open(path, _FILE_FLAGS)
    except OSError as e:
        if e.errno in _GONE_ERRNOS or e.errno == errno.ENOTDIR:
            if not os.path.isdir(os.path.dirname(path)):
                raise CgroupGone(os.path.dirname(path), "no such cgroup") from None
            raise FileNotFoundError(
                errno.ENOENT, f"{filename} does not exist in this cgroup", path
            ) from None
        raise
    try:
        return _pread_all(fd, INITIAL_READ_SIZE)[0]
    except OSError as e:
        if e.errno in _GONE_ERRNOS:
            raise CgroupGone(os.path.dirname(path), "removed") from None
        raise
    finally:
        os.close(fd)


def read_procs(root: CgroupRoot, rel: str) -> tuple[int, ...]:
    """The PIDs in cgroup ``rel`` (each once); CgroupGone if it does not exist."""
    return parse_procs(read_file(root, rel, "cgroup.procs"), "cgroup.procs")
