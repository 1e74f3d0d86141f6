"""Layers unpacked once, into ``<layers>/<diffid hex>/``, ready to be an overlayfs lowerdir.

A layer is a tar stream (plain, gzip or zstd, told by its first bytes). It is extracted into a
temporary directory and renamed into place only when complete and its uncompressed digest (the
image config's diff_id) matches, under a per-layer flock, so concurrent unpacks of one layer do
the work once and a killed unpack leaves only a temporary directory that is removed later.

OCI whiteouts become overlayfs's: ``.wh.NAME`` a 0:0 character device NAME, ``.wh..wh..opq`` the
xattr trusted.overlay.opaque=y on its directory (both need root, as overlayfs itself does).
Owners, modes (setuid included), mtimes, xattrs, hard links, device nodes and fifos are kept.

Refused, naming the entry: absolute paths, ``..`` components, an entry below a symlink, a hard
link to a path outside the layer, and a symlink whose relative target climbs above the layer's
root (an absolute target is resolved inside the workload's root, so it is kept).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import os
import shutil
import stat
import tarfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO

from workloads.images.errors import DigestMismatch, ImageError, UnsafeLayer
from workloads.images.store import CHUNK, hex_of, locked
from workloads.supervisor.state import fsync_dir

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"
XATTR_PREFIX = "SCHILY.xattr."
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


@dataclass(frozen=True)
class Unpacked:
    diff_id: str
    path: str
    size: int  # bytes of its regular files (each hard-linked file once)


class _Hashing(io.RawIOBase):
    """A read-only stream that hashes what passes through (the diff_id)."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.hash = hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.hash.update(data)
        return data

    def readinto(self, b: Any) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)

    def drain(self) -> None:
        while self.read(CHUNK):
            pass

    def readable(self) -> bool:
        return True


class _Gunzip(io.RawIOBase):
    """gzip members (and zero padding between them, as GzipFile allows) inflated from 1 MiB
    reads: Python 3.11's GzipFile reads 8 KiB at a time, thousands of interpreter steps per
    layer that hold the GIL (under emulation a third of an unpack). zlib checks each member's
    CRC and length; a stream cut short is an EOFError."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self._z = zlib.decompressobj(31)
        self._tail = b""  # input zlib has not consumed yet

    def readable(self) -> bool:
        return True

    def read(self, n: int | None = -1) -> bytes:
        if n is None or n < 0:
            return b"".join(iter(lambda: self.read(CHUNK), b""))
        want = n
        while want:
            if self._z.eof:
                nxt = self._z.unused_data.lstrip(b"\0")
                while not nxt:
                    more = self.raw.read(CHUNK)
                    if not more:
                        return b""
                    nxt = more.lstrip(b"\0")
                self._z, self._tail = zlib.decompressobj(31), nxt
            if not self._tail:
                self._tail = self.raw.read(CHUNK)
                if not self._tail:
                    raise EOFError("the compressed layer ended before its end-of-stream marker")
            out = self._z.decompress(self._tail, want)
            self._tail = self._z.unconsumed_tail
            if out:
                return out
        return b""

    def readinto(self, b: Any) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)


def _decompressed(f: BinaryIO) -> BinaryIO:
    head = f.peek(4)[:4] if hasattr(f, "peek") else b""
    if head.startswith(GZIP_MAGIC):
        return _Gunzip(f)  # type: ignore[return-value]
    if head.startswith(ZSTD_MAGIC):
        import zstandard

        return zstandard.ZstdDecompressor().stream_reader(f)
    return f


def clean_name(name: str, what: str = "entry") -> str:
    """The entry's path relative to the layer root; UnsafeLayer if it could leave it."""
    if name.startswith("/"):
        raise UnsafeLayer(f"layer {what} {name!r}: absolute path refused")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeLayer(f"layer {what} {name!r}: '..' in a path refused")
    return "/".join(parts)


def _symlink_escapes(entry: str, target: str) -> bool:
    if target.startswith("/"):
        return False
    depth = entry.count("/")  # directories above the link, inside the layer
    for part in target.split("/"):
        if part == "..":
            depth -= 1
            if depth < 0:
                return True
        elif part not in ("", "."):
            depth += 1
    return False


class _Extractor:
    def __init__(self, dest: str) -> None:
        self.dest = dest
        self.dirs: list[tuple[str, tarfile.TarInfo]] = []
        self.size = 0
        self.inodes: set[int] = set()

    def _parent_ok(self, rel: str, name: str) -> str:
        """The entry's host path; every parent inside the layer is a real directory (made if
        missing, never a symlink: a write through one could land anywhere)."""
        path = self.dest
        parts = rel.split("/")
        for part in parts[:-1]:
            path = os.path.join(path, part)
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                os.mkdir(path, 0o755)
                continue
            if stat.S_ISLNK(st.st_mode):
                raise UnsafeLayer(f"layer entry {name!r}: its parent {part!r} is a symlink")
            if not stat.S_ISDIR(st.st_mode):
                raise UnsafeLayer(f"layer entry {name!r}: its parent {part!r} is not a directory")
        return os.path.join(self.dest, rel)

    @staticmethod
    def _clear(path: str, keep_dir: bool) -> None:
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            if keep_dir:
                return
            shutil.rmtree(path)
        else:
            os.unlink(path)

    def add(self, tf: tarfile.TarFile, m: tarfile.TarInfo) -> None:
        rel = clean_name(m.name)
        if not rel:  # the root itself ("./"): its attributes are the layer dir's
            if m.isdir():
                self.dirs.append((self.dest, m))
            return
        path = self._parent_ok(rel, m.name)
        base = os.path.basename(rel)
        if base == OPAQUE:
            parent = os.path.dirname(path)
            os.setxattr(parent, OPAQUE_XATTR, b"y")
            return
        if base.startswith(WHITEOUT):
            gone = os.path.join(os.path.dirname(path), base[len(WHITEOUT) :])
            self._clear(gone, keep_dir=False)
            os.mknod(gone, stat.S_IFCHR | 0o000, os.makedev(0, 0))
            return
        if m.isdir():
            self._clear(path, keep_dir=True)
            if not os.path.isdir(path):
                os.mkdir(path, 0o700)
            self.dirs.append((path, m))
            self._owner_xattrs(path, m)
            return
        self._clear(path, keep_dir=False)
        if m.isreg():
            src = tf.extractfile(m)
            assert src is not None
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "wb") as out:
                shutil.copyfileobj(src, out, CHUNK)
            self._count(path)
        elif m.issym():
            if _symlink_escapes(rel, m.linkname):
                raise UnsafeLayer(
                    f"layer entry {m.name!r}: symlink to {m.linkname!r} points out of the layer"
                )
            os.symlink(m.linkname, path)
        elif m.islnk():
            target = clean_name(m.linkname, "hard link target")
            tpath = os.path.join(self.dest, target)
            if not target or not os.path.lexists(tpath):
                raise UnsafeLayer(
                    f"layer entry {m.name!r}: hard link to {m.linkname!r}, not in this layer"
                )
            self._parent_ok(target, m.linkname)
            os.link(tpath, path, follow_symlinks=False)
            return  # the inode's attributes are its first name's
        elif m.ischr() or m.isblk():
            kind = stat.S_IFCHR if m.ischr() else stat.S_IFBLK
            os.mknod(path, kind | 0o600, os.makedev(m.devmajor, m.devminor))
        elif m.isfifo():
            os.mkfifo(path, 0o600)
        else:
            raise UnsafeLayer(f"layer entry {m.name!r}: unsupported tar entry type {m.type!r}")
        self._owner_xattrs(path, m)
        if not m.issym():
            os.chmod(path, stat.S_IMODE(m.mode))  # after chown, which clears setuid bits
        os.utime(path, (m.mtime, m.mtime), follow_symlinks=False)

    def _count(self, path: str) -> None:
        st = os.lstat(path)
        if st.st_ino not in self.inodes:
            self.inodes.add(st.st_ino)
            self.size += st.st_size

    def _owner_xattrs(self, path: str, m: tarfile.TarInfo) -> None:
        os.lchown(path, m.uid, m.gid)
        for key, value in m.pax_headers.items():
            if key.startswith(XATTR_PREFIX):
                raw = value.encode("utf-8", "surrogateescape")
                try:
                    os.setxattr(path, key[len(XATTR_PREFIX) :], raw, follow_symlinks=False)
                except OSError as e:
                    raise ImageError(
                        f"layer entry {m.name!r}: cannot set xattr {key[len(XATTR_PREFIX) :]}:"
                        f" {e.strerror}"
                    ) from None

    def finish(self) -> None:
        # Directories last, deepest first: adding their entries changed their mtimes.
        for path, m in reversed(self.dirs):
            if path == self.dest:
                self._owner_xattrs(path, m)
            os.chmod(path, stat.S_IMODE(m.mode))
            os.utime(path, (m.mtime, m.mtime))


def extract(stream: BinaryIO, dest: str) -> tuple[str, int]:
    """Extract a (possibly compressed) layer stream into the existing directory ``dest``;
    returns the uncompressed stream's digest and the bytes of its files."""
    raw = _decompressed(stream)
    hashing = _Hashing(raw)
    ex = _Extractor(dest)
    try:
        with tarfile.open(fileobj=hashing, mode="r|", errorlevel=2, bufsize=CHUNK) as tf:
            for m in tf:
                ex.add(tf, m)
        hashing.drain()  # the tar's zero blocks after its end-of-archive marker count too
    except ImageError:
        raise
    except (tarfile.TarError, EOFError, zlib.error) as e:
        raise ImageError(f"not a valid layer (tar, tar+gzip or tar+zstd): {e}") from None
    except OSError as e:
        raise ImageError(f"cannot unpack a layer: {e}") from None
    except Exception as e:  # zstandard's ZstdError
        raise ImageError(f"not a valid layer: {type(e).__name__}: {e}") from None
    ex.finish()
    return "sha256:" + hashing.hash.hexdigest(), ex.size


class Layers:
    """``<root>/<hex>/`` per unpacked layer, ``<root>/<hex>.size`` its bytes."""

    def __init__(self, root: str) -> None:
        self.root = root
        os.makedirs(root, mode=0o700, exist_ok=True)

    def path(self, diff_id: str) -> str:
        return os.path.join(self.root, hex_of(diff_id))

    def has(self, diff_id: str) -> bool:
        return os.path.isdir(self.path(diff_id))

    def size(self, diff_id: str) -> int:
        try:
            with open(self.path(diff_id) + ".size") as f:
                return int(f.read().strip() or 0)
        except (OSError, ValueError):
            return 0

    def unpack(self, blob_path: str, diff_id: str) -> Unpacked:
        """Unpack the layer blob at ``blob_path`` once; DigestMismatch if it is not diff_id."""
        hx = hex_of(diff_id)
        final = self.path(diff_id)
        if not os.path.isdir(final):
            with locked(os.path.join(self.root, f".{hx}.lock")):
                if not os.path.isdir(final):
                    self._unpack_locked(blob_path, diff_id, final)
        return Unpacked(diff_id=diff_id, path=final, size=self.size(diff_id))

    def unpack_stream(self, stream: BinaryIO, diff_id: str, commit: Callable[[], bool]) -> bool:
        """Unpack the layer from ``stream``, its blob as it arrives (download and unpack
        overlap); the result is moved into place only if ``commit()`` says the blob was stored
        verified. False, having done nothing, when another unpack of the layer holds its lock
        (the stream's writer must never wait for it) or when not committed."""
        final = self.path(diff_id)
        fd = os.open(os.path.join(self.root, f".{hex_of(diff_id)}.lock"),
                     os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)  # fmt: skip
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            return os.path.isdir(final) or self._unpack_locked(stream, diff_id, final, commit)
        finally:
            os.close(fd)

    def _unpack_locked(
        self,
        stream: BinaryIO | str,
        diff_id: str,
        final: str,
        commit: Callable[[], bool] = lambda: True,
    ) -> bool:
        """``stream``: the layer's blob, or its path."""
        hx = hex_of(diff_id)
        tmp = os.path.join(self.root, f".tmp-{hx}")
        remove_tree(tmp)  # left by an unpack that was killed
        os.mkdir(tmp, 0o755)
        try:
            if isinstance(stream, str):
                with open(stream, "rb", buffering=CHUNK) as f:
                    got, size = extract(f, tmp)
            else:
                got, size = extract(stream, tmp)
            if got != diff_id:
                raise DigestMismatch(f"layer {diff_id}: its content has digest {got}; refused")
            if not commit():
                remove_tree(tmp)
                return False
            with open(final + ".size", "w") as f:
                f.write(str(size))
            os.rename(tmp, final)
            fsync_dir(self.root)
            return True
        except BaseException:
            remove_tree(tmp)
            raise

    def delete(self, diff_id: str) -> int:
        path = self.path(diff_id)
        if not os.path.isdir(path):
            return 0
        n = self.size(diff_id)
        # Renamed first, so a half-removed layer is never taken for a whole one.
        doomed = os.path.join(self.root, f".rm-{hex_of(diff_id)}")
        os.rename(path, doomed)
        remove_tree(doomed)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path + ".size")
        return n

    def diff_ids(self) -> list[str]:
        return ["sha256:" + n for n in os.listdir(self.root) if len(n) == 64]

    def sweep(self) -> None:
        """Remove what killed unpacks and removals left (temporary directories)."""
        for n in os.listdir(self.root):
            if n.startswith((".tmp-", ".rm-")):
                remove_tree(os.path.join(self.root, n))


def remove_tree(path: str) -> None:
    """rmtree that also gets through directories made read-only by a layer's modes."""

    def onerror(func: object, p: str, exc: object) -> None:
        with contextlib.suppress(OSError):
            os.chmod(os.path.dirname(p), 0o700)
            if os.path.isdir(p) and not os.path.islink(p):
                os.chmod(p, 0o700)
                shutil.rmtree(p, ignore_errors=True)
            else:
                os.unlink(p)

    if os.path.lexists(path):
        shutil.rmtree(path, onerror=onerror)
