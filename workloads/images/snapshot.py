"""A workload's root filesystem: an overlayfs mount of its image's layers.

    <state>/snapshots/<name>/init    a small top layer: the mount points the runtime needs
    <state>/snapshots/<name>/upper   the workload's writes (absent with --read-only)
    <state>/snapshots/<name>/work    overlayfs's work directory
    <state>/snapshots/<name>/rootfs  the mount, the workload's --rootfs

It is mounted on the host side, as a private mount (nothing propagates to other namespaces),
before each run, and unmounted and removed with the workload. Without an upper layer overlayfs
needs two lower ones: the init layer is always there, so a one-layer image mounts read-only too.
The directories are 0711, so a --userns root can reach its rootfs without reading the others.

With --userns the rootfs must be owned by the workload's ids: every entry is chowned by the id
offset through the overlay, which copies it up (metadata only where the kernel's metacopy
works; "chown" in inspect either way). Idmapped overlay mounts are not used yet.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from dataclasses import dataclass

from workloads.images.errors import ImageError
from workloads.runtime import linux

MOUNT_POINTS = ("proc", "dev", "sys")
MAX_OPTIONS = 4000  # the kernel copies at most one page of mount options


@dataclass(frozen=True)
class SnapshotPaths:
    base: str

    @property
    def rootfs(self) -> str:
        return os.path.join(self.base, "rootfs")

    @property
    def upper(self) -> str:
        return os.path.join(self.base, "upper")

    @property
    def work(self) -> str:
        return os.path.join(self.base, "work")

    @property
    def init(self) -> str:
        return os.path.join(self.base, "init")


def paths_for(state_dir: str, name: str) -> SnapshotPaths:
    return SnapshotPaths(os.path.join(state_dir, "snapshots", name))


def is_mounted(path: str) -> bool:
    return os.path.ismount(path)


def _mkdir(path: str, mode: int) -> None:
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, mode)
    os.chmod(path, mode)


def mount(
    snap: SnapshotPaths,
    layer_dirs: list[str],
    *,
    read_only: bool,
    id_offset: int = 0,
) -> str:
    """Mount the snapshot (again after a reboot; nothing if it is mounted); returns how the
    rootfs is owned: "image" or "chown"."""
    if is_mounted(snap.rootfs):
        return "chown" if id_offset else "image"
    _mkdir(os.path.dirname(snap.base), 0o711)
    _mkdir(snap.base, 0o711)
    _mkdir(snap.init, 0o755)
    for d in MOUNT_POINTS:
        _mkdir(os.path.join(snap.init, d), 0o755)
    _mkdir(snap.rootfs, 0o755)
    lower = ":".join([snap.init, *layer_dirs])
    opts = f"lowerdir={lower}"
    if not read_only:
        _mkdir(snap.upper, 0o755)
        _mkdir(snap.work, 0o700)
        opts += f",upperdir={snap.upper},workdir={snap.work}"
    if len(opts) > MAX_OPTIONS:
        raise ImageError(f"the image has too many layers to mount ({len(layer_dirs)})")
    chown = id_offset and not read_only
    try:
        if chown:
            try:  # metadata-only copy-up: the chown below copies no file data
                linux.mount("overlay", snap.rootfs, "overlay", 0, opts + ",metacopy=on")
            except OSError:
                linux.mount("overlay", snap.rootfs, "overlay", 0, opts)
        else:
            linux.mount("overlay", snap.rootfs, "overlay", 0, opts)
    except OSError as e:
        raise ImageError(f"cannot mount the image's overlay at {snap.rootfs}: {e}") from None
    linux.mount(None, snap.rootfs, None, linux.MS_PRIVATE)
    if chown:
        _shift_owners(snap, id_offset)
    return "chown" if id_offset else "image"


def _shift_owners(snap: SnapshotPaths, offset: int) -> None:
    """Every entry's uid and gid moved up by ``offset``, once (a marker beside upper says
    so; a remount after a reboot finds the upper layer shifted already)."""
    marker = os.path.join(snap.base, "chowned")
    if os.path.exists(marker):
        return
    root = snap.rootfs
    for dirpath, dirs, files in os.walk(root):
        for n in [*dirs, *files]:
            p = os.path.join(dirpath, n)
            st = os.lstat(p)
            if st.st_uid < offset:  # an already shifted entry is left as it is
                mode = st.st_mode
                os.lchown(p, st.st_uid + offset, st.st_gid + offset)
                if not os.path.islink(p) and mode & 0o6000:
                    os.chmod(p, mode & 0o7777)  # chown cleared setuid/setgid
    st = os.lstat(root)
    if st.st_uid < offset:
        os.lchown(root, st.st_uid + offset, st.st_gid + offset)
    with open(marker, "w"):
        pass


def unmount(snap: SnapshotPaths) -> None:
    with contextlib.suppress(OSError):
        while is_mounted(snap.rootfs):
            linux.umount2(snap.rootfs, linux.MNT_DETACH)


def remove(snap: SnapshotPaths) -> None:
    """Unmount and delete the workload's snapshot (its writes with it)."""
    unmount(snap)
    if is_mounted(snap.rootfs):
        raise ImageError(f"cannot unmount {snap.rootfs}")
    try:
        shutil.rmtree(snap.base)
    except FileNotFoundError:
        pass
    except OSError as e:
        if e.errno != errno.ENOENT:
            raise ImageError(f"cannot remove the snapshot {snap.base}: {e.strerror}") from None


def upper_size(snap: SnapshotPaths) -> int:
    """Bytes the workload wrote (its upper layer's files), for `ps --size`."""
    total = 0
    seen: set[int] = set()
    for dirpath, _dirs, files in os.walk(snap.upper):
        for n in files:
            with contextlib.suppress(OSError):
                st = os.lstat(os.path.join(dirpath, n))
                if st.st_ino not in seen:
                    seen.add(st.st_ino)
                    total += st.st_size
    return total
